/**
 * Naming a checkpoint: a folder, or a Hugging Face hub id (`org/name`, `org/name@revision`) found
 * offline in the local hub cache as `huggingface_hub` lays it out. Nothing is ever downloaded.
 *
 *   <cache>/models--<org>--<name>/refs/<revision>       a file holding a commit hash
 *   <cache>/models--<org>--<name>/snapshots/<commit>/   the files, symlinks into ../../blobs/
 *   <cache>/models--<org>--<name>/blobs/<hash>           each file's content, once
 *
 * A snapshot with a link whose blob is missing is refused by name, link and blob.
 * `org/name@step*` names every `step<N>` revision of the repository in the cache (resolveCheckpoints).
 *
 * The cache is `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
 * `~/.cache/huggingface/hub` (huggingface_hub's constants, with its older `HUGGINGFACE_HUB_CACHE`).
 */
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { ConfigError } from '../util/errors.js';

export interface ResolveOptions {
  /** The hub cache folder (default: from the environment, as huggingface_hub finds it). */
  cacheDir?: string;
  /** Branch, tag or commit hash for a hub id given without `@revision` (default `main`). */
  revision?: string;
}

export interface ResolvedCheckpoint {
  /** The checkpoint folder (for a hub id, its snapshot folder). */
  dir: string;
  /** `org/name` for a hub id; for a folder, its name (the parent's for a suite's `step<N>`). */
  model: string;
  /** The hub revision asked for. */
  revision?: string;
  /** The training step, from a `step<N>` folder or revision (or a `step<N>` ref naming the commit). */
  step?: number;
}

const COMMIT_HASH = /^[0-9a-f]{40}$/;
const HUB_ID = /^([A-Za-z0-9][A-Za-z0-9_.-]*)\/([A-Za-z0-9][A-Za-z0-9_.-]*)(?:@(.+))?$/;
const STEP = /^step(\d+)$/;

function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path;
}

/** The hub cache folder huggingface_hub would use with this environment. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const direct = env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE;
  if (direct) return expandHome(direct);
  const home = env.HF_HOME
    ? expandHome(env.HF_HOME)
    : join(env.XDG_CACHE_HOME ? expandHome(env.XDG_CACHE_HOME) : join(homedir(), '.cache'), 'huggingface');
  return join(home, 'hub');
}

const isDirectory = (path: string): boolean => existsSync(path) && statSync(path).isDirectory();
const isFile = (path: string): boolean => existsSync(path) && statSync(path).isFile();
const stepOf = (name: string): number | undefined => {
  const m = STEP.exec(name);
  return m ? Number(m[1]) : undefined;
};

/** Resolves a folder or a hub id to a checkpoint folder; a one-line ConfigError when it cannot. */
export function resolveCheckpoint(spec: string, options: ResolveOptions = {}): ResolvedCheckpoint {
  if (isDirectory(spec)) {
    if (options.revision !== undefined)
      throw new ConfigError(`${spec}: a revision applies to a Hugging Face model id, not to a folder`);
    const dir = resolve(spec);
    const step = stepOf(basename(dir));
    return step === undefined ? { dir, model: basename(dir) } : { dir, model: basename(dirname(dir)), step };
  }
  const m = HUB_ID.exec(spec);
  if (!m) {
    throw new ConfigError(
      `${spec}: no such checkpoint folder, and not a Hugging Face model id (org/name or org/name@revision)`,
    );
  }
  const [, org, name, atRevision] = m as unknown as [string, string, string, string | undefined];
  if (atRevision !== undefined && options.revision !== undefined && atRevision !== options.revision) {
    throw new ConfigError(`${spec}: revision ${atRevision} in the id and ${options.revision} as an option; give one`);
  }
  const id = `${org}/${name}`;
  const revision = atRevision ?? options.revision ?? 'main';
  const cacheDir = options.cacheDir ?? hubCacheDir();
  const repoDir = join(cacheDir, `models--${org}--${name}`);
  const fetchHint = `nothing is downloaded: fetch it with huggingface-cli download ${id} --revision ${revision}`;
  if (!isDirectory(repoDir)) {
    throw new ConfigError(
      `${spec}: no such checkpoint folder, and ${id} is not in the Hugging Face cache ${cacheDir}; ${fetchHint}`,
    );
  }
  const refs = listRefs(join(repoDir, 'refs'));
  const snapshots = listSnapshots(repoDir);
  const present = presentRevisions(refs, snapshots);
  const commit = COMMIT_HASH.test(revision) ? revision : refs.get(revision);
  if (commit === undefined || !snapshots.includes(commit)) {
    const what =
      commit === undefined || commit === revision
        ? `revision ${revision} is not in the Hugging Face cache`
        : `revision ${revision} names commit ${commit}, whose snapshot is missing from the Hugging Face cache`;
    throw new ConfigError(`${id}: ${what} ${cacheDir} (${present}); ${fetchHint}`);
  }
  const dir = join(repoDir, 'snapshots', commit);
  const dangling = danglingLinks(dir);
  if (dangling.length > 0) {
    const [{ link, blob }] = dangling as [DanglingLink];
    const partial = existsSync(`${blob}.incomplete`) ? ` (an interrupted download left ${blob}.incomplete)` : '';
    const more =
      dangling.length > 1
        ? ` (and ${dangling.length - 1} more: ${dangling
            .slice(1)
            .map((d) => relative(dir, d.link))
            .join(', ')})`
        : '';
    throw new ConfigError(
      `${id}@${revision}: ${link} links to ${blob}, which is missing from the Hugging Face cache${partial}${more}; fetch it again with huggingface-cli download ${id} --revision ${revision}`,
    );
  }
  const stepRef = [...refs].find(([ref, hash]) => hash === commit && stepOf(ref) !== undefined)?.[0];
  const step = stepOf(revision) ?? (stepRef === undefined ? undefined : stepOf(stepRef));
  return { dir, model: id, revision, ...(step === undefined ? {} : { step }) };
}

/**
 * `org/name@<pattern>`, a revision with `*` (any characters): every `step<N>` ref of the cached
 * repository that the whole pattern matches (`step*` all of them), in step order, each resolved as
 * resolveCheckpoint does, so a matched step whose snapshot is missing or incomplete is refused by
 * name. Offline, like everything here; a pattern matching none is an error listing what is there.
 * Any other spec is the one checkpoint resolveCheckpoint gives.
 */
export function resolveCheckpoints(spec: string, options: ResolveOptions = {}): ResolvedCheckpoint[] {
  const m = HUB_ID.exec(spec);
  const pattern = m?.[3];
  if (pattern === undefined || !pattern.includes('*') || isDirectory(spec)) return [resolveCheckpoint(spec, options)];
  const id = `${m![1]}/${m![2]}`;
  if (options.revision !== undefined)
    throw new ConfigError(
      `${spec}: revision pattern ${pattern} in the id and ${options.revision} as an option; give one`,
    );
  const cacheDir = options.cacheDir ?? hubCacheDir();
  const repoDir = join(cacheDir, `models--${m![1]}--${m![2]}`);
  if (!isDirectory(repoDir)) {
    throw new ConfigError(
      `${spec}: ${id} is not in the Hugging Face cache ${cacheDir}; nothing is downloaded: fetch a revision with huggingface-cli download ${id} --revision step<N>`,
    );
  }
  const refs = listRefs(join(repoDir, 'refs'));
  const glob = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`);
  const steps = [...refs.keys()]
    .filter((ref) => stepOf(ref) !== undefined && glob.test(ref))
    .sort((a, b) => stepOf(a)! - stepOf(b)!);
  if (steps.length === 0) {
    throw new ConfigError(
      `${spec}: no step<N> revision matching ${pattern} in the Hugging Face cache ${cacheDir} (${presentRevisions(refs, listSnapshots(repoDir))})`,
    );
  }
  return steps.map((ref) => resolveCheckpoint(`${id}@${ref}`, { cacheDir }));
}

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function listSnapshots(repoDir: string): string[] {
  const dir = join(repoDir, 'snapshots');
  return isDirectory(dir)
    ? readdirSync(dir)
        .filter((s) => isDirectory(join(dir, s)))
        .sort()
    : [];
}

function presentRevisions(refs: Map<string, string>, snapshots: readonly string[]): string {
  return `revisions present: ${refs.size > 0 ? [...refs.keys()].join(', ') : 'no refs'}; snapshots: ${snapshots.length > 0 ? snapshots.join(', ') : 'none'}`;
}

interface DanglingLink {
  link: string;
  /** Where it points, resolved. */
  blob: string;
}

/**
 * A snapshot's links whose blob is gone (deleted, or a download that never finished): the files
 * would look absent, and a checkpoint without its weights would be reported as having none.
 */
function danglingLinks(snapshotDir: string): DanglingLink[] {
  const out: DanglingLink[] = [];
  const names = readdirSync(snapshotDir, { recursive: true, encoding: 'utf8' }).sort();
  for (const name of names) {
    const link = join(snapshotDir, name);
    if (!lstatSync(link).isSymbolicLink() || existsSync(link)) continue;
    out.push({ link, blob: resolve(dirname(link), readlinkSync(link)) });
  }
  return out;
}

/** Every ref (branches, tags, `refs/pr/N`) and the commit it names, sorted with steps in numeric order. */
function listRefs(refsDir: string): Map<string, string> {
  const refs = new Map<string, string>();
  if (!isDirectory(refsDir)) return refs;
  const entries = readdirSync(refsDir, { recursive: true, encoding: 'utf8' }).sort((a, b) =>
    a.localeCompare(b, 'en', { numeric: true }),
  );
  for (const ref of entries) {
    const path = join(refsDir, ref);
    if (isFile(path)) refs.set(ref.split('\\').join('/'), readFileSync(path, 'utf8').trim());
  }
  return refs;
}
