/**
 * Checkpoint folders in Hugging Face's layout: config.json, the weights (any layout the formats
 * layer reads), and tokenizer.json where known. What we write loads with
 * `GPTNeoXForCausalLM.from_pretrained(folder)`.
 */

import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  f32ToBf16,
  f32ToF16,
  JsonSyntaxError,
  type JsonValue,
  openCheckpointWeights,
  parseStrictJson,
  type StoredDType,
  type TensorSource,
  type TensorToWrite,
  writeSafetensors,
} from '../formats/index.js';
import { replaceDirectory, tempPathFor } from '../util/atomic.js';
import { ConfigError, FormatError, isSystemError, withPath } from '../util/errors.js';
import {
  ignoredBuffers,
  type NeoXConfig,
  parameterShapes,
  parameterTensorCount,
  parseHfConfig,
  toHfConfig,
  type WeightDType,
} from './config.js';
import type { Params } from './params.js';

/** transformers ≥ 5 names the LM head `lm_head` in its modules; files use `embed_out`. */
const ALIASES: Record<string, string> = { 'lm_head.weight': 'embed_out.weight' };

export interface Checkpoint {
  dir: string;
  config: NeoXConfig;
  params: Params;
  /** The stored dtype of each parameter, as found on disk. */
  storedDTypes: Map<string, StoredDType>;
  tokenizerPath: string | undefined;
}

/** A config.json is a few kilobytes; anything this large is not one. */
const MAX_CONFIG_BYTES = 16 << 20;

export function readConfig(dir: string): NeoXConfig {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) throw new FormatError(dir, 'not a checkpoint folder: config.json is missing');
  const size = statSync(path).size;
  if (size > MAX_CONFIG_BYTES)
    throw new FormatError(path, `${size} bytes, more than a config.json holds (at most ${MAX_CONFIG_BYTES})`);
  let json: JsonValue;
  try {
    json = parseStrictJson(readFileSync(path, 'utf8'));
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    throw new FormatError(path, `not valid JSON: ${e.message}`);
  }
  return parseHfConfig(json, path);
}

/** A parameter as stored: its name in the file (`stored`), its name here, and its dtype on disk. */
export interface StoredParameter {
  stored: string;
  name: string;
  dtype: StoredDType;
}

/**
 * The stored tensors of `source` against `config`: exactly one per parameter, each of the shape
 * the config implies (the buffers old checkpoints carry are skipped).
 */
export function storedParameters(source: TensorSource, config: NeoXConfig, dir: string): StoredParameter[] {
  const ignored = ignoredBuffers(config);
  const stored = source.list().filter((info) => !ignored.has(ALIASES[info.name] ?? info.name));
  const expected = parameterTensorCount(config);
  if (stored.length !== expected) {
    throw new FormatError(
      source.file,
      `holds ${stored.length} parameter tensors, but ${join(dir, 'config.json')} (${config.numLayers} layers) implies ${expected}`,
    );
  }
  const wanted = new Map(parameterShapes(config).map((p) => [p.name, p.shape]));
  const found = new Set<string>();
  const out = stored.map((info) => {
    const name = ALIASES[info.name] ?? info.name;
    const shape = wanted.get(name);
    if (!shape) throw new FormatError(source.file, `unexpected tensor ${info.name} for this config.json`);
    if (shape.length !== info.shape.length || shape.some((d, i) => d !== info.shape[i])) {
      throw new FormatError(
        source.file,
        `tensor ${info.name} has shape [${info.shape.join(',')}], config.json implies [${shape.join(',')}]`,
      );
    }
    found.add(name);
    return { stored: info.name, name, dtype: info.dtype };
  });
  for (const name of wanted.keys()) if (!found.has(name)) throw new FormatError(source.file, `missing tensor ${name}`);
  return out;
}

/** Refuses weights holding a NaN or ±Infinity, naming the file, tensor and element. */
export function checkFinite(file: string, name: string, values: Float32Array): void {
  const bad = firstNonFinite(values);
  if (bad >= 0)
    throw new FormatError(file, `tensor ${name} holds ${values[bad]} at element ${bad}: weights must be finite`);
}

/** Loads config and weights (converted to float32) from a checkpoint folder; non-finite weights are refused. */
export function loadCheckpoint(dir: string): Checkpoint {
  const config = readConfig(dir);
  const source = openCheckpointWeights(dir);
  try {
    const params: Params = new Map();
    const storedDTypes = new Map<string, StoredDType>();
    for (const { stored, name, dtype } of storedParameters(source, config, dir)) {
      const values = source.readFloat32(stored);
      checkFinite(source.file, stored, values);
      params.set(name, values);
      storedDTypes.set(name, dtype);
    }
    return { dir, config, params, storedDTypes, tokenizerPath: tokenizerOf(dir) };
  } finally {
    source.close();
  }
}

/** The folder's tokenizer.json, where it has one. */
export function tokenizerOf(dir: string): string | undefined {
  const tokenizer = join(dir, 'tokenizer.json');
  return existsSync(tokenizer) ? tokenizer : undefined;
}

/**
 * Index of the first NaN or ±Infinity, or −1. Float64 sums of float32 values cannot overflow, so
 * they are finite exactly when every value is: four running sums are a fast test (half a
 * nanosecond a value), and only a non-finite sum pays for the search.
 */
function firstNonFinite(values: Float32Array): number {
  let [a, b, c, d] = [0, 0, 0, 0];
  const n = values.length & ~3;
  for (let i = 0; i < n; i += 4) {
    a += values[i]!;
    b += values[i + 1]!;
    c += values[i + 2]!;
    d += values[i + 3]!;
  }
  for (let i = n; i < values.length; i++) a += values[i]!;
  return Number.isFinite(a + b + c + d) ? -1 : values.findIndex((v) => !Number.isFinite(v));
}

const STORED: Record<WeightDType, StoredDType> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' };

export interface SaveOptions {
  /** Weight dtype on disk; default float32 (Pythia publishes float16). */
  dtype?: WeightDType;
  tokenizerPath?: string;
  /** Extra files to place in the folder (name → contents), such as optimizer state. */
  extraFiles?: Record<string, string | Uint8Array>;
}

/**
 * Writes a checkpoint folder atomically: everything goes into a temporary sibling folder
 * (`.<name>.<hex>.tmp`) that is then swapped in (replaceDirectory: an existing folder is renamed
 * aside, the new one in, then the old deleted), so `dir` is always absent or whole.
 */
export async function saveCheckpoint(
  dir: string,
  config: NeoXConfig,
  params: Params,
  options: SaveOptions = {},
): Promise<void> {
  const dtype = options.dtype ?? 'float32';
  const tmp = tempPathFor(dir);
  await mkdir(tmp, { recursive: true });
  try {
    const tensors: TensorToWrite[] = parameterShapes(config).map(({ name, shape }) => {
      const p = params.get(name);
      if (!p) throw new ConfigError(`cannot save: parameter ${name} is missing`);
      const data = dtype === 'float16' ? f32ToF16(p) : dtype === 'bfloat16' ? f32ToBf16(p) : p;
      return { name, dtype: STORED[dtype], shape, data };
    });
    const write = async (name: string, contents: string | Uint8Array): Promise<void> => {
      await writeFile(join(tmp, name), contents).catch((e: unknown) => Promise.reject(withPath(e, join(tmp, name))));
    };
    await write('config.json', `${JSON.stringify({ ...toHfConfig(config), torch_dtype: dtype }, null, 2)}\n`);
    await write(
      'generation_config.json',
      `${JSON.stringify({ bos_token_id: config.bosTokenId, eos_token_id: config.eosTokenId }, null, 2)}\n`,
    );
    await writeSafetensors(join(tmp, 'model.safetensors'), tensors, { format: 'pt' });
    if (options.tokenizerPath) await copyFile(options.tokenizerPath, join(tmp, 'tokenizer.json'));
    for (const [name, contents] of Object.entries(options.extraFiles ?? {})) await write(name, contents);
    await replaceDirectory(tmp, dir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    // Name the folder being saved, not its temporary name.
    if (isSystemError(e) && e.path?.startsWith(tmp)) e.path = dir + e.path.slice(tmp.length);
    throw e;
  }
}

const INTERRUPTED = /^\.(.+)\.[0-9a-f]{8}\.(tmp|old)$/;

/**
 * Tidies what a killed saveCheckpoint can leave in `parent`: a folder renamed aside (`.old`, whole)
 * goes back to its name when nothing took its place, and is deleted otherwise; a `.tmp` folder
 * (possibly partial) is deleted. Only names that `folders` matches are touched.
 */
export function recoverInterruptedSaves(parent: string, folders: RegExp): void {
  if (!existsSync(parent)) return;
  const entries = readdirSync(parent)
    .map((e) => ({ entry: e, m: INTERRUPTED.exec(e) }))
    .filter(({ m }) => m && folders.test(m[1]!));
  for (const { entry, m } of entries) {
    const target = join(parent, m![1]!);
    if (m![2] === 'old' && !existsSync(target)) renameSync(join(parent, entry), target);
  }
  for (const { entry } of entries) rmSync(join(parent, entry), { recursive: true, force: true });
}
