/**
 * Hugging Face datasets read offline, with DuckDB, from where `huggingface-cli download` puts them;
 * nothing is ever downloaded. A dataset repository's files are found, in this order:
 *
 * 1. in `--dataset-dir DIR`, under `DIR/<org>/<name>/` (as `huggingface-cli download --local-dir`
 *    lays a repository out);
 * 2. in the local hub cache (src/model/hub-cache.ts's folder), `datasets--<org>--<name>/`, at the
 *    snapshot `refs/main` names, then at the one `refs/refs/convert/parquet` names (the hub's
 *    parquet conversion: `huggingface-cli download --repo-type dataset <repo> --revision
 *    refs/convert/parquet`).
 *
 * In a folder, a split's files are the parquet conversion's `<config>/<split>/NNNN.parquet` (or its
 * older `<config>/<name>-<split>.parquet`), else the repository's own files as the hub's data-files
 * conventions place them: the README's `configs:` (`config_name`, `data_files`, `data_dir`), or,
 * with no `configs` and no loading script, file names and folders that name the split (`train`,
 * `validation`/`valid`/`dev`/`val`, `test`/`testing`/`eval`/`evaluation`). Parquet, JSON Lines
 * and JSON files are read; rows come back in file order, then row order.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { parse as parseYaml } from 'yaml';
import { JsonSyntaxError, parseStrictJson } from '../formats/strict-json.js';
import { hubCacheDir } from '../model/hub-cache.js';
import { ConfigError, FormatError } from '../util/errors.js';
import type { Doc, SplitDocs } from './lm-eval/build.js';

export interface DatasetRequest {
  /** `org/name`, and the other names it has been published under. */
  repository: string;
  alsoAt?: readonly string[];
  /** null: the dataset's default config. */
  config: string | null;
  splits: readonly string[];
}

export interface DatasetFiles {
  repository: string;
  config: string;
  /** The snapshot's commit (hub cache), or null (a plain folder). */
  revision: string | null;
  /** The folder the files are in. */
  dir: string;
  /** Each requested split's files, in order. */
  splits: ReadonlyMap<string, readonly string[]>;
}

export interface DatasetLookup {
  cacheDir?: string;
  datasetDir?: string;
}

const READABLE = /\.(parquet|jsonl|json)$/;
const SPLIT_KEYWORDS: Record<string, readonly string[]> = {
  train: ['train', 'training'],
  validation: ['validation', 'valid', 'dev', 'val'],
  test: ['test', 'testing', 'eval', 'evaluation'],
};
const NON_WORD = '[-._ 0-9]';

/** The command that fetches the hub's parquet conversion of a config. */
export function fetchCommand(repository: string, config: string | null): string {
  const include = config === null ? '' : ` --include '${config}/*'`;
  return `huggingface-cli download --repo-type dataset ${repository} --revision refs/convert/parquet${include}`;
}

const isDirectory = (path: string): boolean => existsSync(path) && statSync(path).isDirectory();
const isFile = (path: string): boolean => existsSync(path) && statSync(path).isFile();

/**
 * Every file under `dir`, as `/`-separated paths relative to it, hidden ones (`.cache/`,
 * `.gitattributes`) left out. A link whose blob is missing (a download that never finished, a
 * pruned cache) is an error naming it, not a file silently absent.
 */
function filesUnder(dir: string, refetch: string): string[] {
  const files: string[] = [];
  for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const path = name.split(sep).join('/');
    if (path.split('/').some((part) => part.startsWith('.'))) continue;
    const full = join(dir, name);
    if (lstatSync(full).isSymbolicLink() && !existsSync(full))
      throw new ConfigError(
        `${full} links to ${resolve(dirname(full), readlinkSync(full))}, which is missing from the Hugging Face cache; fetch it again with ${refetch}`,
      );
    if (isFile(full)) files.push(path);
  }
  return files.sort();
}

/** fsspec-style glob: `**` any path, `*` and `?` within one name, `[...]` a class. */
function globRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      re += '.*';
      i++;
      if (pattern[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += pattern.slice(i, end + 1);
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** The parquet conversion's layout: `<config>/<split>/*.parquet`, or the older `<config>/*-<split>.parquet`. */
function parquetConversionSplits(
  dir: string,
  files: readonly string[],
  config: string,
  splits: readonly string[],
): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const split of splits) {
    const inFolder = files.filter((f) => f.startsWith(`${config}/${split}/`) && f.endsWith('.parquet'));
    const partial = files.some((f) => f.startsWith(`${config}/partial-${split}/`));
    if (partial && inFolder.length === 0)
      throw new ConfigError(
        `${join(dir, config)}: the parquet conversion of split ${split} is partial (the hub converts only the first 5 GB of a large split); it cannot be evaluated as lm-eval evaluates it`,
      );
    const old = files.filter((f) =>
      new RegExp(`^${escapeRegExp(config)}/[^/]*-${escapeRegExp(split)}(-\\d+-of-\\d+)?\\.parquet$`).test(f),
    );
    const chosen = inFolder.length > 0 ? inFolder : old;
    if (chosen.length > 0)
      found.set(
        split,
        chosen.map((f) => join(dir, f)),
      );
  }
  return found;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function configNamesOf(files: readonly string[]): string[] {
  return [
    ...new Set(files.filter((f) => f.endsWith('.parquet') && f.includes('/')).map((f) => f.split('/')[0]!)),
  ].sort();
}

interface ReadmeConfig {
  config_name?: unknown;
  data_files?: unknown;
  data_dir?: unknown;
  default?: unknown;
}

function readmeConfigs(dir: string): ReadmeConfig[] | undefined {
  const readme = join(dir, 'README.md');
  if (!isFile(readme)) return undefined;
  const text = readFileSync(readme, 'utf8');
  const match = /^---\r?\n([\s\S]*?)\r?\n---\s*(\r?\n|$)/.exec(text);
  if (!match) return undefined;
  let front: unknown;
  try {
    front = parseYaml(match[1]!);
  } catch (e) {
    throw new FormatError(readme, `its YAML header does not parse (${(e as Error).message.split('\n')[0]})`);
  }
  const configs = (front as { configs?: unknown } | null)?.configs;
  if (configs === undefined) return undefined;
  if (!Array.isArray(configs)) throw new FormatError(readme, 'configs: expected a list of configs');
  return configs as ReadmeConfig[];
}

/** `data_files` as split → patterns (a bare pattern or list of them is the train split). */
function dataFilePatterns(dataFiles: unknown, where: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const patterns = (v: unknown): string[] => {
    if (typeof v === 'string') return [v];
    if (Array.isArray(v) && v.every((p) => typeof p === 'string')) return v as string[];
    throw new FormatError(where, `data_files: expected a path or a list of paths, got ${JSON.stringify(v)}`);
  };
  if (typeof dataFiles === 'string' || (Array.isArray(dataFiles) && dataFiles.every((p) => typeof p === 'string'))) {
    out.set('train', patterns(dataFiles));
  } else if (Array.isArray(dataFiles)) {
    for (const entry of dataFiles as { split?: unknown; path?: unknown }[]) {
      if (typeof entry?.split !== 'string')
        throw new FormatError(
          where,
          `data_files: expected entries with a split and a path, got ${JSON.stringify(entry)}`,
        );
      out.set(entry.split, patterns(entry.path));
    }
  } else if (dataFiles !== null && typeof dataFiles === 'object') {
    for (const [split, v] of Object.entries(dataFiles)) out.set(split, patterns(v));
  }
  return out;
}

type Found = { config: string; splits: Map<string, string[]> };

/** The repository's own files for a config, as its README's `configs` place them; undefined without `configs`. */
function readmeSplits(
  dir: string,
  files: readonly string[],
  config: string | null,
  splits: readonly string[],
): Found | undefined {
  const configs = readmeConfigs(dir);
  if (!configs) return undefined;
  const named = (c: ReadmeConfig) => (typeof c.config_name === 'string' ? c.config_name : 'default');
  const entry =
    config === null
      ? (configs.find((c) => c.default === true) ??
        configs.find((c) => named(c) === 'default') ??
        (configs.length === 1 ? configs[0] : undefined))
      : configs.find((c) => named(c) === config);
  const found = new Map<string, string[]>();
  if (!entry) return { config: config ?? 'default', splits: found };
  const where = join(dir, 'README.md');
  const base = typeof entry.data_dir === 'string' ? `${entry.data_dir.replace(/\/+$/, '')}/` : '';
  const patterns = entry.data_files === undefined ? undefined : dataFilePatterns(entry.data_files, where);
  for (const split of splits) {
    const these = patterns?.get(split);
    const matched = these
      ? files.filter((f) => these.some((p) => globRegExp(base + p.replace(/^\.\//, '')).test(f)))
      : patterns === undefined
        ? conventionFiles(
            files.filter((f) => f.startsWith(base)),
            split,
          )
        : [];
    if (matched.length > 0)
      found.set(
        split,
        matched.map((f) => join(dir, f)),
      );
  }
  return { config: named(entry), splits: found };
}

/** The default config's files by the split-name conventions, where no loading script defines the configs instead. */
function conventionSplits(
  dir: string,
  files: readonly string[],
  config: string | null,
  splits: readonly string[],
): Found {
  const found = new Map<string, string[]>();
  const script = files.some((f) => !f.includes('/') && f.endsWith('.py'));
  if (script || (config !== null && config !== 'default')) return { config: config ?? 'default', splits: found };
  for (const split of splits) {
    const matched = conventionFiles(files, split);
    if (matched.length > 0)
      found.set(
        split,
        matched.map((f) => join(dir, f)),
      );
  }
  return { config: 'default', splits: found };
}

/** The hub's default data-files patterns for one split: split keywords in file names first, else in folder names. */
function conventionFiles(files: readonly string[], split: string): string[] {
  const keywords = SPLIT_KEYWORDS[split] ?? [split];
  const readable = files.filter((f) => READABLE.test(f));
  const inName = (f: string) =>
    keywords.some((k) =>
      new RegExp(`(^|/)(${escapeRegExp(k)}${NON_WORD}[^/]*|[^/]*${NON_WORD}${escapeRegExp(k)}${NON_WORD}[^/]*)$`).test(
        f,
      ),
    );
  const anyInName = readable.some((f) =>
    Object.values(SPLIT_KEYWORDS)
      .flat()
      .some((k) =>
        new RegExp(`(^|/)(${escapeRegExp(k)}${NON_WORD}|[^/]*${NON_WORD}${escapeRegExp(k)}${NON_WORD})[^/]*$`).test(f),
      ),
  );
  if (anyInName) return readable.filter(inName);
  return readable.filter((f) =>
    keywords.some((k) => new RegExp(`(^|/)${escapeRegExp(k)}(${NON_WORD}[^/]*)?/`).test(f)),
  );
}

interface Candidate {
  dir: string;
  revision: string | null;
  /** Only the parquet conversion's layout is looked for (the refs/convert/parquet snapshot). */
  conversion: boolean;
  /** The command that downloads this snapshot again. */
  refetch: string;
}

function candidates(repository: string, lookup: DatasetLookup): Candidate[] {
  const out: Candidate[] = [];
  if (lookup.datasetDir !== undefined) {
    const dir = join(lookup.datasetDir, ...repository.split('/'));
    if (isDirectory(dir))
      out.push({
        dir,
        revision: null,
        conversion: false,
        refetch: `huggingface-cli download --repo-type dataset ${repository} --local-dir ${dir}`,
      });
  }
  const repoDir = join(lookup.cacheDir ?? hubCacheDir(), `datasets--${repository.split('/').join('--')}`);
  for (const [ref, conversion] of [
    ['main', false],
    ['refs/convert/parquet', true],
  ] as const) {
    const refFile = join(repoDir, 'refs', ...ref.split('/'));
    if (!isFile(refFile)) continue;
    const commit = readFileSync(refFile, 'utf8').trim();
    const dir = join(repoDir, 'snapshots', commit);
    const refetch = conversion
      ? fetchCommand(repository, null)
      : `huggingface-cli download --repo-type dataset ${repository}`;
    if (isDirectory(dir)) out.push({ dir, revision: commit, conversion, refetch });
  }
  return out;
}

/**
 * Finds a dataset config's split files; a one-line ConfigError with the command that fetches them
 * when they are not here.
 */
export function locateDataset(request: DatasetRequest, lookup: DatasetLookup = {}): DatasetFiles {
  const { config, splits } = request;
  const names = [request.repository, ...(request.alsoAt ?? [])];
  const looked: string[] = [];
  let incomplete: { dir: string; config: string; missing: string[]; present: string[] } | undefined;
  for (const repository of names) {
    for (const c of candidates(repository, lookup)) {
      looked.push(c.dir);
      const files = filesUnder(c.dir, c.refetch);
      const readme = c.conversion ? undefined : readmeSplits(c.dir, files, config, splits);
      let found: Found | undefined = readme;
      if (!readme) {
        const configs = configNamesOf(files);
        const conversionConfig =
          config ?? (configs.includes('default') ? 'default' : configs.length === 1 ? configs[0]! : undefined);
        if (conversionConfig !== undefined)
          found = { config: conversionConfig, splits: parquetConversionSplits(c.dir, files, conversionConfig, splits) };
        if (!c.conversion && (!found || found.splits.size === 0))
          found = conventionSplits(c.dir, files, config, splits);
      }
      if (!found || found.splits.size === 0) continue;
      const missing = splits.filter((s) => !found!.splits.has(s));
      if (missing.length === 0)
        return { repository, config: found.config, revision: c.revision, dir: c.dir, splits: found.splits };
      incomplete ??= { dir: c.dir, config: found.config, missing, present: [...found.splits.keys()] };
    }
  }
  const what = `dataset ${request.repository}${config === null ? '' : ` (${config})`}`;
  const fetch = `nothing is downloaded: fetch it with ${fetchCommand(request.repository, config)}`;
  if (incomplete)
    throw new ConfigError(
      `${what}: ${incomplete.dir} has no ${incomplete.missing.join(', ')} split of ${incomplete.config} (it has ${incomplete.present.join(', ')}); ${fetch}`,
    );
  const places = [
    ...(lookup.datasetDir === undefined ? [] : [`--dataset-dir ${lookup.datasetDir}`]),
    `the Hugging Face cache ${lookup.cacheDir ?? hubCacheDir()}`,
  ].join(' nor in ');
  const seen = looked.length > 0 ? ` (looked in ${looked.join(', ')})` : '';
  throw new ConfigError(`${what} is not in ${places}${seen}; ${fetch}`);
}

/** BIGINT values come back as bigint: whole numbers within 2^53 become numbers, others are refused. */
function plain(value: unknown, where: () => string): unknown {
  if (typeof value === 'bigint') {
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER))
      throw new FormatError(where(), `${value} is beyond the integers a double holds exactly`);
    return Number(value);
  }
  if (Array.isArray(value)) return value.map((v) => plain(v, where));
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
    const out: Doc = Object.create(null);
    for (const [k, v] of Object.entries(value)) out[k] = plain(v, where);
    return out;
  }
  return value;
}

const OFFLINE = { autoinstall_known_extensions: 'false', autoload_known_extensions: 'false' };

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
}

/** Reads the files of one split with DuckDB, in order, hashing each. */
export async function readSplit(split: string, files: readonly string[]): Promise<SplitDocs> {
  const instance = await DuckDBInstance.create(':memory:', OFFLINE);
  const connection = await instance.connect();
  const docs: Doc[] = [];
  const origins: { file: string; row: number }[] = [];
  const hashed: { name: string; sha256: string }[] = [];
  try {
    for (const file of files) {
      let bytes: Buffer;
      try {
        bytes = readFileSync(file);
      } catch (e) {
        throw new FormatError(file, `cannot read (${(e as NodeJS.ErrnoException).code ?? firstLine(e)})`);
      }
      hashed.push({ name: basename(file), sha256: createHash('sha256').update(bytes).digest('hex') });
      const rows = await readRows(connection, file);
      rows.forEach((row, i) => {
        docs.push(plain(row, () => `${file}: row ${i}`) as Doc);
        origins.push({ file, row: i });
      });
    }
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
  return { split, docs, origins, files: hashed };
}

type Connection = Awaited<ReturnType<DuckDBInstance['connect']>>;

async function readRows(connection: Connection, file: string): Promise<Record<string, unknown>[]> {
  const path = file.replaceAll("'", "''");
  if (file.endsWith('.parquet')) {
    try {
      const reader = await connection.runAndReadAll(`SELECT * FROM read_parquet('${path}')`);
      return reader.getRowObjectsJS() as Record<string, unknown>[];
    } catch (e) {
      throw new FormatError(file, `cannot read as parquet (${firstLine(e)})`);
    }
  }
  // JSON records parsed here, not typed by DuckDB's detection (which would turn date-like strings into dates).
  let texts: string[];
  try {
    const reader = await connection.runAndReadAll(
      `SELECT json::VARCHAR AS json FROM read_json_objects('${path}', format = 'auto')`,
    );
    texts = (reader.getRowObjectsJS() as { json: string }[]).map((r) => r.json);
  } catch (e) {
    throw new FormatError(file, `cannot read as JSON (${firstLine(e)})`);
  }
  return texts.map((text, i) => {
    let value: unknown;
    try {
      value = parseStrictJson(text);
    } catch (e) {
      if (!(e instanceof JsonSyntaxError)) throw e;
      throw new FormatError(file, `record ${i}: not valid JSON (${e.message})`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw new FormatError(file, `record ${i}: expected a JSON object`);
    return value as Record<string, unknown>;
  });
}
