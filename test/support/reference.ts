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
