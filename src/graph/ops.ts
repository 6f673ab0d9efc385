/**
 * The op set. Each builder checks its inputs' dtypes and shapes and appends one node; mistakes
 * throw a GraphError naming the op at build time, never later inside onnxruntime.
 */
import { allocate, type DType, isFloat, type TypedArray } from './dtype.js';
import { type Graph, Tensor } from './graph.js';
import type { GeluApproximation, OpAttrs, OpName } from './registry.js';
import { broadcastShapes, type Dim, formatShape, GraphError, normalizeAxis, type Shape } from './shape.js';

export type { GeluApproximation } from './registry.js';

type Operand = Tensor | number;

function node<K extends OpName>(op: K, inputs: Tensor[], attrs: OpAttrs[K], dtype: DType, shape: Shape): Tensor {
  return inputs[0]!.graph.addNode(op, inputs, attrs, [{ dtype, shape }]).outputs[0]!;
}

function graphOf(op: string, operands: Operand[]): Graph {
  const t = operands.find((o): o is Tensor => o instanceof Tensor);
  if (!t) throw new GraphError(op, 'needs at least one tensor operand');
  return t.graph;
}

/** A scalar constant of the given dtype (shape []). */
export function scalar(graph: Graph, value: number, dtype: DType): Tensor {
  const data = allocate(dtype, 1);
  if (data instanceof BigInt64Array) data[0] = BigInt(value);
  else data[0] = value;
  return graph.constant(data, [], dtype);
}

function asTensors(op: string, a: Operand, b: Operand): [Tensor, Tensor] {
  const g = graphOf(op, [a, b]);
  const dtype = (a instanceof Tensor ? a : (b as Tensor)).dtype;
  const ta = a instanceof Tensor ? a : scalar(g, a, dtype);
  const tb = b instanceof Tensor ? b : scalar(g, b, dtype);
  if (ta.dtype !== tb.dtype) throw new GraphError(op, `dtypes differ: ${ta} and ${tb}`);
  return [ta, tb];
}

function requireFloat(op: string, t: Tensor): void {
  if (!isFloat(t.dtype)) throw new GraphError(op, `${t} must be floating point`);
}

function binary(op: 'add' | 'sub' | 'mul' | 'div', a: Operand, b: Operand): Tensor {
  const [ta, tb] = asTensors(op, a, b);
  return node(op, [ta, tb], {}, ta.dtype, broadcastShapes(op, ta.shape, tb.shape));
}

export const add = (a: Operand, b: Operand): Tensor => binary('add', a, b);
export const sub = (a: Operand, b: Operand): Tensor => binary('sub', a, b);
export const mul = (a: Operand, b: Operand): Tensor => binary('mul', a, b);
export const div = (a: Operand, b: Operand): Tensor => binary('div', a, b);
export function pow(a: Operand, b: Operand): Tensor {
  const [ta, tb] = asTensors('pow', a, b);
  requireFloat('pow', ta);
  return node('pow', [ta, tb], {}, ta.dtype, broadcastShapes('pow', ta.shape, tb.shape));
}

function comparison(op: 'less' | 'greater' | 'equal', a: Operand, b: Operand): Tensor {
  const [ta, tb] = asTensors(op, a, b);
  return node(op, [ta, tb], {}, 'bool', broadcastShapes(op, ta.shape, tb.shape));
}
export const less = (a: Operand, b: Operand): Tensor => comparison('less', a, b);
export const greater = (a: Operand, b: Operand): Tensor => comparison('greater', a, b);
export const equal = (a: Operand, b: Operand): Tensor => comparison('equal', a, b);

/** Elementwise choice: cond ? a : b, with broadcasting. */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  if (cond.dtype !== 'bool') throw new GraphError('where', `condition ${cond} must be bool`);
  const [ta, tb] = asTensors('where', a, b);
  return node('where', [cond, ta, tb], {}, ta.dtype, broadcastShapes('where', cond.shape, ta.shape, tb.shape));
}

function unary(op: 'exp' | 'log' | 'sqrt' | 'tanh' | 'erf' | 'cos' | 'sin', x: Tensor): Tensor {
  requireFloat(op, x);
  return node(op, [x], {}, x.dtype, x.shape);
}
export const neg = (x: Tensor): Tensor => node('neg', [x], {}, x.dtype, x.shape);
export const exp = (x: Tensor): Tensor => unary('exp', x);
export const log = (x: Tensor): Tensor => unary('log', x);
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x);
export const tanh = (x: Tensor): Tensor => unary('tanh', x);
export const erf = (x: Tensor): Tensor => unary('erf', x);
export const cos = (x: Tensor): Tensor => unary('cos', x);
export const sin = (x: Tensor): Tensor => unary('sin', x);

export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  return node('cast', [x], { to: dtype }, dtype, x.shape);
}

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
}

/**
 * Batched matrix product alpha·op(a)·op(b) over the last two axes, where op transposes them when
 * asked; leading (batch) axes broadcast.
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const { transA = false, transB = false, alpha = 1 } = options;
  if (a.dtype !== b.dtype) throw new GraphError('matmul', `dtypes differ: ${a} and ${b}`);
  requireFloat('matmul', a);
  if (a.rank < 2 || b.rank < 2) throw new GraphError('matmul', `inputs need rank ≥ 2, got ${a} and ${b}`);
  const [m, ka] = transA ? [a.shape[a.rank - 1]!, a.shape[a.rank - 2]!] : [a.shape[a.rank - 2]!, a.shape[a.rank - 1]!];
  const [kb, n] = transB ? [b.shape[b.rank - 1]!, b.shape[b.rank - 2]!] : [b.shape[b.rank - 2]!, b.shape[b.rank - 1]!];
  if (ka !== kb) {
    throw new GraphError('matmul', `inner dimensions differ: ${a}${transA ? 'ᵀ' : ''} · ${b}${transB ? 'ᵀ' : ''}`);
  }
  const batch = broadcastShapes('matmul', a.shape.slice(0, -2), b.shape.slice(0, -2));
  return node('matmul', [a, b], { transA, transB, alpha }, a.dtype, [...batch, m, n]);
}

/**
 * A linear layer, x·wᵀ + b, for x [..., in], w [out, in] (the PyTorch/HF layout) and an optional
 * bias b [out]. With 2-D x it is one GEMM with the bias folded in.
 */
export function linear(x: Tensor, w: Tensor, b?: Tensor): Tensor {
  requireFloat('linear', x);
  const inFeatures = x.shape[x.rank - 1];
  if (w.rank !== 2 || w.shape[1] !== inFeatures || w.dtype !== x.dtype) {
    throw new GraphError('linear', `weight ${w} should be ${x.dtype}[out, ${inFeatures}] for input ${x}`);
  }
  if (b && (b.rank !== 1 || b.shape[0] !== w.shape[0] || b.dtype !== x.dtype)) {
    throw new GraphError('linear', `bias ${b} should be ${x.dtype}[${w.shape[0]}] for weight ${w}`);
  }
  return node('linear', b ? [x, w, b] : [x, w], {}, x.dtype, [...x.shape.slice(0, -1), w.shape[0]!]);
}

/**
 * A linear layer with int8 weights: x·(scale ⊙ q) + b for x float32 [..., in], q int8 [in, out] (the
 * weight transposed and quantized per output channel, w[o, i] ≈ scale[o]·q[i, o]), scale float32
 * [out] and an optional bias b [out]. When it runs, x is quantized per tensor to uint8 and the
 * product taken in integers (onnxruntime's DynamicQuantizeMatMul): CPU only, no gradient.
 */
export function quantizedLinear(x: Tensor, q: Tensor, scale: Tensor, b?: Tensor): Tensor {
  if (x.dtype !== 'float32') throw new GraphError('quantizedLinear', `input ${x} must be float32`);
  const inFeatures = x.shape[x.rank - 1];
  if (q.rank !== 2 || q.dtype !== 'int8' || q.shape[0] !== inFeatures) {
    throw new GraphError('quantizedLinear', `weight ${q} should be int8[${inFeatures}, out] for input ${x}`);
  }
  const out = q.shape[1]!;
  if (scale.rank !== 1 || scale.shape[0] !== out || scale.dtype !== 'float32') {
    throw new GraphError('quantizedLinear', `scale ${scale} should be float32[${out}] for weight ${q}`);
  }
  if (b && (b.rank !== 1 || b.shape[0] !== out || b.dtype !== 'float32')) {
    throw new GraphError('quantizedLinear', `bias ${b} should be float32[${out}] for weight ${q}`);
  }
  return node('quantizedLinear', b ? [x, q, scale, b] : [x, q, scale], {}, 'float32', [...x.shape.slice(0, -1), out]);
}

/**
 * Sum over axes. `keepDims` keeps reduced axes with size 1. An empty axis list sums everything.
 */
export function sum(x: Tensor, axes?: readonly number[], keepDims = false): Tensor {
  return reduce('sum', x, axes, keepDims);
}
export function mean(x: Tensor, axes?: readonly number[], keepDims = false): Tensor {
  return reduce('mean', x, axes, keepDims);
}
export function max(x: Tensor, axes?: readonly number[], keepDims = false): Tensor {
  return reduce('max', x, axes, keepDims);
}

/** The index (int64) of the first largest value along `axis`, which is dropped. Not differentiable. */
export function argMax(x: Tensor, axis: number): Tensor {
  const a = normalizeAxis(axis, x.rank, 'argMax');
  return node(
    'argMax',
    [x],
    { axis: a },
    'int64',
    x.shape.filter((_, i) => i !== a),
  );
}

function reduce(op: 'sum' | 'mean' | 'max', x: Tensor, axes: readonly number[] | undefined, keepDims: boolean): Tensor {
  const all = axes === undefined || axes.length === 0;
  const norm = all ? x.shape.map((_, i) => i) : axes.map((a) => normalizeAxis(a, x.rank, op));
  if (new Set(norm).size !== norm.length) throw new GraphError(op, `axis listed twice in [${axes}]`);
  const sorted = [...norm].sort((p, q) => p - q);
  const shape: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!sorted.includes(i)) shape.push(d);
    else if (keepDims) shape.push(1);
  });
  return node(op, [x], { axes: sorted, keepDims }, x.dtype, shape);
}

/**
 * Reshape. A target dimension may be a name: when it equals the input's dimension at the same
 * position that size is kept, and one other named dimension takes whatever size is left.
 */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const inferred = shape.filter((d, i) => typeof d === 'string' && d !== x.shape[i]);
  if (inferred.length > 1) {
    throw new GraphError(
      'reshape',
      `cannot infer both ${inferred.join(' and ')} when reshaping ${x} to ${formatShape(shape)}`,
    );
  }
  const known = (s: Shape): number | undefined =>
    s.every((d) => typeof d === 'number') ? (s as number[]).reduce((a, b) => a * b, 1) : undefined;
  const before = known(x.shape);
  const after = known(shape);
  if (before !== undefined && after !== undefined && before !== after) {
    throw new GraphError(
      'reshape',
      `cannot reshape ${x} (${before} values) to ${formatShape(shape)} (${after} values)`,
    );
  }
  if (shape.some((d) => typeof d === 'number' && (d < 1 || !Number.isInteger(d)))) {
    throw new GraphError('reshape', `bad target shape ${formatShape(shape)}`);
  }
  return node('reshape', [x], {}, x.dtype, [...shape]);
}

export function transpose(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.rank || [...perm].sort((p, q) => p - q).some((p, i) => p !== i)) {
    throw new GraphError('transpose', `permutation [${perm}] does not fit ${x}`);
  }
  return node(
    'transpose',
    [x],
    { perm },
    x.dtype,
    perm.map((p) => x.shape[p]!),
  );
}

/** x[start:end] along one axis (static bounds). */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  const a = normalizeAxis(axis, x.rank, 'slice');
  const dim = x.shape[a]!;
  if (typeof dim !== 'number') throw new GraphError('slice', `axis ${axis} of ${x} is symbolic`);
  if (!(0 <= start && start < end && end <= dim)) {
    throw new GraphError('slice', `range [${start}, ${end}) is not inside axis ${axis} of ${x}`);
  }
  const shape = [...x.shape];
  shape[a] = end - start;
  return node('slice', [x], { axis: a, start, end }, x.dtype, shape);
}

/** Zero padding along one axis: `before` zeros, x, `after` zeros. */
export function pad(x: Tensor, axis: number, before: number, after: number): Tensor {
  const a = normalizeAxis(axis, x.rank, 'pad');
  const dim = x.shape[a]!;
  if (typeof dim !== 'number') throw new GraphError('pad', `axis ${axis} of ${x} is symbolic`);
  if (![before, after].every((n) => Number.isInteger(n) && n >= 0)) {
    throw new GraphError('pad', `padding ${before} and ${after} must be whole numbers ≥ 0`);
  }
  const shape = [...x.shape];
  shape[a] = dim + before + after;
  return node('pad', [x], { axis: a, before, after }, x.dtype, shape);
}

export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new GraphError('concat', 'needs at least one input');
  const first = xs[0]!;
  const a = normalizeAxis(axis, first.rank, 'concat');
  for (const x of xs) {
    const sameRest = x.rank === first.rank && x.shape.every((d, i) => i === a || d === first.shape[i]);
    if (!sameRest || x.dtype !== first.dtype) {
      throw new GraphError('concat', `${x} does not fit ${first} along axis ${axis}`);
    }
  }
  const dims = xs.map((x) => x.shape[a]!);
  const total: Dim = dims.every((d) => typeof d === 'number')
    ? (dims as number[]).reduce((p, q) => p + q, 0)
    : dims.join('+');
  const shape = [...first.shape];
  shape[a] = total;
  return node('concat', [...xs], { axis: a }, first.dtype, shape);
}

/** Splits x along one axis into consecutive parts of the given sizes (the inverse of concat). */
export function split(x: Tensor, axis: number, sizes: readonly number[]): Tensor[] {
  const a = normalizeAxis(axis, x.rank, 'split');
  const dim = x.shape[a]!;
  if (typeof dim !== 'number') throw new GraphError('split', `axis ${axis} of ${x} is symbolic`);
  if (
    sizes.length === 0 ||
    sizes.some((s) => !Number.isInteger(s) || s < 1) ||
    sizes.reduce((p, q) => p + q, 0) !== dim
  ) {
    throw new GraphError('split', `sizes [${sizes}] do not add up to axis ${axis} of ${x}`);
  }
  const outputs = sizes.map((size) => {
    const shape = [...x.shape];
    shape[a] = size;
    return { dtype: x.dtype, shape };
  });
  return x.graph.addNode('split', [x], { axis: a, sizes }, outputs).outputs;
}

/** Broadcasts x to the shape of `like` (numpy rules). */
export function broadcastLike(x: Tensor, like: Tensor): Tensor {
  const shape = broadcastShapes('broadcastLike', x.shape, like.shape);
  if (shape.length !== like.rank || shape.some((d, i) => d !== like.shape[i])) {
    throw new GraphError('broadcastLike', `${x} does not broadcast to ${like}`);
  }
  return node('broadcastLike', [x, like], {}, x.dtype, like.shape);
}

function requireIndices(op: string, t: Tensor): void {
  if (t.dtype !== 'int64' && t.dtype !== 'int32') throw new GraphError(op, `indices ${t} must be int64 or int32`);
}

/**
 * Slices of `table` along `axis` picked by integer `indices` (numpy take); along axis 0 this is the
 * embedding lookup. Negative indices count from the end.
 */
export function gather(table: Tensor, indices: Tensor, axis = 0): Tensor {
  requireIndices('gather', indices);
  const a = normalizeAxis(axis, table.rank, 'gather');
  const shape = [...table.shape.slice(0, a), ...indices.shape, ...table.shape.slice(a + 1)];
  return node('gather', [table, indices], { axis: a }, table.dtype, shape);
}

/** out = data, with out[indices[i]] += updates[i] (rows along axis 0; repeated indices accumulate). */
export function scatterAdd(data: Tensor, indices: Tensor, updates: Tensor): Tensor {
  requireIndices('scatterAdd', indices);
  const expected = [...indices.shape, ...data.shape.slice(1)];
  if (
    updates.rank !== expected.length ||
    updates.shape.some((d, i) => d !== expected[i]) ||
    updates.dtype !== data.dtype
  ) {
    throw new GraphError('scatterAdd', `updates ${updates} should be ${data.dtype}${formatShape(expected)}`);
  }
  return node('scatterAdd', [data, indices, updates], {}, data.dtype, data.shape);
}

/** Running sum along one axis (numpy cumsum); `reverse` sums from the end. */
export function cumsum(x: Tensor, axis: number, reverse = false): Tensor {
  if (x.dtype === 'bool') throw new GraphError('cumsum', `${x} must be numeric`);
  const a = normalizeAxis(axis, x.rank, 'cumsum');
  return node('cumsum', [x], { axis: a, reverse }, x.dtype, x.shape);
}

/** out[..., i, ...] = x[..., indices[..., i, ...], ...] along one axis (numpy take_along_axis). */
export function gatherElements(x: Tensor, indices: Tensor, axis: number): Tensor {
  requireIndices('gatherElements', indices);
  const a = normalizeAxis(axis, x.rank, 'gatherElements');
  if (indices.rank !== x.rank || indices.shape.some((d, i) => i !== a && d !== x.shape[i])) {
    throw new GraphError('gatherElements', `indices ${indices} do not fit ${x} along axis ${axis}`);
  }
  return node('gatherElements', [x, indices], { axis: a }, x.dtype, indices.shape);
}

/** out = data, with out[..., indices[..., i, ...], ...] += updates[..., i, ...] along one axis. */
export function scatterElementsAdd(data: Tensor, indices: Tensor, updates: Tensor, axis: number): Tensor {
  requireIndices('scatterElementsAdd', indices);
  const a = normalizeAxis(axis, data.rank, 'scatterElementsAdd');
  const fits = indices.rank === data.rank && indices.shape.every((d, i) => i === a || d === data.shape[i]);
  if (!fits || updates.shape.some((d, i) => d !== indices.shape[i]) || updates.dtype !== data.dtype) {
    throw new GraphError('scatterElementsAdd', `indices ${indices} and updates ${updates} do not fit ${data}`);
  }
  return node('scatterElementsAdd', [data, indices, updates], { axis: a }, data.dtype, data.shape);
}

export function softmax(x: Tensor, axis = -1): Tensor {
  requireFloat('softmax', x);
  return node('softmax', [x], { axis: normalizeAxis(axis, x.rank, 'softmax') }, x.dtype, x.shape);
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  requireFloat('logSoftmax', x);
  return node('logSoftmax', [x], { axis: normalizeAxis(axis, x.rank, 'logSoftmax') }, x.dtype, x.shape);
}

/**
 * LayerNorm over the last axis: (x − mean)/sqrt(var + eps)·weight + bias, biased variance.
 * The node's auxiliary outputs are the mean and 1/sqrt(var + eps), kept for the backward pass.
 */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps: number): Tensor {
  requireFloat('layerNorm', x);
  const h = x.shape[x.rank - 1];
  for (const p of [weight, bias]) {
    if (p.rank !== 1 || p.shape[0] !== h || p.dtype !== x.dtype) {
      throw new GraphError('layerNorm', `parameter ${p} should be ${x.dtype}[${h}] for input ${x}`);
    }
  }
  const stats = [...x.shape.slice(0, -1), 1];
  return x.graph.addNode('layerNorm', [x, weight, bias], { eps }, [
    { dtype: x.dtype, shape: x.shape },
    { dtype: x.dtype, shape: stats },
    { dtype: x.dtype, shape: stats },
  ]).outputs[0]!;
}

/**
 * Rotary position embedding in GPT-NeoX's rotate-half form, on x [B, S, heads·hd]: in every head
 * the first 2·h channels, halves a and b, become (a·cos − b·sin, b·cos + a·sin), with cos and sin
 * [P, h] read at row positions[b, s]; the other channels pass through.
 */
export function rotary(x: Tensor, positions: Tensor, cos: Tensor, sin: Tensor, heads: number): Tensor {
  requireFloat('rotary', x);
  requireIndices('rotary', positions);
  const width = x.shape[2];
  if (x.rank !== 3 || typeof width !== 'number' || !Number.isInteger(heads) || heads < 1 || width % heads !== 0) {
    throw new GraphError('rotary', `x ${x} should be [batch, seq, heads·head_dim] with ${heads} heads`);
  }
  if (positions.rank !== 2 || positions.shape[0] !== x.shape[0] || positions.shape[1] !== x.shape[1]) {
    throw new GraphError('rotary', `positions ${positions} should be [batch, seq] of x ${x}`);
  }
  const half = cos.shape[1];
  for (const t of [cos, sin]) {
    if (
      t.rank !== 2 ||
      t.dtype !== x.dtype ||
      t.shape[1] !== half ||
      t.shape[0] !== cos.shape[0] ||
      typeof half !== 'number' ||
      2 * half > width / heads
    ) {
      throw new GraphError(
        'rotary',
        `tables ${cos} and ${sin} should be ${x.dtype}[positions, half] with 2·half ≤ head_dim ${width / heads}`,
      );
    }
  }
  return node('rotary', [x, positions, cos, sin], { heads }, x.dtype, x.shape);
}

export interface AttentionOptions {
  heads: number;
  /** Multiplies q·kᵀ before the bias is added (usually 1/√head_dim). */
  scale: number;
  /** Keys and values of earlier positions, [B, heads, P, head_dim] each. */
  past?: { key: Tensor; value: Tensor };
}

export interface AttentionOutputs {
  /** [B, S, heads·head_dim]. */
  output: Tensor;
  /** Keys and values of all P + L positions, [B, heads, P + L, head_dim]: the next step's past. */
  key: Tensor;
  value: Tensor;
}

/**
 * Multi-head attention softmax(q·kᵀ·scale + bias)·v, per head, for queries q [B, S, heads·hd] and
 * new keys and values k, v [B, L, heads·hd] placed after the optional past ones; the additive bias
 * is [B or 1, 1 or heads, S, P + L] (masking is a large negative bias).
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, options: AttentionOptions): AttentionOutputs {
  const { heads, scale, past } = options;
  requireFloat('attention', q);
  const width = q.shape[2];
  if (q.rank !== 3 || typeof width !== 'number' || !Number.isInteger(heads) || heads < 1 || width % heads !== 0) {
    throw new GraphError('attention', `q ${q} should be [batch, seq, heads·head_dim] with ${heads} heads`);
  }
  const hd = width / heads;
  const [B, S] = q.shape as [Dim, Dim];
  const L = k.shape[1]!;
  for (const t of [k, v]) {
    if (t.rank !== 3 || t.dtype !== q.dtype || t.shape[0] !== B || t.shape[1] !== L || t.shape[2] !== width) {
      throw new GraphError(
        'attention',
        `k ${k} and v ${v} should both be ${q.dtype}[${B}, kv_seq, ${width}] for q ${q}`,
      );
    }
  }
  let total: Dim = L;
  if (past) {
    const P = past.key.shape[2]!;
    for (const t of [past.key, past.value]) {
      if (
        t.rank !== 4 ||
        t.dtype !== q.dtype ||
        t.shape[0] !== B ||
        t.shape[1] !== heads ||
        t.shape[2] !== P ||
        t.shape[3] !== hd
      ) {
        throw new GraphError(
          'attention',
          `past ${past.key} and ${past.value} should both be ${q.dtype}[${B}, ${heads}, past, ${hd}]`,
        );
      }
    }
    total = typeof P === 'number' && typeof L === 'number' ? P + L : `${P}+${L}`;
  }
  const biasOk =
    bias.rank === 4 &&
    bias.dtype === q.dtype &&
    (bias.shape[0] === B || bias.shape[0] === 1) &&
    (bias.shape[1] === 1 || bias.shape[1] === heads) &&
    bias.shape[2] === S &&
    bias.shape[3] === total;
  if (!biasOk)
    throw new GraphError('attention', `bias ${bias} should be ${q.dtype}[${B} or 1, 1 or ${heads}, ${S}, ${total}]`);
  const inputs = past ? [q, k, v, bias, past.key, past.value] : [q, k, v, bias];
  const cache = { dtype: q.dtype, shape: [B, heads, total, hd] };
  const [output, key, value] = q.graph.addNode('attention', inputs, { heads, scale }, [
    { dtype: q.dtype, shape: q.shape },
    cache,
    cache,
  ]).outputs as [Tensor, Tensor, Tensor];
  return { output, key, value };
}

/** GELU: exact 0.5·x·(1 + erf(x/√2)), or the tanh approximation. */
export function gelu(x: Tensor, approximate: GeluApproximation = 'none'): Tensor {
  requireFloat('gelu', x);
  return node('gelu', [x], { approximate }, x.dtype, x.shape);
}

/**
 * Per-row cross-entropy −log softmax(logits)[label] for logits [N, V] and integer labels [N].
 * The node keeps log-probabilities as an auxiliary output for the backward pass.
 */
export function crossEntropy(logits: Tensor, labels: Tensor): Tensor {
  requireFloat('crossEntropy', logits);
  requireIndices('crossEntropy', labels);
  if (logits.rank !== 2 || labels.rank !== 1 || labels.shape[0] !== logits.shape[0]) {
    throw new GraphError('crossEntropy', `expects logits [N,V] and labels [N], got ${logits} and ${labels}`);
  }
  return logits.graph.addNode('crossEntropy', [logits, labels], {}, [
    { dtype: logits.dtype, shape: [logits.shape[0]!] },
    { dtype: logits.dtype, shape: logits.shape },
  ]).outputs[0]!;
}

/**
 * KL(e^target ‖ softmax(logits)) along the last axis: Σ_v e^target (target − log_softmax(logits)),
 * `target` log-probabilities that broadcast against `logits` (one target for several logits). Its
 * gradient is g·(softmax(logits)·Σe^target − e^target): one Softmax, where the same expression
 * written with logSoftmax, exp, mul and sum differentiates into a chain of elementwise kernels.
 */
export function klDivergence(logits: Tensor, target: Tensor): Tensor {
  requireFloat('klDivergence', logits);
  const [tl, tt] = asTensors('klDivergence', logits, target);
  const shape = broadcastShapes('klDivergence', tl.shape, tt.shape);
  if (tl.rank === 0 || shape.length !== tl.rank || shape.some((d, i) => d !== tl.shape[i]))
    throw new GraphError('klDivergence', `target ${tt} must broadcast to logits ${tl} without growing them`);
  return node('klDivergence', [tl, tt], {}, tl.dtype, tl.shape.slice(0, -1));
}

/**
 * Logits per chunk of `meanLinearCrossEntropy`: 2^20 values, 4 MiB in float32, so that a chunk's
 * logits and p are still in the cache when the kernels after the one that wrote them read them
 * (docs/performance.md); but at least MIN_CHUNK_ROWS rows.
 */
export const LOGITS_PER_CHUNK = 1 << 20;

/**
 * A default chunk holds at least this many rows' logits (its rows may come out a few fewer where
 * the chunks are balanced): fewer would make the products narrow and accumulate ∂w [V, d] through
 * Gemm's C once per chunk (pythia-70m: chunks of 256 rows of 50,304 logits).
 */
export const MIN_CHUNK_ROWS = 256;

/**
 * Mean cross-entropy of a linear layer's logits, x·wᵀ for x [N, d] and w [V, d], against labels
 * [N]: the LM head and the loss as one node, a scalar. It is computed over chunks of rows, so the
 * [N, V] logits are never whole, and each chunk also gives its part of the gradient, kept as the
 * auxiliary outputs ∂loss/∂x [N, d] and ∂loss/∂w [V, d] for the backward pass to scale.
 */
export function meanLinearCrossEntropy(x: Tensor, w: Tensor, labels: Tensor, logitsPerChunk?: number): Tensor {
  requireFloat('meanLinearCrossEntropy', x);
  requireIndices('meanLinearCrossEntropy', labels);
  if (
    x.rank !== 2 ||
    w.rank !== 2 ||
    labels.rank !== 1 ||
    x.shape[1] !== w.shape[1] ||
    labels.shape[0] !== x.shape[0] ||
    x.dtype !== w.dtype
  ) {
    throw new GraphError(
      'meanLinearCrossEntropy',
      `expects x [N,d], w [V,d] and labels [N], got ${x}, ${w} and ${labels}`,
    );
  }
  const [rows, vocab] = [x.shape[0], w.shape[0]];
  if (typeof rows !== 'number' || typeof vocab !== 'number') {
    throw new GraphError('meanLinearCrossEntropy', `needs static N and V, got ${x} and ${w}`);
  }
  const perChunk = logitsPerChunk ?? Math.max(LOGITS_PER_CHUNK, MIN_CHUNK_ROWS * vocab);
  const chunks = Math.max(1, Math.ceil((rows * vocab) / perChunk));
  const chunkRows = Math.ceil(rows / chunks);
  return x.graph.addNode('meanLinearCrossEntropy', [x, w, labels], { chunkRows }, [
    { dtype: x.dtype, shape: [] },
    { dtype: x.dtype, shape: x.shape },
    { dtype: w.dtype, shape: w.shape },
  ]).outputs[0]!;
}

/** A tensor of zeros shaped like `like`. */
export function zerosLike(like: Tensor): Tensor {
  return broadcastLike(scalar(like.graph, 0, like.dtype), like);
}

export function constantOf(graph: Graph, data: TypedArray, shape: readonly number[]): Tensor {
  return graph.constant(data, shape);
}

/** Reshapes x to the (possibly symbolic) shape of `like`, which must hold as many values. */
export function reshapeLike(x: Tensor, like: Tensor): Tensor {
  return node('reshapeLike', [x, like], {}, x.dtype, like.shape);
}
