/**
 * The GPT-NeoX graph as transformers.js and Optimum's exports present it: `input_ids`,
 * `attention_mask` (1 for real tokens, 0 for padding, over past + new positions), `position_ids` and
 * `past_key_values.{i}.key/value` [batch, heads, past, head_dim] in; `logits` [batch, seq, vocab]
 * and `present.{i}.key/value` [batch, heads, past + seq, head_dim] out. The additive attention bias
 * (causal and padding) is computed inside the graph from the mask; everything else is
 * `buildGptNeoX` with its fused rotary and attention, the same graph our decoder runs.
 */

import { f32ToF16 } from '../formats/index.js';
import { Graph, type Tensor } from '../graph/graph.js';
import { type EncodedModel, type ModelSpec, toOnnx } from '../graph/onnx.js';
import * as op from '../graph/ops.js';
import { headDim, type NeoXConfig, parameterShapes } from '../model/config.js';
import { buildGptNeoX, type LayerCache, lmHead, MASK_VALUE, type WeightLookup } from '../model/gpt-neox.js';
import { groupQkvRows, type Params, parameterConstants } from '../model/params.js';

export type ExportDType = 'fp32' | 'fp16';

/** Symbolic dimension names, as Optimum writes them; transformers.js sizes an empty cache from them. */
export const DIMS = {
  batch: 'batch_size',
  seq: 'sequence_length',
  past: 'past_sequence_length',
  total: 'past_sequence_length+sequence_length',
} as const;

/**
 * Additive bias [batch, 1, seq, total] from the mask [batch, total]: key u is hidden from the query
 * in slot t (of past + seq slots) when u comes after it or is padding.
 */
export function maskToBias(mask: Tensor, ids: Tensor): Tensor {
  const graph = mask.graph;
  const [B, T] = mask.shape;
  const S = ids.shape[1]!;
  const one = op.scalar(graph, 1, 'int64');
  const keyOnes = op.broadcastLike(one, mask);
  const queryOnes = op.broadcastLike(one, ids);
  const keySlot = op.sub(op.cumsum(keyOnes, 1), 1);
  const past = op.sub(op.sum(keyOnes, [1], true), op.sum(queryOnes, [1], true));
  const querySlot = op.add(op.sub(op.cumsum(queryOnes, 1), 1), past);
  const future = op.greater(op.reshape(keySlot, [B!, 1, 1, T!]), op.reshape(querySlot, [B!, 1, S, 1]));
  const padding = op.equal(op.reshape(mask, [B!, 1, 1, T!]), 0);
  const masked = op.scalar(graph, MASK_VALUE, 'float32');
  const open = op.scalar(graph, 0, 'float32');
  return op.where(future, masked, op.where(padding, masked, open));
}

/** Weights baked in as float16 initializers, each cast to float32 where it is read. */
export function float16Constants(graph: Graph, config: NeoXConfig, params: Params): WeightLookup {
  const tensors = new Map<string, Tensor>();
  for (const { name, shape } of parameterShapes(config)) {
    tensors.set(name, op.cast(graph.initializer(name, f32ToF16(params.get(name)!), shape, 'float16'), 'float32'));
  }
  return (name) => tensors.get(name)!;
}

/** The export graph with the checkpoint's weights baked in. */
export function exportGraph(config: NeoXConfig, params: Params, dtype: ExportDType): ModelSpec {
  const graph = new Graph();
  const grouped = groupQkvRows(config, params);
  const weight =
    dtype === 'fp16' ? float16Constants(graph, config, grouped) : parameterConstants(graph, config, grouped);
  const nh = config.numHeads;
  const hd = headDim(config);
  const ids = graph.input('input_ids', 'int64', [DIMS.batch, DIMS.seq]);
  const mask = graph.input('attention_mask', 'int64', [DIMS.batch, DIMS.total]);
  const positions = graph.input('position_ids', 'int64', [DIMS.batch, DIMS.seq]);
  const past: LayerCache[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    past.push({
      key: graph.input(`past_key_values.${i}.key`, 'float32', [DIMS.batch, nh, DIMS.past, hd]),
      value: graph.input(`past_key_values.${i}.value`, 'float32', [DIMS.batch, nh, DIMS.past, hd]),
    });
  }
  const out = buildGptNeoX(config, weight, {
    ids,
    positions,
    attentionBias: maskToBias(mask, ids),
    past,
    fused: true,
    groupedQkv: true,
  });
  const outputs: Record<string, Tensor> = { logits: lmHead(config, weight, out.final) };
  out.present.forEach((c, i) => {
    outputs[`present.${i}.key`] = c.key;
    outputs[`present.${i}.value`] = c.value;
  });
  return { graph, outputs, name: 'gpt_neox' };
}

/** Beyond this many bytes of weights the model goes to external data (protobuf stops at 2 GiB). */
export const EXTERNAL_DATA_BYTES = 1.9 * 2 ** 30;

export function weightBytes(config: NeoXConfig, dtype: ExportDType): number {
  const count = parameterShapes(config).reduce((sum, p) => sum + p.shape.reduce((a, b) => a * b, 1), 0);
  return count * (dtype === 'fp16' ? 2 : 4);
}

/** Encodes the export graph; with `externalData` the weights go to that file (name relative to the model). */
export function encodeExport(
  config: NeoXConfig,
  params: Params,
  dtype: ExportDType,
  externalData?: string,
): EncodedModel {
  return toOnnx(exportGraph(config, params, dtype), externalData ? { externalData: { location: externalData } } : {});
}
