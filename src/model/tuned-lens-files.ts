/**
 * Tuned lenses on disk. A lens is a folder of `config.json` (tuned-lens's TunedLensConfig:
 * base_model_name_or_path, d_model, num_hidden_layers, bias, base_model_revision, unembed_hash,
 * lens_type; ours adds `training`, the settings and data that trained it) and its translators in
 * tuned-lens's state-dict names `<ℓ>.weight` [d_model, d_model] and `<ℓ>.bias` [d_model]: ours in
 * `params.safetensors` (float32), tuned-lens's published ones in `params.pt` (torch.save of
 * `layer_translators.state_dict()`). Ours are written atomically, never inside a hub snapshot.
 */
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { openSafetensors, safetensorsBytes } from '../formats/safetensors.js';
import { isJsonObject, type JsonValue, parseStrictJson } from '../formats/strict-json.js';
import type { TensorSource } from '../formats/tensor-file.js';
import { openTorchCheckpoint } from '../formats/torch-zip.js';
import { replaceDirectory, tempPathFor } from '../util/atomic.js';
import { ConfigError, FormatError, withPath } from '../util/errors.js';
import type { TunedLens } from './tuned-lens.js';

export const LENS_CONFIG = 'config.json';
export const LENS_PARAMS = 'params.safetensors';
/** tuned-lens's own file of translators. */
export const LENS_PARAMS_PT = 'params.pt';
const MAX_CONFIG_BYTES = 1 << 20;

/** What trained a lens, by name (written by us; absent from tuned-lens's published lenses). */
export type LensTraining = Record<string, number | string | boolean | null>;

export interface SavedLens {
  lens: TunedLens;
  /** tuned-lens's base_model_name_or_path. */
  baseModel: string | null;
  revision: string | null;
  training: LensTraining | null;
  /** The file the translators came from. */
  paramsFile: string;
}

/** Whether `path` (or the folder it would be made in) lies in a Hugging Face hub cache's snapshot or blobs. */
export function inHubSnapshot(path: string): boolean {
  let existing = resolve(path);
  const rest: string[] = [];
  while (!existsSync(existing) && dirname(existing) !== existing) {
    rest.unshift(basename(existing));
    existing = dirname(existing);
  }
  const real = join(realpathSync(existing), ...rest);
  return [resolve(path), real].some((p) => /(^|[\\/])models--[^\\/]+[\\/](snapshots|blobs)([\\/]|$)/.test(p));
}

/** `<suite>/lenses/<model>/step<N>` for a suite checkpoint `<suite>/<model>/step<N>`; undefined for any other folder. */
export function suiteLensDir(checkpointDir: string): string | undefined {
  const dir = resolve(checkpointDir);
  if (!/^step\d+$/.test(basename(dir)) || inHubSnapshot(dir)) return undefined;
  const model = dirname(dir);
  return join(dirname(model), 'lenses', basename(model), basename(dir));
}

/** Refuses, in one line, a lens folder inside a hub snapshot. */
export function refuseHubSnapshot(dir: string): void {
  if (inHubSnapshot(dir))
    throw new ConfigError(
      `${dir}: inside a Hugging Face hub snapshot, which is never written into; give the lens another folder (--lens-dir)`,
    );
}

/** Writes `lens` to the folder `dir` (replacing one there) in one atomic step. */
export async function saveTunedLens(
  dir: string,
  lens: TunedLens,
  meta: { baseModel: string | null; revision: string | null; training: LensTraining },
): Promise<void> {
  refuseHubSnapshot(dir);
  const L = lens.weights.length;
  const H = lens.hiddenSize;
  const config = {
    base_model_name_or_path: meta.baseModel,
    d_model: H,
    num_hidden_layers: L,
    bias: true,
    base_model_revision: meta.revision,
    unembed_hash: null,
    lens_type: 'linear_tuned_lens',
    training: meta.training,
  };
  const tensors = lens.weights.flatMap((w, l) => [
    { name: `${l}.weight`, dtype: 'F32' as const, shape: [H, H], data: w },
    { name: `${l}.bias`, dtype: 'F32' as const, shape: [H], data: lens.biases[l]! },
  ]);
  const target = resolve(dir);
  const tmp = tempPathFor(target);
  try {
    mkdirSync(tmp, { recursive: true });
    writeFileSync(join(tmp, LENS_CONFIG), `${JSON.stringify(config, null, 2)}\n`);
    writeFileSync(join(tmp, LENS_PARAMS), safetensorsBytes(tensors, { format: 'pt' }));
    await replaceDirectory(tmp, target);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw withPath(e, target);
  }
}

function readConfig(path: string): Record<string, JsonValue> {
  if (!existsSync(path)) throw new FormatError(dirname(path), `not a tuned lens folder: ${LENS_CONFIG} is missing`);
  const size = statSync(path).size;
  if (size > MAX_CONFIG_BYTES) throw new FormatError(path, `${size} bytes, more than a lens config holds`);
  let json: JsonValue;
  try {
    json = parseStrictJson(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new FormatError(path, `not valid JSON: ${(e as Error).message}`);
  }
  if (!isJsonObject(json)) throw new FormatError(path, 'expected a JSON object (tuned-lens TunedLensConfig)');
  return json;
}

function positiveInt(path: string, json: Record<string, JsonValue>, field: string): number {
  const v = json[field];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
    throw new FormatError(path, `${field}: expected a positive integer, got ${JSON.stringify(v ?? null)}`);
  return v;
}

function optionalString(path: string, json: Record<string, JsonValue>, field: string): string | null {
  const v = json[field];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string')
    throw new FormatError(path, `${field}: expected a string or null, got ${JSON.stringify(v)}`);
  return v;
}

/** Reads a lens folder: ours (params.safetensors) or tuned-lens's (params.pt). */
export function loadTunedLens(dir: string): SavedLens {
  const configPath = join(dir, LENS_CONFIG);
  const json = readConfig(configPath);
  const H = positiveInt(configPath, json, 'd_model');
  const L = positiveInt(configPath, json, 'num_hidden_layers');
  const bias = json.bias ?? true;
  if (typeof bias !== 'boolean')
    throw new FormatError(configPath, `bias: expected true or false, got ${JSON.stringify(bias)}`);
  const lensType = json.lens_type ?? 'linear_tuned_lens';
  if (lensType !== 'linear_tuned_lens')
    throw new FormatError(configPath, `lens_type: expected "linear_tuned_lens", got ${JSON.stringify(lensType)}`);
  const training = json.training ?? null;
  if (
    training !== null &&
    !(isJsonObject(training) && Object.values(training).every((v) => v === null || typeof v !== 'object'))
  )
    throw new FormatError(configPath, `training: expected an object of settings, got ${JSON.stringify(training)}`);
  const paramsFile = [LENS_PARAMS, LENS_PARAMS_PT].map((f) => join(dir, f)).find((f) => existsSync(f));
  if (!paramsFile) throw new FormatError(dir, `not a tuned lens folder: neither ${LENS_PARAMS} nor ${LENS_PARAMS_PT}`);
  const source: TensorSource = paramsFile.endsWith('.pt')
    ? openTorchCheckpoint(paramsFile)
    : openSafetensors(paramsFile);
  try {
    const lens = readTranslators(source, H, L, bias);
    return {
      lens,
      baseModel: optionalString(configPath, json, 'base_model_name_or_path'),
      revision: optionalString(configPath, json, 'base_model_revision'),
      training: training === null ? null : { ...(training as LensTraining) },
      paramsFile,
    };
  } finally {
    source.close();
  }
}

/** The translators `<ℓ>.weight` [H, H] and (with bias) `<ℓ>.bias` [H] for ℓ < L, and nothing else. */
function readTranslators(source: TensorSource, H: number, L: number, bias: boolean): TunedLens {
  const expected = new Map<string, number[]>();
  for (let l = 0; l < L; l++) {
    expected.set(`${l}.weight`, [H, H]);
    if (bias) expected.set(`${l}.bias`, [H]);
  }
  const what = `a lens of ${L} translators of width ${H} holds ${bias ? '<ℓ>.weight and <ℓ>.bias' : '<ℓ>.weight'} for ℓ < ${L}`;
  const found = new Set<string>();
  for (const info of source.list()) {
    const shape = expected.get(info.name);
    if (!shape) throw new FormatError(source.file, `unexpected tensor ${JSON.stringify(info.name)}: ${what}`);
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i]))
      throw new FormatError(
        source.file,
        `tensor ${info.name} has shape [${info.shape.join(', ')}], expected [${shape.join(', ')}] (d_model ${H} in config.json)`,
      );
    found.add(info.name);
  }
  const missing = [...expected.keys()].filter((n) => !found.has(n));
  if (missing.length > 0) throw new FormatError(source.file, `no tensor ${missing[0]}: ${what}`);
  return {
    hiddenSize: H,
    weights: Array.from({ length: L }, (_, l) => source.readFloat32(`${l}.weight`)),
    biases: Array.from({ length: L }, (_, l) => (bias ? source.readFloat32(`${l}.bias`) : new Float32Array(H))),
  };
}
