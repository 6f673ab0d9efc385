/**
 * The GPT-NeoX forward pass as a graph, computing what Hugging Face's GPTNeoXForCausalLM computes
 * (transformers' models/gpt_neox/modeling_gpt_neox.py: `GPTNeoXModel.forward`, `GPTNeoXLayer`,
 * `GPTNeoXAttention`, `GPTNeoXMLP`): embedding, then per layer LayerNorm → fused per-head qkv → rotary on the first
 * rotary_ndims dims of q and k → causal softmax attention → dense, and the MLP, combined with a
 * parallel (Pythia) or sequential residual; final LayerNorm; untied LM head without bias.
 *
 * Activations are [B·T, H] when batch and length are static (so linears are plain GEMMs), and
 * [B, T, H] when they are symbolic (inference graphs that serve any batch and length) or the
 * attention is fused.
 */
import type { Graph, Tensor } from '../graph/graph.js';
import * as op from '../graph/ops.js';
import { type Dim, GraphError } from '../graph/shape.js';
import { geluApproximation, headDim, type NeoXConfig, rotaryDims } from './config.js';
import { halfRotaryTables, qkvRotaryTables, rotateHalfMatrix } from './rotary.js';

/** Supplies the tensor for a parameter by its HF name (a graph input or an initializer). */
export type WeightLookup = (name: string) => Tensor;

export interface LayerCache {
  key: Tensor;
  value: Tensor;
}

export interface ForwardInputs {
  /** Token ids [B, T] (int64). */
  ids: Tensor;
  /** Positions [B, T] (int64); default 0..T−1 for every row. */
  positions?: Tensor;
  /** Additive attention bias broadcastable to [B, 1, T, S] (0 or a large negative); default causal. */
  attentionBias?: Tensor;
  /** Keys and values of earlier positions, [B, heads, P, head_dim] per layer. */
  past?: readonly LayerCache[];
  /**
   * Attention through the fused rotary and attention ops (inference: a few large kernels in place of
   * many small ones). Needs positions and an attention bias; activations stay [B, T, H].
   */
  fused?: boolean;
  /** With `fused`: the query_key_value rows `weight` gives are regrouped [q; k; v] (`groupQkvRows`), not HF's per-head rows. */
  groupedQkv?: boolean;
}

export interface ForwardOutputs {
  /** HF's hidden_states: embedding output, each layer's output but the last, then the final LayerNorm output. */
  hiddenStates: Tensor[];
  /** Final hidden state (after final LayerNorm), [B·T, H] or [B, T, H]. */
  final: Tensor;
  /** Keys and values including this call's positions, per layer. */
  present: LayerCache[];
  /** With `fused`: this call's own keys (rotated) and values, [B, T, H] per layer. */
  fresh: LayerCache[];
}

/** float32's most negative value: HF's additive mask value (masked rows stay finite). */
export const MASK_VALUE = -3.4028234663852886e38;

export function causalBias(length: number): Float32Array {
  const bias = new Float32Array(length * length);
  for (let t = 0; t < length; t++) for (let u = t + 1; u < length; u++) bias[t * length + u] = MASK_VALUE;
  return bias;
}

/** One layer's attention from its fused qkv projection: the merged heads [lead…, H] and the present keys/values. */
type AttentionBlock = (
  qkv: Tensor,
  past: LayerCache | undefined,
) => { merged: Tensor; cache: LayerCache; fresh?: LayerCache };

/**
 * Attention as matmuls, softmax and a multiply-add rotary (differentiable, static or symbolic).
 * Fused rows are per head [nh, 3, hd]: [B, T, nh, 3, hd] → [B, nh, T, 3, hd], rotate, split.
 */
function decomposedAttention(
  config: NeoXConfig,
  positions: Tensor | undefined,
  bias: Tensor,
  [B, T]: [Dim, Dim],
  lead: Dim[],
): AttentionBlock {
  const graph = bias.graph;
  const nh = config.numHeads;
  const hd = headDim(config);
  const r = rotaryDims(config);
  const tableRows = positions ? config.maxPositions : (T as number);
  const table = qkvRotaryTables(tableRows, r, hd, config.rotaryBase);
  let cos: Tensor;
  let sin: Tensor;
  if (positions) {
    cos = op.reshape(op.gather(graph.constant(table.cos, [tableRows, 3 * hd]), positions), [B, 1, T, 3, hd]);
    sin = op.reshape(op.gather(graph.constant(table.sin, [tableRows, 3 * hd]), positions), [B, 1, T, 3, hd]);
  } else {
    if (typeof T !== 'number') throw new GraphError('gpt-neox', 'symbolic batch or length needs explicit positions');
    cos = graph.constant(table.cos, [tableRows, 3, hd]);
    sin = graph.constant(table.sin, [tableRows, 3, hd]);
  }
  const rotateHalf = graph.constant(rotateHalfMatrix(r, hd), [hd, hd]);
  return (qkv, past) => {
    const heads = op.transpose(op.reshape(qkv, [B, T, nh, 3, hd]), [0, 2, 1, 3, 4]);
    const rotated = r === 0 ? heads : op.add(op.mul(heads, cos), op.mul(op.matmul(heads, rotateHalf), sin));
    const [q, k0, v0] = op.split(rotated, 3, [1, 1, 1]).map((t) => op.reshape(t, [B, nh, T, hd])) as [
      Tensor,
      Tensor,
      Tensor,
    ];
    const k = past ? op.concat([past.key, k0], 2) : k0;
    const v = past ? op.concat([past.value, v0], 2) : v0;
    const scores = op.add(op.matmul(q, k, { transB: true, alpha: 1 / Math.sqrt(hd) }), bias);
    const context = op.matmul(op.softmax(scores, -1), v);
    return {
      merged: op.reshape(op.transpose(context, [0, 2, 1, 3]), [...lead, config.hiddenSize]),
      cache: { key: k, value: v },
    };
  };
}

/**
 * Attention through the rotary and attention ops. HF's qkv rows are per head [nh, 3, hd]: split on
 * that axis of [B, T, nh, 3, hd], which costs four Reshape kernels a layer; rows regrouped
 * [q; k; v] (`groupedQkv`) split on the last axis with none.
 */
function fusedAttention(
  config: NeoXConfig,
  positions: Tensor,
  bias: Tensor,
  [B, T]: [Dim, Dim],
  grouped: boolean,
): AttentionBlock {
  const H = config.hiddenSize;
  const nh = config.numHeads;
  const hd = headDim(config);
  const r = rotaryDims(config);
  const table = halfRotaryTables(config.maxPositions, r, config.rotaryBase);
  const cos = bias.graph.constant(table.cos, [config.maxPositions, r / 2]);
  const sin = bias.graph.constant(table.sin, [config.maxPositions, r / 2]);
  const rotate = (t: Tensor): Tensor => (r === 0 ? t : op.rotary(t, positions, cos, sin, nh));
  return (qkv, past) => {
    const [q, k, v] = (
      grouped
        ? op.split(qkv, -1, [H, H, H])
        : op.split(op.reshape(qkv, [B, T, nh, 3, hd]), 3, [1, 1, 1]).map((t) => op.reshape(t, [B, T, H]))
    ) as [Tensor, Tensor, Tensor];
    const key = rotate(k);
    const out = op.attention(rotate(q), key, v, bias, { heads: nh, scale: 1 / Math.sqrt(hd), past });
    return { merged: out.output, cache: { key: out.key, value: out.value }, fresh: { key, value: v } };
  };
}

export function buildGptNeoX(config: NeoXConfig, weight: WeightLookup, inputs: ForwardInputs): ForwardOutputs {
  const { ids } = inputs;
  const graph: Graph = ids.graph;
  if (ids.rank !== 2) throw new GraphError('gpt-neox', `ids must be [batch, seq], got ${ids}`);
  const [B, T] = ids.shape as [Dim, Dim];
  const H = config.hiddenSize;
  const fused = inputs.fused ?? false;
  const flat = typeof B === 'number' && typeof T === 'number' && !fused;
  const lead: Dim[] = flat ? [(B as number) * (T as number)] : [B, T];
  const eps = config.layerNormEps;
  const approximate = geluApproximation(config);

  let x = op.gather(weight('gpt_neox.embed_in.weight'), ids);
  if (flat) x = op.reshape(x, [...lead, H]);

  const positions = inputs.positions;
  let bias = inputs.attentionBias;
  if (fused && (!positions || !bias))
    throw new GraphError('gpt-neox', 'fused attention needs explicit positions and an attention bias');
  if (!bias) {
    if (!flat || inputs.past)
      throw new GraphError('gpt-neox', 'symbolic shapes or a cache need an explicit attention bias');
    bias = graph.constant(causalBias(T as number), [1, 1, T as number, T as number]);
  }
  const attend = fused
    ? fusedAttention(config, positions!, bias, [B, T], inputs.groupedQkv ?? false)
    : decomposedAttention(config, positions, bias, [B, T], lead);

  const hiddenStates: Tensor[] = [x];
  const present: LayerCache[] = [];
  const fresh: LayerCache[] = [];
  const bOf = (name: string): Tensor | undefined => (config.attentionBias ? weight(name) : undefined);

  for (let i = 0; i < config.numLayers; i++) {
    const p = `gpt_neox.layers.${i}`;
    const a = op.layerNorm(x, weight(`${p}.input_layernorm.weight`), weight(`${p}.input_layernorm.bias`), eps);
    const qkv = op.linear(
      a,
      weight(`${p}.attention.query_key_value.weight`),
      bOf(`${p}.attention.query_key_value.bias`),
    );
    const block = attend(qkv, inputs.past?.[i]);
    present.push(block.cache);
    if (block.fresh) fresh.push(block.fresh);
    const attn = op.linear(block.merged, weight(`${p}.attention.dense.weight`), bOf(`${p}.attention.dense.bias`));

    const mlp = (h: Tensor): Tensor => {
      const n = op.layerNorm(
        h,
        weight(`${p}.post_attention_layernorm.weight`),
        weight(`${p}.post_attention_layernorm.bias`),
        eps,
      );
      const up = op.gelu(
        op.linear(n, weight(`${p}.mlp.dense_h_to_4h.weight`), weight(`${p}.mlp.dense_h_to_4h.bias`)),
        approximate,
      );
      return op.linear(up, weight(`${p}.mlp.dense_4h_to_h.weight`), weight(`${p}.mlp.dense_4h_to_h.bias`));
    };
    if (config.parallelResidual) {
      x = op.add(op.add(mlp(x), attn), x);
    } else {
      const x1 = op.add(attn, x);
      x = op.add(mlp(x1), x1);
    }
    if (i < config.numLayers - 1) hiddenStates.push(x);
  }
  const final = op.layerNorm(
    x,
    weight('gpt_neox.final_layer_norm.weight'),
    weight('gpt_neox.final_layer_norm.bias'),
    eps,
  );
  hiddenStates.push(final);
  return { hiddenStates, final, present, fresh };
}

/** logits = final · embed_outᵀ (embed_in when the embeddings are tied). */
export function lmHead(config: NeoXConfig, weight: WeightLookup, final: Tensor): Tensor {
  return op.matmul(final, weight(config.tieWordEmbeddings ? 'gpt_neox.embed_in.weight' : 'embed_out.weight'), {
    transB: true,
  });
}
