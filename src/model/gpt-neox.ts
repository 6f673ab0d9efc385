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
import type { HookSet } from './hooks.js';
import { halfRotaryTables, rotaryTables, rotateHalfMatrix } from './rotary.js';

/**
 * Supplies the tensor for a parameter by its HF name (a graph input or an initializer); `quantized`,
 * where given, the int8 form of a linear layer's weight (int8.ts), which then runs as quantizedLinear.
 */
export interface WeightLookup {
  (name: string): Tensor;
  quantized?: (name: string) => { q: Tensor; scale: Tensor } | undefined;
}

/** x·wᵀ + b for the weight named `name`, in int8 where the lookup holds it so. */
function linearOf(weight: WeightLookup, x: Tensor, name: string, bias?: Tensor): Tensor {
  const int8 = weight.quantized?.(name);
  return int8 ? op.quantizedLinear(x, int8.q, int8.scale, bias) : op.linear(x, weight(name), bias);
}

export interface LayerCache {
  key: Tensor;
  value: Tensor;
}

export interface ForwardInputs {
  /** Token ids [B, T] (int64); or, in their place, `residual`. */
  ids?: Tensor;
  /** The residual stream [B, T, H] entering the first layer, in place of the embedding of `ids` (layer streaming). */
  residual?: Tensor;
  /** How many layers to build, from the first; default all (a streamed block builds one, a streamed head none). */
  layers?: number;
  /** Apply the final LayerNorm (default true); without it `final` is the last layer's residual. */
  finalNorm?: boolean;
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
  /**
   * Named activations to record or edit (hooks.ts). Activations are then [B, T, H]; attention
   * scores and pattern need the decomposed attention (not `fused`), and no `past`.
   */
  hooks?: HookSet;
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
 * Fused rows are per head [nh, 3, hd]: [B, T, nh, 3, hd] → [B, nh, T, 3·hd], split into the rotary
 * columns of q [r], the rest of q [hd − r], the same two parts of k, and v [hd]; the r columns of q
 * and of k rotate (x·cos + (x·R)·sin with r-wide tables and an r × r rotate-half R) and rejoin
 * their rest. Every column outside them is only copied, so the backward is copies too.
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
  if (!positions && typeof T !== 'number')
    throw new GraphError('gpt-neox', 'symbolic batch or length needs explicit positions');
  const tableRows = positions ? config.maxPositions : (T as number);
  const table = rotaryTables(tableRows, r, config.rotaryBase);
  // cos and sin [B, 1, T, r] read at the positions, or [T, r] for positions 0..T−1.
  const angles = (data: Float32Array): Tensor => {
    const t = graph.constant(data, [tableRows, r]);
    return positions ? op.reshape(op.gather(t, positions), [B, 1, T, r]) : t;
  };
  const cos = r === 0 ? undefined : angles(table.cos);
  const sin = r === 0 ? undefined : angles(table.sin);
  const rotateHalf = r === 0 ? undefined : graph.constant(rotateHalfMatrix(r, r), [r, r]);
  // q and k each as [rotary columns, the rest], or whole where all or none rotate.
  const qkParts = r === 0 || r === hd ? [hd] : [r, hd - r];
  const rotated = ([x, ...rest]: Tensor[]): Tensor => {
    if (r === 0) return x!;
    const turned = op.add(op.mul(x!, cos!), op.mul(op.matmul(x!, rotateHalf!), sin!));
    return rest.length > 0 ? op.concat([turned, ...rest], 3) : turned;
  };
  return (qkv, past) => {
    const heads = op.reshape(op.transpose(op.reshape(qkv, [B, T, nh, 3, hd]), [0, 2, 1, 3, 4]), [B, nh, T, 3 * hd]);
    const parts = op.split(heads, 3, [...qkParts, ...qkParts, hd]);
    const n = qkParts.length;
    const q = rotated(parts.slice(0, n));
    const k0 = rotated(parts.slice(n, 2 * n));
    const v0 = parts[2 * n]!;
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
 * Attention as TransformerLens lays it out, for the named activations: q, k, v [B, T, heads, hd]
 * before and after rotary, scores and pattern [B, heads, dest, src], z [B, T, heads, hd]. Each is
 * on the main path, so an edit of any of them flows on.
 */
function hookedAttention(
  config: NeoXConfig,
  positions: Tensor | undefined,
  bias: Tensor,
  [B, T]: [Dim, Dim],
  hooks: HookSet,
): (qkv: Tensor, layer: number) => Tensor {
  const graph = bias.graph;
  const nh = config.numHeads;
  const hd = headDim(config);
  const r = rotaryDims(config);
  const rows = positions ? config.maxPositions : (T as number);
  if (!positions && typeof T !== 'number')
    throw new GraphError('gpt-neox', 'symbolic batch or length needs explicit positions');
  // cos and sin [rows, hd]: the rotary angles on the first r dims, cos 1 and sin 0 on the rest.
  const half = rotaryTables(rows, r, config.rotaryBase);
  const cosRows = new Float32Array(rows * hd).fill(1);
  const sinRows = new Float32Array(rows * hd);
  for (let p = 0; p < rows; p++) {
    cosRows.set(half.cos.subarray(p * r, (p + 1) * r), p * hd);
    sinRows.set(half.sin.subarray(p * r, (p + 1) * r), p * hd);
  }
  const table = (data: Float32Array): Tensor => {
    const t = graph.constant(data, [rows, hd]);
    return positions ? op.reshape(op.gather(t, positions), [B, T, 1, hd]) : op.reshape(t, [rows, 1, hd]);
  };
  const cos = table(cosRows);
  const sin = table(sinRows);
  const rotateHalf = graph.constant(rotateHalfMatrix(r, hd), [hd, hd]);
  const hook = (name: string, t: Tensor): Tensor => (hooks.wants(name) ? hooks.at(name, t) : t);
  return (qkv, layer) => {
    const a = `blocks.${layer}.attn`;
    const [q, k, v] = op
      .split(op.reshape(qkv, [B, T, nh, 3, hd]), 3, [1, 1, 1])
      .map((t, i) => hook(`${a}.hook_${'qkv'[i]}`, op.reshape(t, [B, T, nh, hd]))) as [Tensor, Tensor, Tensor];
    const rotate = (t: Tensor): Tensor => (r === 0 ? t : op.add(op.mul(t, cos), op.mul(op.matmul(t, rotateHalf), sin)));
    const heads = (t: Tensor): Tensor => op.transpose(t, [0, 2, 1, 3]);
    const rq = hook(`${a}.hook_rot_q`, rotate(q));
    const rk = hook(`${a}.hook_rot_k`, rotate(k));
    const scores = hook(
      `${a}.hook_attn_scores`,
      op.add(op.matmul(heads(rq), heads(rk), { transB: true, alpha: 1 / Math.sqrt(hd) }), bias),
    );
    const pattern = hook(`${a}.hook_pattern`, op.softmax(scores, -1));
    const z = hook(`${a}.hook_z`, heads(op.matmul(pattern, heads(v))));
    return op.reshape(z, [B, T, config.hiddenSize]);
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
  hooks?: HookSet,
): AttentionBlock {
  const H = config.hiddenSize;
  const nh = config.numHeads;
  const hd = headDim(config);
  const r = rotaryDims(config);
  const table = halfRotaryTables(config.maxPositions, r, config.rotaryBase);
  const cos = bias.graph.constant(table.cos, [config.maxPositions, r / 2]);
  const sin = bias.graph.constant(table.sin, [config.maxPositions, r / 2]);
  const rotate = (t: Tensor): Tensor => (r === 0 ? t : op.rotary(t, positions, cos, sin, nh));
  // A hook point on [B, T, H]: the activation as [B, T, heads, hd], back to [B, T, H] after an edit.
  const hook = (name: string, t: Tensor): Tensor =>
    hooks?.wants(name) ? op.reshape(hooks.at(name, op.reshape(t, [B, T, nh, hd])), [B, T, H]) : t;
  let layer = 0;
  return (qkv, past) => {
    const a = `blocks.${layer++}.attn`;
    const [q, k, v] = (
      grouped
        ? op.split(qkv, -1, [H, H, H])
        : op.split(op.reshape(qkv, [B, T, nh, 3, hd]), 3, [1, 1, 1]).map((t) => op.reshape(t, [B, T, H]))
    ).map((t, i) => hook(`${a}.hook_${'qkv'[i]}`, t)) as [Tensor, Tensor, Tensor];
    const key = hook(`${a}.hook_rot_k`, rotate(k));
    const query = hook(`${a}.hook_rot_q`, rotate(q));
    const out = op.attention(query, key, v, bias, { heads: nh, scale: 1 / Math.sqrt(hd), past });
    return {
      merged: hook(`${a}.hook_z`, out.output),
      cache: { key: out.key, value: out.value },
      fresh: { key, value: v },
    };
  };
}

export function buildGptNeoX(config: NeoXConfig, weight: WeightLookup, inputs: ForwardInputs): ForwardOutputs {
  const { ids, residual, hooks } = inputs;
  const start = ids ?? residual;
  if (!start || (ids && residual)) throw new GraphError('gpt-neox', 'give either token ids or a residual stream');
  const graph: Graph = start.graph;
  if (ids && ids.rank !== 2) throw new GraphError('gpt-neox', `ids must be [batch, seq], got ${ids}`);
  if (residual && residual.rank !== 3)
    throw new GraphError('gpt-neox', `residual must be [batch, seq, hidden], got ${residual}`);
  const [B, T] = start.shape as [Dim, Dim];
  const H = config.hiddenSize;
  const fused = inputs.fused ?? false;
  const flat = typeof B === 'number' && typeof T === 'number' && !fused && !hooks;
  const lead: Dim[] = flat ? [(B as number) * (T as number)] : [B, T];
  const eps = config.layerNormEps;
  const approximate = geluApproximation(config);
  if (hooks && inputs.past) throw new GraphError('gpt-neox', 'named activations are not recorded with a KV cache');
  const hook = (name: string, t: Tensor): Tensor => (hooks?.wants(name) ? hooks.at(name, t) : t);

  let x = residual ?? op.gather(weight('gpt_neox.embed_in.weight'), ids!);
  if (flat) x = op.reshape(x, [...lead, H]);
  if (ids) x = hook('hook_embed', x);

  const layers = inputs.layers ?? config.numLayers;
  const positions = inputs.positions;
  let bias = inputs.attentionBias;
  if (fused && layers > 0 && (!positions || !bias))
    throw new GraphError('gpt-neox', 'fused attention needs explicit positions and an attention bias');
  if (!bias && layers > 0) {
    if (typeof B !== 'number' || typeof T !== 'number' || fused || inputs.past)
      throw new GraphError('gpt-neox', 'symbolic shapes or a cache need an explicit attention bias');
    bias = graph.constant(causalBias(T), [1, 1, T, T]);
  }
  const hookedDecomposed =
    bias && hooks && !fused ? hookedAttention(config, positions, bias, [B, T], hooks) : undefined;
  const attend =
    !bias || hookedDecomposed
      ? undefined
      : fused
        ? fusedAttention(config, positions!, bias, [B, T], inputs.groupedQkv ?? false, hooks)
        : decomposedAttention(config, positions, bias, [B, T], lead);

  const hiddenStates: Tensor[] = [x];
  const present: LayerCache[] = [];
  const fresh: LayerCache[] = [];
  const bOf = (name: string): Tensor | undefined => (config.attentionBias ? weight(name) : undefined);

  /** LayerNorm; with its hooks asked for, TransformerLens's scale and normalized (before weight and bias). */
  const layerNorm = (h: Tensor, hookName: string, param: string): Tensor => {
    const [w, b] = [weight(`${param}.weight`), weight(`${param}.bias`)];
    const [scaleName, normalizedName] = [`${hookName}.hook_scale`, `${hookName}.hook_normalized`];
    if (!hooks?.wants(scaleName) && !hooks?.wants(normalizedName)) return op.layerNorm(h, w, b, eps);
    const centred = op.sub(h, op.mean(h, [-1], true));
    const scale = hook(scaleName, op.sqrt(op.add(op.mean(op.mul(centred, centred), [-1], true), eps)));
    const normalized = hook(normalizedName, op.div(centred, scale));
    // Read only, the normalization stays one op; edited, the edit flows on.
    if (!hooks.edits(scaleName) && !hooks.edits(normalizedName)) return op.layerNorm(h, w, b, eps);
    return op.add(op.mul(normalized, w), b);
  };

  for (let i = 0; i < layers; i++) {
    const p = `gpt_neox.layers.${i}`;
    const blk = `blocks.${i}`;
    x = hook(`${blk}.hook_resid_pre`, x);
    const a = layerNorm(x, `${blk}.ln1`, `${p}.input_layernorm`);
    const qkv = linearOf(
      weight,
      a,
      `${p}.attention.query_key_value.weight`,
      bOf(`${p}.attention.query_key_value.bias`),
    );
    let merged: Tensor;
    if (hookedDecomposed) {
      merged = hookedDecomposed(qkv, i);
    } else {
      const block = attend!(qkv, inputs.past?.[i]);
      present.push(block.cache);
      if (block.fresh) fresh.push(block.fresh);
      merged = block.merged;
    }
    const denseName = `${p}.attention.dense.weight`;
    const denseBias = bOf(`${p}.attention.dense.bias`);
    let attn: Tensor;
    const resultName = `${blk}.attn.hook_result`;
    if (hooks?.wants(resultName)) {
      // Each head's z through its slice of the dense weight: [B, T, heads, H]; the bias belongs to no head.
      const nh = config.numHeads;
      const hd = headDim(config);
      const perHead = op.transpose(op.reshape(weight(denseName), [H, nh, hd]), [1, 2, 0]);
      const z = op.transpose(op.reshape(merged, [B, T, nh, hd]), [0, 2, 1, 3]);
      const result = hook(resultName, op.transpose(op.matmul(z, perHead), [0, 2, 1, 3]));
      if (hooks.edits(resultName)) {
        const summed = op.sum(result, [2]);
        attn = denseBias ? op.add(summed, denseBias) : summed;
      } else {
        attn = linearOf(weight, merged, denseName, denseBias);
      }
    } else {
      attn = linearOf(weight, merged, denseName, denseBias);
    }
    attn = hook(`${blk}.hook_attn_out`, attn);

    const mlp = (h: Tensor): Tensor => {
      const n = layerNorm(h, `${blk}.ln2`, `${p}.post_attention_layernorm`);
      const pre = hook(
        `${blk}.mlp.hook_pre`,
        linearOf(weight, n, `${p}.mlp.dense_h_to_4h.weight`, weight(`${p}.mlp.dense_h_to_4h.bias`)),
      );
      const post = hook(`${blk}.mlp.hook_post`, op.gelu(pre, approximate));
      return hook(
        `${blk}.hook_mlp_out`,
        linearOf(weight, post, `${p}.mlp.dense_4h_to_h.weight`, weight(`${p}.mlp.dense_4h_to_h.bias`)),
      );
    };
    if (config.parallelResidual) {
      x = op.add(op.add(mlp(x), attn), x);
    } else {
      const x1 = hook(`${blk}.hook_resid_mid`, op.add(attn, x));
      x = op.add(mlp(x1), x1);
    }
    x = hook(`${blk}.hook_resid_post`, x);
    if (i < config.numLayers - 1) hiddenStates.push(x);
  }
  const final = inputs.finalNorm === false ? x : layerNorm(x, 'ln_final', 'gpt_neox.final_layer_norm');
  hiddenStates.push(final);
  return { hiddenStates, final, present, fresh };
}

/** logits = final · embed_outᵀ (embed_in when the embeddings are tied), in int8 where the lookup holds it so. */
export function lmHead(config: NeoXConfig, weight: WeightLookup, final: Tensor): Tensor {
  const name = config.tieWordEmbeddings ? 'gpt_neox.embed_in.weight' : 'embed_out.weight';
  const int8 = weight.quantized?.(name);
  if (int8) return op.quantizedLinear(final, int8.q, int8.scale);
  return op.matmul(final, weight(name), { transB: true });
}
