/**
 * A float64 reference for every engine op, written straight from the math with plain loops. It is
 * the independent truth the engine's forward passes are checked against; speed does not matter.
 */

/** A row-major float64 array with its dims. */
export interface Nd {
  data: Float64Array;
  dims: number[];
}

export function nd(data: ArrayLike<number>, dims: readonly number[]): Nd {
  const out = { data: Float64Array.from(data), dims: [...dims] };
  if (out.data.length !== numel(dims)) throw new Error(`${out.data.length} values do not fill [${dims}]`);
  return out;
}

export function numel(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

export function strides(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = s[i + 1]! * dims[i + 1]!;
  return s;
}

export function coords(index: number, dims: readonly number[]): number[] {
  const c = new Array<number>(dims.length);
  for (let i = dims.length - 1; i >= 0; i--) {
    c[i] = index % dims[i]!;
    index = Math.floor(index / dims[i]!);
  }
  return c;
}

export function offset(c: readonly number[], dims: readonly number[]): number {
  let o = 0;
  for (let i = 0; i < dims.length; i++) o = o * dims[i]! + c[i]!;
  return o;
}

export function broadcastDims(...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  return Array.from({ length: rank }, (_, i) => Math.max(...shapes.map((s) => s[s.length - rank + i] ?? 1)));
}

/** The flat index into `dims` that output coordinates `c` read from under broadcasting. */
function broadcastOffset(c: readonly number[], dims: readonly number[]): number {
  const lead = c.length - dims.length;
  let o = 0;
  for (let i = 0; i < dims.length; i++) o = o * dims[i]! + (dims[i] === 1 ? 0 : c[lead + i]!);
  return o;
}

export function map(a: Nd, f: (v: number) => number): Nd {
  return { data: a.data.map(f), dims: [...a.dims] };
}

export function zip(args: Nd[], f: (...v: number[]) => number): Nd {
  const dims = broadcastDims(...args.map((a) => a.dims));
  const data = new Float64Array(numel(dims));
  for (let i = 0; i < data.length; i++) {
    const c = coords(i, dims);
    data[i] = f(...args.map((a) => a.data[broadcastOffset(c, a.dims)]!));
  }
  return { data, dims };
}

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
}

function swapLast(a: Nd): Nd {
  const perm = a.dims.map((_, i) => i);
  [perm[a.dims.length - 1], perm[a.dims.length - 2]] = [perm[a.dims.length - 2]!, perm[a.dims.length - 1]!];
  return transpose(a, perm);
}

/** alpha·op(a)·op(b) over the last two axes, leading axes broadcast. */
export function matmul(a: Nd, b: Nd, { transA = false, transB = false, alpha = 1 }: MatmulOptions = {}): Nd {
  const x = transA ? swapLast(a) : a;
  const y = transB ? swapLast(b) : b;
  const [m, k] = x.dims.slice(-2) as [number, number];
  const n = y.dims[y.dims.length - 1]!;
  const batch = broadcastDims(x.dims.slice(0, -2), y.dims.slice(0, -2));
  const dims = [...batch, m, n];
  const data = new Float64Array(numel(dims));
  for (let bi = 0; bi < numel(batch); bi++) {
    const bc = coords(bi, batch);
    const xo = broadcastOffset(bc, x.dims.slice(0, -2)) * m * k;
    const yo = broadcastOffset(bc, y.dims.slice(0, -2)) * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += x.data[xo + i * k + p]! * y.data[yo + p * n + j]!;
        data[bi * m * n + i * n + j] = alpha * s;
      }
    }
  }
  return { data, dims };
}

export type Reduction = 'sum' | 'mean' | 'max';

export function reduce(a: Nd, kind: Reduction, axes?: readonly number[], keepDims = false): Nd {
  const rank = a.dims.length;
  const reduced =
    axes === undefined || axes.length === 0 ? a.dims.map((_, i) => i) : axes.map((x) => (x + rank) % rank);
  const keptDims = a.dims.map((d, i) => (reduced.includes(i) ? 1 : d));
  const acc = new Float64Array(numel(keptDims)).fill(kind === 'max' ? -Infinity : 0);
  for (let i = 0; i < a.data.length; i++) {
    const c = coords(i, a.dims).map((v, ax) => (reduced.includes(ax) ? 0 : v));
    const o = offset(c, keptDims);
    acc[o] = kind === 'max' ? Math.max(acc[o]!, a.data[i]!) : acc[o]! + a.data[i]!;
  }
  if (kind === 'mean') {
    const count = reduced.reduce((p, ax) => p * a.dims[ax]!, 1);
    for (let i = 0; i < acc.length; i++) acc[i]! /= count;
  }
  const dims = keepDims ? keptDims : a.dims.filter((_, i) => !reduced.includes(i));
  return { data: acc, dims };
}

export function transpose(a: Nd, perm: readonly number[]): Nd {
  const dims = perm.map((p) => a.dims[p]!);
  const data = new Float64Array(a.data.length);
  for (let i = 0; i < data.length; i++) {
    const c = coords(i, dims);
    const src = new Array<number>(c.length);
    perm.forEach((p, k) => {
      src[p] = c[k]!;
    });
    data[i] = a.data[offset(src, a.dims)]!;
  }
  return { data, dims };
}

export function slice(a: Nd, axis: number, start: number, end: number): Nd {
  const dims = [...a.dims];
  dims[axis] = end - start;
  const data = new Float64Array(numel(dims));
  for (let i = 0; i < data.length; i++) {
    const c = coords(i, dims);
    c[axis]! += start;
    data[i] = a.data[offset(c, a.dims)]!;
  }
  return { data, dims };
}

export function pad(a: Nd, axis: number, before: number, after: number): Nd {
  const dims = [...a.dims];
  dims[axis]! += before + after;
  const data = new Float64Array(numel(dims));
  for (let i = 0; i < a.data.length; i++) {
    const c = coords(i, a.dims);
    c[axis]! += before;
    data[offset(c, dims)] = a.data[i]!;
  }
  return { data, dims };
}

export function concat(xs: readonly Nd[], axis: number): Nd {
  const dims = [...xs[0]!.dims];
  dims[axis] = xs.reduce((p, x) => p + x.dims[axis]!, 0);
  const data = new Float64Array(numel(dims));
  let start = 0;
  for (const x of xs) {
    for (let i = 0; i < x.data.length; i++) {
      const c = coords(i, x.dims);
      c[axis]! += start;
      data[offset(c, dims)] = x.data[i]!;
    }
    start += x.dims[axis]!;
  }
  return { data, dims };
}

/** numpy take: out[pre, idx..., post] = table[pre, indices[idx...], post]; negative indices wrap. */
export function gather(table: Nd, indices: Nd, axis = 0): Nd {
  const pre = table.dims.slice(0, axis);
  const post = table.dims.slice(axis + 1);
  const dims = [...pre, ...indices.dims, ...post];
  const data = new Float64Array(numel(dims));
  for (let i = 0; i < data.length; i++) {
    const c = coords(i, dims);
    const idxCoords = c.slice(pre.length, pre.length + indices.dims.length);
    let row = indices.data[offset(idxCoords, indices.dims)]!;
    if (row < 0) row += table.dims[axis]!;
    const src = [...c.slice(0, pre.length), row, ...c.slice(pre.length + indices.dims.length)];
    data[i] = table.data[offset(src, table.dims)]!;
  }
  return { data, dims };
}

/** out = data; out[indices[i]] += updates[i] along axis 0, repeated indices accumulating. */
export function scatterAdd(data: Nd, indices: Nd, updates: Nd): Nd {
  const out = { data: Float64Array.from(data.data), dims: [...data.dims] };
  const rowSize = numel(data.dims.slice(1));
  for (let i = 0; i < indices.data.length; i++) {
    const row = indices.data[i]!;
    for (let j = 0; j < rowSize; j++) out.data[row * rowSize + j]! += updates.data[i * rowSize + j]!;
  }
  return out;
}

/** numpy take_along_axis. */
export function gatherElements(x: Nd, indices: Nd, axis: number): Nd {
  const data = new Float64Array(indices.data.length);
  for (let i = 0; i < data.length; i++) {
    const c = coords(i, indices.dims);
    c[axis] = indices.data[i]!;
    data[i] = x.data[offset(c, x.dims)]!;
  }
  return { data, dims: [...indices.dims] };
}

export function scatterElementsAdd(data: Nd, indices: Nd, updates: Nd, axis: number): Nd {
  const out = { data: Float64Array.from(data.data), dims: [...data.dims] };
  for (let i = 0; i < indices.data.length; i++) {
    const c = coords(i, indices.dims);
    c[axis] = indices.data[i]!;
    out.data[offset(c, data.dims)]! += updates.data[i]!;
  }
  return out;
}

/** Applies f to every 1-D lane along `axis`. */
function lanes(a: Nd, axis: number, f: (lane: number[]) => number[]): Nd {
  const out = { data: new Float64Array(a.data.length), dims: [...a.dims] };
  const st = strides(a.dims);
  const size = a.dims[axis]!;
  for (let i = 0; i < a.data.length; i++) {
    if (coords(i, a.dims)[axis] !== 0) continue;
    const idx = Array.from({ length: size }, (_, k) => i + k * st[axis]!);
    const result = f(idx.map((j) => a.data[j]!));
    idx.forEach((j, k) => {
      out.data[j] = result[k]!;
    });
  }
  return out;
}

export function logSoftmax(a: Nd, axis = -1): Nd {
  return lanes(a, (axis + a.dims.length) % a.dims.length, (v) => {
    const m = Math.max(...v);
    const lse = m + Math.log(v.reduce((s, x) => s + Math.exp(x - m), 0));
    return v.map((x) => x - lse);
  });
}

export function softmax(a: Nd, axis = -1): Nd {
  return lanes(a, (axis + a.dims.length) % a.dims.length, (v) => {
    const m = Math.max(...v);
    const e = v.map((x) => Math.exp(x - m));
    const total = e.reduce((s, x) => s + x, 0);
    return e.map((x) => x / total);
  });
}

export function layerNorm(x: Nd, weight: Nd, bias: Nd, eps: number): Nd {
  const h = x.dims[x.dims.length - 1]!;
  const out = lanes(x, x.dims.length - 1, (v) => {
    const mu = v.reduce((s, t) => s + t, 0) / h;
    const variance = v.reduce((s, t) => s + (t - mu) ** 2, 0) / h;
    return v.map((t) => (t - mu) / Math.sqrt(variance + eps));
  });
  for (let i = 0; i < out.data.length; i++) out.data[i] = out.data[i]! * weight.data[i % h]! + bias.data[i % h]!;
  return out;
}

/**
 * erf by its Maclaurin series for |x| < 2.5 and by the continued fraction of erfc beyond; both to
 * about 1e-15 (checked in the tests against Python's math.erf).
 */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a < 2.5) {
    let term = a;
    let sum = a;
    for (let n = 1; n < 80; n++) {
      term *= (-a * a) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * sum * (2 / Math.sqrt(Math.PI));
  }
  // erfc(a) = exp(−a²)/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + 2/(a + ...))))), evaluated bottom-up.
  let f = a;
  for (let k = 60; k >= 1; k--) f = a + k / 2 / f;
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

export function gelu(x: number, approximate: 'none' | 'tanh' = 'none'): number {
  if (approximate === 'tanh') return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

/** −log softmax(logits)[label] per row. */
export function crossEntropy(logits: Nd, labels: readonly number[]): Nd {
  const logp = logSoftmax(logits, 1);
  const v = logits.dims[1]!;
  return nd(
    labels.map((label, row) => -logp.data[row * v + label]!),
    [labels.length],
  );
}

/** What the float64 GPT-NeoX below needs of a model's configuration (src/model/config.ts's NeoXConfig). */
export interface ReferenceNeoXConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  rotaryPct: number;
  rotaryBase: number;
  layerNormEps: number;
  parallelResidual: boolean;
  hiddenAct: string;
  tieWordEmbeddings: boolean;
  attentionBias: boolean;
}

/**
 * Replaces the named activation `x` (TransformerLens's name and shape) by what it returns; undefined
 * keeps it. The reference's interventions: an edit done by hand.
 */
export type ReferenceEdit = (name: string, x: Nd) => Nd | undefined;

/**
 * GPT-NeoX in float64 from the definitions (HF's GPTNeoXForCausalLM; TransformerLens's hook points
 * and shapes), every activation recorded under its TransformerLens name: hook_embed; per block
 * hook_resid_pre, ln1.hook_scale / hook_normalized (x − mean over √(mean((x − mean)²) + eps), before
 * the weight and bias), attn.hook_q/k/v [batch, pos, head, d_head], hook_rot_q/k (rotate-half
 * rotary on the first rotary_pct·d_head dims), hook_attn_scores (q·k/√d_head, −inf above the
 * diagonal, [batch, head, dest, src]), hook_pattern, hook_z, hook_result (each head's z through its
 * columns of the dense weight), hook_attn_out (Σ over heads of hook_result + dense bias),
 * hook_resid_mid (sequential residual only), ln2.*, mlp.hook_pre / hook_post, hook_mlp_out,
 * hook_resid_post; ln_final.*. Returns them and the logits [batch, seq, vocab].
 */
export function referenceGptNeoX(
  c: ReferenceNeoXConfig,
  params: ReadonlyMap<string, ArrayLike<number>>,
  ids: readonly (readonly number[])[],
  edit: ReferenceEdit = () => undefined,
): { activations: Map<string, Nd>; logits: Nd } {
  const B = ids.length;
  const T = ids[0]!.length;
  const H = c.hiddenSize;
  const nh = c.numHeads;
  const hd = H / nh;
  const I = c.intermediateSize;
  const r = Math.floor(hd * c.rotaryPct);
  const p = (name: string): Float64Array => {
    const v = params.get(name);
    if (!v) throw new Error(`reference: no parameter ${name}`);
    return Float64Array.from(v);
  };
  const activations = new Map<string, Nd>();
  const hook = (name: string, x: Nd): Nd => {
    const y = edit(name, x) ?? x;
    activations.set(name, y);
    return y;
  };
  /** x [.., in] · wᵀ [out, in] + b. */
  const linear = (x: Nd, w: Float64Array, out: number, b?: Float64Array): Nd => {
    const inner = x.dims.at(-1)!;
    const rows = x.data.length / inner;
    const data = new Float64Array(rows * out);
    for (let i = 0; i < rows; i++)
      for (let o = 0; o < out; o++) {
        let s = b ? b[o]! : 0;
        for (let k = 0; k < inner; k++) s += x.data[i * inner + k]! * w[o * inner + k]!;
        data[i * out + o] = s;
      }
    return { data, dims: [...x.dims.slice(0, -1), out] };
  };
  const layerNorm = (x: Nd, hookName: string, param: string): Nd => {
    const [w, b] = [p(`${param}.weight`), p(`${param}.bias`)];
    const rows = x.data.length / H;
    const centred = new Float64Array(x.data.length);
    const scaleData = new Float64Array(rows);
    for (let i = 0; i < rows; i++) {
      let mu = 0;
      for (let k = 0; k < H; k++) mu += x.data[i * H + k]!;
      mu /= H;
      let sq = 0;
      for (let k = 0; k < H; k++) {
        centred[i * H + k] = x.data[i * H + k]! - mu;
        sq += centred[i * H + k]! ** 2;
      }
      scaleData[i] = Math.sqrt(sq / H + c.layerNormEps);
    }
    const scale = hook(`${hookName}.hook_scale`, { data: scaleData, dims: [B, T, 1] });
    const normalized = hook(
      `${hookName}.hook_normalized`,
      zip([{ data: centred, dims: [B, T, H] }, scale], (v, s) => v / s),
    );
    return { data: normalized.data.map((v, i) => v * w[i % H]! + b[i % H]!), dims: [B, T, H] };
  };
  const invFreq = Array.from({ length: r / 2 }, (_, i) => 1 / c.rotaryBase ** ((2 * i) / r));
  const rotate = (x: Nd): Nd => {
    const out = Float64Array.from(x.data);
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++)
        for (let h = 0; h < nh; h++) {
          const o = ((b * T + t) * nh + h) * hd;
          for (let j = 0; j < r / 2; j++) {
            const [cos, sin] = [Math.cos(t * invFreq[j]!), Math.sin(t * invFreq[j]!)];
            const [x1, x2] = [x.data[o + j]!, x.data[o + j + r / 2]!];
            out[o + j] = x1 * cos - x2 * sin;
            out[o + j + r / 2] = x2 * cos + x1 * sin;
          }
        }
    return { data: out, dims: [...x.dims] };
  };
  const gelu1 = (v: number): number => gelu(v, c.hiddenAct === 'gelu' ? 'none' : 'tanh');

  const embedIn = p('gpt_neox.embed_in.weight');
  const embedData = new Float64Array(B * T * H);
  ids.forEach((row, b) => {
    row.forEach((id, t) => {
      embedData.set(embedIn.subarray(id * H, (id + 1) * H), (b * T + t) * H);
    });
  });
  let x = hook('hook_embed', { data: embedData, dims: [B, T, H] });
  for (let i = 0; i < c.numLayers; i++) {
    const pre = `gpt_neox.layers.${i}`;
    const blk = `blocks.${i}`;
    x = hook(`${blk}.hook_resid_pre`, x);
    const a = layerNorm(x, `${blk}.ln1`, `${pre}.input_layernorm`);
    const qkv = linear(
      a,
      p(`${pre}.attention.query_key_value.weight`),
      3 * H,
      c.attentionBias ? p(`${pre}.attention.query_key_value.bias`) : undefined,
    );
    // HF's fused rows are per head [head, q|k|v, d_head].
    const part = (which: number): Nd => {
      const data = new Float64Array(B * T * H);
      for (let bt = 0; bt < B * T; bt++)
        for (let h = 0; h < nh; h++)
          for (let e = 0; e < hd; e++) data[(bt * nh + h) * hd + e] = qkv.data[bt * 3 * H + (h * 3 + which) * hd + e]!;
      return { data, dims: [B, T, nh, hd] };
    };
    const q = hook(`${blk}.attn.hook_q`, part(0));
    const k = hook(`${blk}.attn.hook_k`, part(1));
    const v = hook(`${blk}.attn.hook_v`, part(2));
    const rq = hook(`${blk}.attn.hook_rot_q`, rotate(q));
    const rk = hook(`${blk}.attn.hook_rot_k`, rotate(k));
    const scoresData = new Float64Array(B * nh * T * T);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < nh; h++)
        for (let d = 0; d < T; d++)
          for (let s = 0; s < T; s++) {
            let dot = 0;
            for (let e = 0; e < hd; e++)
              dot += rq.data[((b * T + d) * nh + h) * hd + e]! * rk.data[((b * T + s) * nh + h) * hd + e]!;
            scoresData[((b * nh + h) * T + d) * T + s] = s > d ? -Infinity : dot / Math.sqrt(hd);
          }
    const scores = hook(`${blk}.attn.hook_attn_scores`, { data: scoresData, dims: [B, nh, T, T] });
    const pattern = hook(`${blk}.attn.hook_pattern`, softmax(scores, -1));
    const zData = new Float64Array(B * T * H);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < nh; h++)
        for (let d = 0; d < T; d++)
          for (let e = 0; e < hd; e++) {
            let sum = 0;
            for (let s = 0; s < T; s++)
              sum += pattern.data[((b * nh + h) * T + d) * T + s]! * v.data[((b * T + s) * nh + h) * hd + e]!;
            zData[((b * T + d) * nh + h) * hd + e] = sum;
          }
    const z = hook(`${blk}.attn.hook_z`, { data: zData, dims: [B, T, nh, hd] });
    const dense = p(`${pre}.attention.dense.weight`);
    const resultData = new Float64Array(B * T * nh * H);
    for (let bt = 0; bt < B * T; bt++)
      for (let h = 0; h < nh; h++)
        for (let o = 0; o < H; o++) {
          let sum = 0;
          for (let e = 0; e < hd; e++) sum += z.data[(bt * nh + h) * hd + e]! * dense[o * H + h * hd + e]!;
          resultData[(bt * nh + h) * H + o] = sum;
        }
    const result = hook(`${blk}.attn.hook_result`, { data: resultData, dims: [B, T, nh, H] });
    const denseBias = c.attentionBias ? p(`${pre}.attention.dense.bias`) : new Float64Array(H);
    const attnData = new Float64Array(B * T * H);
    for (let bt = 0; bt < B * T; bt++)
      for (let o = 0; o < H; o++) {
        let sum = denseBias[o]!;
        for (let h = 0; h < nh; h++) sum += result.data[(bt * nh + h) * H + o]!;
        attnData[bt * H + o] = sum;
      }
    const attnOut = hook(`${blk}.hook_attn_out`, { data: attnData, dims: [B, T, H] });
    const mlp = (h: Nd): Nd => {
      const n = layerNorm(h, `${blk}.ln2`, `${pre}.post_attention_layernorm`);
      const mlpPre = hook(
        `${blk}.mlp.hook_pre`,
        linear(n, p(`${pre}.mlp.dense_h_to_4h.weight`), I, p(`${pre}.mlp.dense_h_to_4h.bias`)),
      );
      const post = hook(`${blk}.mlp.hook_post`, map(mlpPre, gelu1));
      return hook(
        `${blk}.hook_mlp_out`,
        linear(post, p(`${pre}.mlp.dense_4h_to_h.weight`), H, p(`${pre}.mlp.dense_4h_to_h.bias`)),
      );
    };
    if (c.parallelResidual) {
      const mlpOut = mlp(x);
      x = zip([x, attnOut, mlpOut], (u, w, m) => u + w + m);
    } else {
      const mid = hook(
        `${blk}.hook_resid_mid`,
        zip([x, attnOut], (u, w) => u + w),
      );
      const mlpOut = mlp(mid);
      x = zip([mid, mlpOut], (u, m) => u + m);
    }
    x = hook(`${blk}.hook_resid_post`, x);
  }
  const final = layerNorm(x, 'ln_final', 'gpt_neox.final_layer_norm');
  const unembed = p(c.tieWordEmbeddings ? 'gpt_neox.embed_in.weight' : 'embed_out.weight');
  return { activations, logits: linear(final, unembed, c.vocabSize) };
}
