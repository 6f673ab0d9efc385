/**
 * A checkpoint as the folder transformers.js loads (`AutoModelForCausalLM.from_pretrained`):
 * `config.json`, `generation_config.json`, `tokenizer.json`, `tokenizer_config.json` and
 * `onnx/model.onnx` (`onnx/model_fp16.onnx` for fp16 weights), with the weights in
 * `onnx/model[_fp16].onnx_data` when they pass protobuf's 2 GiB limit. Every file is written
 * atomically; other files in the folder (an export of the other dtype) stay.
 */

import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseJsonFile } from '../formats/strict-json.js';
import { loadCheckpoint } from '../model/checkpoint.js';
import { type NeoXConfig, toHfConfig } from '../model/config.js';
import type { Params } from '../model/params.js';
import { AtomicFileWriter, tempPathFor, writeFileAtomic } from '../util/atomic.js';
import { FormatError } from '../util/errors.js';
import { EXTERNAL_DATA_BYTES, type ExportDType, encodeExport, weightBytes } from './onnx-model.js';

export interface OnnxExportOptions {
  dtype?: ExportDType;
  /** tokenizer.json to ship; default the checkpoint's own. Without one, the tokenizer files are left out. */
  tokenizerPath?: string;
  /** Weights in `model[_fp16].onnx_data` even when they would fit inside the model file. */
  externalData?: boolean;
}

export interface OnnxExportResult {
  dir: string;
  /** Files written, relative to `dir`. */
  files: string[];
  tokenizer: boolean;
}

/** The file name suffix transformers.js gives each dtype (`src/utils/dtypes.js`). */
export const DTYPE_SUFFIX: Record<ExportDType, string> = { fp32: '', fp16: '_fp16' };

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** Text of the added token with this id, from a tokenizer.json object. */
function addedToken(tokenizer: { added_tokens?: { id: number; content: string }[] }, id: number): string | undefined {
  return tokenizer.added_tokens?.find((t) => t.id === id)?.content;
}

/** GPT-NeoX-20B's tokenizer_config.json, with the special tokens this tokenizer names at the config's ids. */
export function tokenizerConfig(config: NeoXConfig, tokenizerJson: string, source: string): Record<string, unknown> {
  let parsed: { added_tokens?: { id: number; content: string }[] };
  try {
    parsed = JSON.parse(tokenizerJson) as typeof parsed;
  } catch (e) {
    throw new FormatError(source, `not a tokenizer.json: invalid JSON (${(e as Error).message})`);
  }
  const eos = addedToken(parsed, config.eosTokenId);
  const bos = addedToken(parsed, config.bosTokenId);
  return {
    tokenizer_class: 'GPTNeoXTokenizer',
    add_bos_token: false,
    add_eos_token: false,
    add_prefix_space: false,
    clean_up_tokenization_spaces: false,
    model_max_length: config.maxPositions,
    ...(bos ? { bos_token: bos } : {}),
    ...(eos ? { eos_token: eos, unk_token: eos } : {}),
  };
}

/** config.json with transformers.js's own block: which dtype to load, and where the weights are external. */
function exportConfig(
  config: NeoXConfig,
  dtype: ExportDType,
  external: boolean,
  previous: Record<string, unknown> | undefined,
): Record<string, unknown> {
  const fileName = `model${DTYPE_SUFFIX[dtype]}.onnx`;
  const before = (previous?.['transformers.js_config'] ?? {}) as Record<string, unknown>;
  const externalFiles = { ...((before.use_external_data_format ?? {}) as Record<string, number>) };
  if (external) externalFiles[fileName] = 1;
  else delete externalFiles[fileName];
  return {
    ...toHfConfig(config),
    torch_dtype: 'float32',
    'transformers.js_config': {
      dtype,
      ...(Object.keys(externalFiles).length > 0 ? { use_external_data_format: externalFiles } : {}),
    },
  };
}

async function previousConfig(path: string): Promise<Record<string, unknown> | undefined> {
  if (!existsSync(path)) return undefined;
  try {
    return parseJsonFile(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Writes the ONNX model (and its external data) for already-loaded weights. */
export async function writeOnnxModel(
  dir: string,
  config: NeoXConfig,
  params: Params,
  dtype: ExportDType,
  externalData: boolean,
): Promise<string[]> {
  const base = `model${DTYPE_SUFFIX[dtype]}.onnx`;
  const dataName = `${base}_data`;
  const encoded = encodeExport(config, params, dtype, externalData ? dataName : undefined);
  const onnxDir = join(dir, 'onnx');
  await mkdir(onnxDir, { recursive: true });
  const files = [`onnx/${base}`];
  if (encoded.externalChunks) {
    const writer = new AtomicFileWriter(join(onnxDir, dataName));
    try {
      for (const chunk of encoded.externalChunks) writer.write(chunk);
      writer.commit();
    } catch (e) {
      writer.abort();
      throw e;
    }
    files.push(`onnx/${dataName}`);
  } else {
    await rm(join(onnxDir, dataName), { force: true });
  }
  await writeFileAtomic(join(onnxDir, base), encoded.bytes);
  return files;
}

/** Exports a checkpoint folder to `dir` in transformers.js's layout. */
export async function exportOnnx(
  checkpointDir: string,
  dir: string,
  options: OnnxExportOptions = {},
): Promise<OnnxExportResult> {
  const dtype = options.dtype ?? 'fp32';
  const checkpoint = loadCheckpoint(checkpointDir);
  const { config } = checkpoint;
  const external = options.externalData ?? weightBytes(config, dtype) > EXTERNAL_DATA_BYTES;
  await mkdir(dir, { recursive: true });
  const files = await writeOnnxModel(dir, config, checkpoint.params, dtype, external);

  const configPath = join(dir, 'config.json');
  await writeFileAtomic(configPath, json(exportConfig(config, dtype, external, await previousConfig(configPath))));
  await writeFileAtomic(
    join(dir, 'generation_config.json'),
    json({ bos_token_id: config.bosTokenId, eos_token_id: config.eosTokenId }),
  );
  files.push('config.json', 'generation_config.json');

  const tokenizerPath = options.tokenizerPath ?? checkpoint.tokenizerPath;
  if (tokenizerPath) {
    if (!existsSync(tokenizerPath)) throw new FormatError(tokenizerPath, 'tokenizer file not found');
    const text = await readFile(tokenizerPath, 'utf8');
    await writeFileAtomic(join(dir, 'tokenizer_config.json'), json(tokenizerConfig(config, text, tokenizerPath)));
    const tmp = tempPathFor(join(dir, 'tokenizer.json'));
    await copyFile(tokenizerPath, tmp);
    await rename(tmp, join(dir, 'tokenizer.json'));
    files.push('tokenizer.json', 'tokenizer_config.json');
  }
  return { dir, files, tokenizer: tokenizerPath !== undefined };
}
