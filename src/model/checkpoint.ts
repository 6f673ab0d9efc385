/**
 * Checkpoint folders in Hugging Face's layout: config.json, the weights (any layout the formats
 * layer reads), and tokenizer.json where known. What we write loads with
 * `GPTNeoXForCausalLM.from_pretrained(folder)`.
 */
import { copyFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { f32ToBf16, f32ToF16, openCheckpointWeights, writeSafetensors, type StoredDType, type TensorToWrite } from '../formats/index.js';
import { ConfigError, FormatError } from '../util/errors.js';
import { type NeoXConfig, type WeightDType, ignoredBuffers, parameterShapes, parseHfConfig, toHfConfig } from './config.js';
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

export function readConfig(dir: string): NeoXConfig {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) throw new FormatError(dir, 'not a checkpoint folder: config.json is missing');
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new FormatError(path, `not valid JSON: ${(e as Error).message}`);
  }
  return parseHfConfig(json, path);
}

/** Loads config and weights (converted to float32) from a checkpoint folder. */
export function loadCheckpoint(dir: string): Checkpoint {
  const config = readConfig(dir);
  const source = openCheckpointWeights(dir);
  try {
    const wanted = new Map(parameterShapes(config).map((p) => [p.name, p.shape]));
    const ignored = ignoredBuffers(config);
    const params: Params = new Map();
    const storedDTypes = new Map<string, StoredDType>();
    for (const info of source.list()) {
      const name = ALIASES[info.name] ?? info.name;
      const shape = wanted.get(name);
      if (!shape) {
        if (ignored.has(name)) continue;
        throw new FormatError(source.file, `unexpected tensor ${info.name} for this config.json`);
      }
      if (shape.length !== info.shape.length || shape.some((d, i) => d !== info.shape[i])) {
        throw new FormatError(source.file, `tensor ${info.name} has shape [${info.shape.join(',')}], config.json implies [${shape.join(',')}]`);
      }
      params.set(name, source.readFloat32(info.name));
      storedDTypes.set(name, info.dtype);
    }
    for (const name of wanted.keys()) {
      if (!params.has(name)) throw new FormatError(source.file, `missing tensor ${name}`);
    }
    const tokenizer = join(dir, 'tokenizer.json');
    return { dir, config, params, storedDTypes, tokenizerPath: existsSync(tokenizer) ? tokenizer : undefined };
  } finally {
    source.close();
  }
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
 * Writes a checkpoint folder atomically: everything goes into a temporary sibling folder that is
 * renamed into place at the end, so a killed run never leaves a partial folder under `dir`.
 */
export async function saveCheckpoint(dir: string, config: NeoXConfig, params: Params, options: SaveOptions = {}): Promise<void> {
  const dtype = options.dtype ?? 'float32';
  const tmp = join(dirname(dir), `.${basename(dir)}.${randomBytes(4).toString('hex')}.tmp`);
  await mkdir(tmp, { recursive: true });
  try {
    const tensors: TensorToWrite[] = parameterShapes(config).map(({ name, shape }) => {
      const p = params.get(name);
      if (!p) throw new ConfigError(`cannot save: parameter ${name} is missing`);
      const data = dtype === 'float16' ? f32ToF16(p) : dtype === 'bfloat16' ? f32ToBf16(p) : p;
      return { name, dtype: STORED[dtype], shape, data };
    });
    await writeFile(join(tmp, 'config.json'), `${JSON.stringify({ ...toHfConfig(config), torch_dtype: dtype }, null, 2)}\n`);
    await writeFile(
      join(tmp, 'generation_config.json'),
      `${JSON.stringify({ bos_token_id: config.bosTokenId, eos_token_id: config.eosTokenId }, null, 2)}\n`,
    );
    await writeSafetensors(join(tmp, 'model.safetensors'), tensors, { format: 'pt' });
    if (options.tokenizerPath) await copyFile(options.tokenizerPath, join(tmp, 'tokenizer.json'));
    for (const [name, contents] of Object.entries(options.extraFiles ?? {})) await writeFile(join(tmp, name), contents);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}
