/**
 * The attention graph of `pythia export web`: the checkpoint's weights baked in, `input_ids`,
 * `position_ids` [batch, seq] and `attention_bias` [1, 1, seq, seq] (0 where a token may attend,
 * −inf where not) in, and every layer's `blocks.ℓ.attn.hook_pattern` [batch, head, dest, src] out:
 * the named activations ActivationRunner computes (the decomposed attention, as TransformerLens), so
 * the page's patterns are the attention study's. A separate file from the generation model, whose
 * fused attention never materialises the pattern; it carries its own copy of the weights.
 */
import { join } from 'node:path';
import { Graph, type Tensor } from '../graph/graph.js';
import { type ModelSpec, toOnnx } from '../graph/onnx.js';
import type { NeoXConfig } from '../model/config.js';
import { buildGptNeoX } from '../model/gpt-neox.js';
import { ActivationHooks, resolveActivationNames } from '../model/hooks.js';
import { type Params, parameterConstants } from '../model/params.js';
import { AtomicFileWriter, writeFileAtomic } from '../util/atomic.js';
import { EXTERNAL_DATA_BYTES, type ExportDType, float16Constants, weightBytes } from './onnx-model.js';

/** The pattern of every layer, by its TransformerLens name. */
export const PATTERN_NAMES = 'blocks.*.attn.hook_pattern';

export function attentionGraph(config: NeoXConfig, params: Params, dtype: ExportDType): ModelSpec {
  const graph = new Graph();
  const weight = dtype === 'fp16' ? float16Constants(graph, config, params) : parameterConstants(graph, config, params);
  const hooks = new ActivationHooks(resolveActivationNames(config, [PATTERN_NAMES]));
  buildGptNeoX(config, weight, {
    ids: graph.input('input_ids', 'int64', ['batch', 'seq']),
    positions: graph.input('position_ids', 'int64', ['batch', 'seq']),
    attentionBias: graph.input('attention_bias', 'float32', [1, 1, 'seq', 'seq']),
    fused: false,
    hooks,
  });
  const outputs: Record<string, Tensor> = Object.fromEntries(hooks.outputs);
  return { graph, outputs, name: 'gpt_neox_attention' };
}

/** Writes `<dir>/<file>` (and `<file>_data` where the weights pass protobuf's limit); the files written. */
export async function writeAttentionModel(
  dir: string,
  file: string,
  config: NeoXConfig,
  params: Params,
  dtype: ExportDType,
): Promise<string[]> {
  const dataName = `${file}_data`;
  const external = weightBytes(config, dtype) > EXTERNAL_DATA_BYTES;
  const encoded = toOnnx(
    attentionGraph(config, params, dtype),
    external ? { externalData: { location: dataName } } : {},
  );
  const files = [file];
  if (encoded.externalChunks) {
    const writer = new AtomicFileWriter(join(dir, dataName));
    try {
      for (const chunk of encoded.externalChunks) writer.write(chunk);
      writer.commit();
    } catch (e) {
      writer.abort();
      throw e;
    }
    files.push(dataName);
  }
  await writeFileAtomic(join(dir, file), encoded.bytes);
  return files;
}
