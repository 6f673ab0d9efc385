/**
 * Reverse-mode automatic differentiation. `grad(loss, wrt)` appends the backward graph to the
 * forward one: each op has a vector–Jacobian product rule below, written with the same ops.
 */
import { allocate } from './dtype.js';
import type { Graph, Node, OpNode, Tensor } from './graph.js';
import * as op from './ops.js';
import { ALL_OUTPUTS_DIFFERENTIABLE, type DifferentiableOp, NOT_DIFFERENTIABLE, type OpName } from './registry.js';
import { type Dim, formatShape, GraphError } from './shape.js';

/** Sums a broadcast gradient back down to `shape` (the inverse of numpy broadcasting). */
export function sumToShape(g: Tensor, target: Tensor): Tensor {
  const shape = target.shape;
  let out = g;
  const extra = out.rank - shape.length;
  if (extra > 0) out = op.sum(out, [...Array(extra).keys()]);
  const axes = shape.flatMap((d, i) => (d === 1 && out.shape[i] !== 1 ? [i] : []));
  if (axes.length > 0) out = op.sum(out, axes, true);
  return out;
}

type Grads = (Tensor | undefined)[];
/**
 * A rule gets the node, the gradient of its main output, and which inputs need a gradient; it
 * returns one entry per input (undefined where none is needed or the input is not differentiable).
 * Ops whose every output is differentiable (split, attention) also get each output's gradient,
 * undefined where nothing flows back.
 */
export type VjpRule<K extends OpName> = (
  node: OpNode<K>,
  g: Tensor,
  needs: readonly boolean[],
  outputGrads: readonly (Tensor | undefined)[],
) => Grads;

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const LN_2_OVER_SQRT_PI = Math.log(2 / Math.sqrt(Math.PI));

function inputs(node: OpNode): Tensor[] {
  return node.inputs as Tensor[];
}

function unreduce(g: Tensor, node: OpNode<'sum' | 'mean' | 'max'>): Tensor {
  const x = node.inputs[0]!;
  const keepShape = x.shape.map((d, i) => (node.attrs.axes.includes(i) ? 1 : d));
  const kept = node.attrs.keepDims ? g : op.reshape(g, keepShape);
  return op.broadcastLike(kept, x);
}

/** Whether `t` is a scalar constant equal to `value` (the seed of a scalar loss is the constant 1). */
function isConstant(t: Tensor, value: number): boolean {
  if (t.kind !== 'initializer' || t.rank !== 0) return false;
  return t.graph.initializers.find((i) => i.tensor === t)?.data[0] === value;
}

/** g·t, or t itself when g is the constant 1. */
function scaledBy(g: Tensor, t: Tensor): Tensor {
  return isConstant(g, 1) ? t : op.mul(g, t);
}

const filledConstants = new WeakMap<Graph, Map<string, Tensor>>();

/** A constant shaped like the 1-D `like`, every element `value`; one per graph, size, dtype and value. */
function filled(like: Tensor, value: number): Tensor {
  const known = filledConstants.get(like.graph) ?? new Map<string, Tensor>();
  filledConstants.set(like.graph, known);
  const key = `${like.dtype}[${like.shape}]=${value}`;
  let t = known.get(key);
  if (!t) {
    const size = like.shape[0] as number;
    const data = allocate(like.dtype, size);
    (data as Float32Array | Float64Array).fill(value);
    t = like.graph.constant(data, [size], like.dtype);
    known.set(key, t);
  }
  return t;
}

/**
 * LayerNorm's backward, ∂x = (g·w − mean(g·w) − x̂·mean(g·w·x̂))·invStd, ∂w = Σ g·x̂ and ∂b = Σ g over
 * the rows, in few kernels: x̂ recomputed by one LayerNormalization with weight 1 and bias 0, each
 * negated row mean as one product with w (alpha −1/width), and the three terms added by one Sum.
 */
const layerNormVjp: VjpRule<'layerNorm'> = (n, g, needs) => {
  const [x, w, b] = inputs(n);
  const invStd = n.outputs[2]!;
  const width = staticDim(x!, x!.rank - 1, 'layerNorm');
  const xhat = op.layerNorm(x!, filled(w!, 1), filled(w!, 0), n.attrs.eps);
  const gxhat = op.mul(g, xhat);
  let gx: Tensor | undefined;
  if (needs[0]) {
    const wRow = op.reshape(w!, [1, width]);
    const minusRowMean = (t: Tensor): Tensor => op.matmul(t, wRow, { transB: true, alpha: -1 / width });
    gx = op.mul(op.add(op.add(op.mul(g, w!), minusRowMean(g)), op.mul(xhat, minusRowMean(gxhat))), invStd);
  }
  return [gx, needs[1] ? sumToShape(gxhat, w!) : undefined, needs[2] ? sumToShape(g, b!) : undefined];
};

/**
 * GELU's backward. Exact: with u = x/√2, gelu′(x) = ½(1 + erf(u) + u·erf′(u)), and
 * erf′(u) = exp(ln(2/√π) − u²) keeps the constant inside the exponent.
 */
const geluVjp: VjpRule<'gelu'> = (n, g) => {
  const x = n.inputs[0]!;
  if (n.attrs.approximate === 'tanh') {
    const x2 = op.mul(x, x);
    const t = op.tanh(op.mul(op.mul(x, op.add(op.mul(x2, 0.044715), 1)), SQRT_2_OVER_PI));
    const du = op.mul(op.add(op.mul(x2, 3 * 0.044715), 1), SQRT_2_OVER_PI);
    const dy = op.add(op.mul(op.add(t, 1), 0.5), op.mul(op.mul(op.mul(x, 0.5), op.sub(1, op.mul(t, t))), du));
    return [op.mul(g, dy)];
  }
  const u = op.mul(x, Math.SQRT1_2);
  const dErf = op.exp(op.sub(LN_2_OVER_SQRT_PI, op.mul(u, u)));
  const twice = op.add(op.add(op.erf(u), op.mul(u, dErf)), 1);
  return [op.mul(op.mul(g, 0.5), twice)];
};

const swapMatmulGrads: VjpRule<'matmul'> = (node, g, needs) => {
  const [a, b] = inputs(node);
  const { transA, transB, alpha } = node.attrs;
  let ga: Tensor | undefined;
  let gb: Tensor | undefined;
  if (needs[0]) {
    ga = transA
      ? op.matmul(b!, g, { transA: transB, transB: true, alpha })
      : op.matmul(g, b!, { transB: !transB, alpha });
  }
  if (needs[1]) {
    gb = transB
      ? op.matmul(g, a!, { transA: true, transB: transA, alpha })
      : op.matmul(a!, g, { transA: !transA, alpha });
  }
  return [ga && sumToShape(ga, a!), gb && sumToShape(gb, b!)];
};

/** [B, T, heads·hd] → [B, heads, T, hd], and back. */
function splitHeads(t: Tensor, heads: number): Tensor {
  const [B, T, width] = t.shape as [Dim, Dim, number];
  return op.transpose(op.reshape(t, [B, T, heads, width / heads]), [0, 2, 1, 3]);
}

function mergeHeads(t: Tensor): Tensor {
  const [B, heads, T, hd] = t.shape as [Dim, number, Dim, number];
  return op.reshape(op.transpose(t, [0, 2, 1, 3]), [B, T, heads * hd]);
}

function staticDim(t: Tensor, axis: number, why: string): number {
  const d = t.shape[axis];
  if (typeof d !== 'number') throw new GraphError(why, `gradient needs a static size on axis ${axis} of ${t}`);
  return d;
}

/**
 * Attention's backward pass, recomputing the probabilities p from q and the present keys K:
 * dV = pᵀ·dO, dS = p ⊙ (dO·Vᵀ − rowsum(p ⊙ dO·Vᵀ)), dQ = dS·K·scale, dK = dSᵀ·Q·scale, plus
 * whatever flows into the present keys and values directly; past and new keys split dK by position.
 */
const attentionVjp: VjpRule<'attention'> = (n, _g, needs, outputGrads) => {
  const [q, k, , bias] = inputs(n);
  const [, K, V] = n.outputs as [Tensor, Tensor, Tensor];
  const { heads, scale } = n.attrs;
  const [gOut, gK, gV] = outputGrads;
  const Q = splitHeads(q!, heads);
  const p = op.softmax(op.add(op.matmul(Q, K, { transB: true, alpha: scale }), bias!), -1);
  let dK = gK;
  let dV = gV;
  let dQ: Tensor | undefined;
  let dS: Tensor | undefined;
  if (gOut) {
    const dO = splitHeads(gOut, heads);
    const pv = op.matmul(p, dO, { transA: true });
    dV = dV ? op.add(dV, pv) : pv;
    const dP = op.matmul(dO, V, { transB: true });
    dS = op.mul(p, op.sub(dP, op.sum(op.mul(dP, p), [-1], true)));
    dQ = op.matmul(dS, K, { alpha: scale });
    const sk = op.matmul(dS, Q, { transA: true, alpha: scale });
    dK = dK ? op.add(dK, sk) : sk;
  }
  const total = staticDim(K, 2, 'attention');
  const pastLength = total - staticDim(k!, 1, 'attention');
  const newPart = (d: Tensor | undefined): Tensor | undefined =>
    d && mergeHeads(pastLength > 0 ? op.slice(d, 2, pastLength, total) : d);
  const pastPart = (d: Tensor | undefined): Tensor | undefined => d && op.slice(d, 2, 0, pastLength);
  const grads: Grads = [
    dQ && mergeHeads(dQ),
    newPart(dK),
    newPart(dV),
    needs[3] && dS ? sumToShape(dS, bias!) : undefined,
  ];
  if (n.inputs.length > 4) grads.push(pastPart(dK), pastPart(dV));
  return grads;
};

/** The gradient rules: the compiler requires one for every differentiable op of the registry. */
export const VJP: { [K in DifferentiableOp]: VjpRule<K> } = {
  add: (n, g) => [sumToShape(g, n.inputs[0]!), sumToShape(g, n.inputs[1]!)],
  sub: (n, g) => [sumToShape(g, n.inputs[0]!), sumToShape(op.neg(g), n.inputs[1]!)],
  mul: (n, g, needs) => {
    const [a, b] = inputs(n);
    return [needs[0] ? sumToShape(op.mul(g, b!), a!) : undefined, needs[1] ? sumToShape(op.mul(g, a!), b!) : undefined];
  },
  div: (n, g, needs) => {
    const [a, b] = inputs(n);
    const ga = op.div(g, b!);
    return [sumToShape(ga, a!), needs[1] ? sumToShape(op.neg(op.mul(ga, n.outputs[0]!)), b!) : undefined];
  },
  pow: (n, g, needs) => {
    const [a, b] = inputs(n);
    const y = n.outputs[0]!;
    return [
      needs[0] ? sumToShape(op.mul(g, op.mul(b!, op.pow(a!, op.sub(b!, 1)))), a!) : undefined,
      needs[1] ? sumToShape(op.mul(g, op.mul(y, op.log(a!))), b!) : undefined,
    ];
  },
  where: (n, g) => {
    const [c, a, b] = inputs(n);
    return [undefined, sumToShape(op.where(c!, g, 0), a!), sumToShape(op.where(c!, 0, g), b!)];
  },
  neg: (_n, g) => [op.neg(g)],
  exp: (n, g) => [op.mul(g, n.outputs[0]!)],
  log: (n, g) => [op.div(g, n.inputs[0]!)],
  sqrt: (n, g) => [op.div(g, op.mul(n.outputs[0]!, 2))],
  tanh: (n, g) => {
    const y = n.outputs[0]!;
    return [op.mul(g, op.sub(1, op.mul(y, y)))];
  },
  erf: (n, g) => {
    const x = n.inputs[0]!;
    return [op.mul(g, op.mul(op.exp(op.neg(op.mul(x, x))), 2 / Math.sqrt(Math.PI)))];
  },
  cos: (n, g) => [op.neg(op.mul(g, op.sin(n.inputs[0]!)))],
  sin: (n, g) => [op.mul(g, op.cos(n.inputs[0]!))],
  cast: (n, g) => [op.cast(g, n.inputs[0]!.dtype)],
  matmul: swapMatmulGrads,
  linear: (n, g, needs) => {
    const [x, w, b] = inputs(n);
    const grads = [
      needs[0] ? op.matmul(g, w!) : undefined,
      needs[1] ? sumToShape(op.matmul(g, x!, { transA: true }), w!) : undefined,
    ];
    if (b) grads.push(needs[2] ? sumToShape(g, b) : undefined);
    return grads;
  },
  // Rounding has no useful gradient; a zero one would be silently wrong, so asking for one fails.
  quantizedLinear: (n) => {
    throw new GraphError(n.op, 'has no gradient: int8 weights are for inference only');
  },
  sum: (n, g) => [unreduce(g, n)],
  mean: (n, g) => {
    const x = n.inputs[0]!;
    const axes = n.attrs.axes;
    const sizes = axes.map((a) => x.shape[a]!);
    if (sizes.every((d): d is number => typeof d === 'number'))
      return [
        op.div(
          unreduce(g, n),
          sizes.reduce((p, d) => p * d, 1),
        ),
      ];
    // A symbolic size is known only at run time: count the reduced elements as a sum of ones.
    const count = op.sum(op.broadcastLike(op.scalar(x.graph, 1, x.dtype), x), axes, true);
    return [op.div(unreduce(g, n), count)];
  },
  max: (n, g) => {
    const x = n.inputs[0]!;
    const hit = op.equal(x, unreduce(n.outputs[0]!, n));
    return [op.where(hit, unreduce(g, n), 0)];
  },
  reshape: (n, g) => [op.reshapeLike(g, n.inputs[0]!)],
  reshapeLike: (n, g) => [op.reshapeLike(g, n.inputs[0]!), undefined],
  transpose: (n, g) => {
    const perm = n.attrs.perm;
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [op.transpose(g, inverse)];
  },
  slice: (n, g) => {
    const { axis, start, end } = n.attrs;
    const dim = n.inputs[0]!.shape[axis] as number;
    return [op.pad(g, axis, start, dim - end)];
  },
  pad: (n, g) => {
    const { axis, before } = n.attrs;
    const dim = n.inputs[0]!.shape[axis] as number;
    return [op.slice(g, axis, before, before + dim)];
  },
  concat: (n, g) => {
    const axis = n.attrs.axis;
    let offset = 0;
    return inputs(n).map((x) => {
      const d = x.shape[axis]!;
      if (typeof d !== 'number') throw new GraphError('concat', `gradient needs a static size on axis ${axis} of ${x}`);
      const part = op.slice(g, axis, offset, offset + d);
      offset += d;
      return part;
    });
  },
  split: (n, _g, _needs, outputGrads) => {
    const parts = n.outputs.map((o, k) => outputGrads[k] ?? op.zerosLike(o));
    return [op.concat(parts, n.attrs.axis)];
  },
  broadcastLike: (n, g) => [sumToShape(g, n.inputs[0]!), undefined],
  gather: (n, g) => {
    const [table, indices] = inputs(n);
    const axis = n.attrs.axis;
    if (axis === 0) return [op.scatterAdd(op.zerosLike(table!), indices!, g), undefined];
    // Move the gathered axis to the front (in g, the index axes), scatter rows, move it back.
    const rank = table!.rank;
    const toFront = [axis, ...[...Array(rank).keys()].filter((i) => i !== axis)];
    const q = indices!.rank;
    const gFront = op.transpose(
      g,
      [...Array(g.rank).keys()].map((i) => (i < q ? axis + i : i < q + axis ? i - q : i)),
    );
    const rows = op.scatterAdd(op.zerosLike(op.transpose(table!, toFront)), indices!, gFront);
    return [
      op.transpose(
        rows,
        toFront.map((_, i) => toFront.indexOf(i)),
      ),
      undefined,
    ];
  },
  scatterAdd: (n, g) => [g, undefined, op.gather(g, n.inputs[1]!)],
  gatherElements: (n, g) => {
    const [x, indices] = inputs(n);
    return [op.scatterElementsAdd(op.zerosLike(x!), indices!, g, n.attrs.axis), undefined];
  },
  cumsum: (n, g) => [op.cumsum(g, n.attrs.axis, !n.attrs.reverse)],
  scatterElementsAdd: (n, g) => [g, undefined, op.gatherElements(g, n.inputs[1]!, n.attrs.axis)],
  rotary: (n, g) => {
    // The rotation's transpose is the rotation by −angle: cos stays, sin changes sign.
    const [, positions, cos, sin] = inputs(n);
    return [op.rotary(g, positions!, cos!, op.neg(sin!), n.attrs.heads), undefined, undefined, undefined];
  },
  attention: attentionVjp,
  softmax: (n, g) => {
    const y = n.outputs[0]!;
    const axis = n.attrs.axis;
    return [op.mul(y, op.sub(g, op.sum(op.mul(g, y), [axis], true)))];
  },
  logSoftmax: (n, g) => {
    const y = n.outputs[0]!;
    const axis = n.attrs.axis;
    return [op.sub(g, op.mul(op.exp(y), op.sum(g, [axis], true)))];
  },
  layerNorm: layerNormVjp,
  gelu: geluVjp,
  crossEntropy: (n, g) => {
    const [logits, labels] = inputs(n);
    const logp = n.outputs[1]!;
    const rows = logits!.shape[0]!;
    const gCol = op.reshape(g, [rows, 1]);
    const softmaxPart = op.mul(op.exp(logp), gCol);
    return [op.scatterElementsAdd(softmaxPart, op.reshape(labels!, [rows, 1]), op.neg(gCol), 1), undefined];
  },
  klDivergence: (n, g, needs) => {
    const [logits, target] = inputs(n);
    const gCol = op.reshape(g, [...g.shape, 1]);
    const p = op.exp(target!);
    const gLogits = needs[0]
      ? op.mul(gCol, op.sub(op.mul(op.softmax(logits!, -1), op.sum(p, [-1], true)), p))
      : undefined;
    // ∂/∂target of Σ e^t (t − q) is e^t (t − q + 1).
    const gTarget = needs[1]
      ? sumToShape(op.mul(gCol, op.mul(p, op.add(op.sub(target!, op.logSoftmax(logits!, -1)), 1))), target!)
      : undefined;
    return [gLogits, gTarget];
  },
  // The node's auxiliary outputs are the gradients of the mean loss; the scalar g scales them.
  meanLinearCrossEntropy: (n, g, needs) => [
    needs[0] ? scaledBy(g, n.outputs[1]!) : undefined,
    needs[1] ? scaledBy(g, n.outputs[2]!) : undefined,
    undefined,
  ],
};

const NO_GRADIENT: ReadonlySet<OpName> = new Set<OpName>(NOT_DIFFERENTIABLE);

/** The rule for a node's op, or undefined when the op has none. */
function ruleFor(n: Node): VjpRule<OpName> | undefined {
  // Each rule is stored under its own op's name, so it accepts that op's nodes.
  return (VJP as Partial<Record<OpName, VjpRule<OpName>>>)[n.op];
}

/**
 * Throws unless a rule returned one gradient per input of `n`, each (where given) with its
 * input's dtype and shape: a wrong rule fails here, naming the op and the input, not later as a
 * broadcast or a wrong number far from its cause.
 */
export function checkInputGrads(n: Node, grads: readonly (Tensor | undefined)[]): void {
  if (grads.length !== n.inputs.length) {
    throw new GraphError(n.op, `gradient rule returned ${grads.length} gradients for ${n.inputs.length} inputs`);
  }
  n.inputs.forEach((x, k) => {
    const gk = grads[k];
    if (!gk) return;
    const sameShape = gk.rank === x.rank && gk.shape.every((d, i) => d === x.shape[i]);
    if (gk.dtype !== x.dtype || !sameShape) {
      throw new GraphError(
        n.op,
        `gradient rule returned ${gk.dtype}${formatShape(gk.shape)} for input ${k} (${x}), expected ${x.dtype}${formatShape(x.shape)}`,
      );
    }
  });
}

/**
 * Gradients of `output` with respect to each tensor in `wrt`, as new tensors of the same graph.
 * `output` must be a scalar unless `seed` (the gradient flowing into it) is given. A tensor that
 * `output` does not depend on gets a zero gradient.
 */
export function grad(output: Tensor, wrt: readonly Tensor[], seed?: Tensor): Tensor[] {
  const graph = output.graph;
  if (!seed && output.shape.length !== 0) {
    throw new GraphError('grad', `output ${output} must be a scalar, or pass a seed gradient`);
  }
  const wanted = new Set(wrt.map((t) => t.id));
  // Tensors on a path from some wrt tensor to the output.
  const dependsOnWrt = new Set<number>(wanted);
  const nodes = [...graph.nodes];
  for (const n of nodes) {
    if (n.inputs.some((t) => dependsOnWrt.has(t.id))) for (const o of n.outputs) dependsOnWrt.add(o.id);
  }
  const grads = new Map<number, Tensor>();
  grads.set(output.id, seed ?? op.scalar(graph, 1, output.dtype));
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    const outputGrads = n.outputs.map((o) => grads.get(o.id));
    const allOutputsDifferentiable = ALL_OUTPUTS_DIFFERENTIABLE.has(n.op);
    if (!allOutputsDifferentiable && outputGrads.slice(1).some(Boolean)) {
      throw new GraphError(n.op, 'gradient through an auxiliary output is not supported');
    }
    const g = allOutputsDifferentiable ? outputGrads.find(Boolean) : outputGrads[0];
    if (!g || !n.inputs.some((t) => dependsOnWrt.has(t.id))) continue;
    if (NO_GRADIENT.has(n.op)) continue;
    const rule = ruleFor(n);
    if (!rule) throw new GraphError(n.op, 'has no gradient rule');
    const needs = n.inputs.map((t) => dependsOnWrt.has(t.id));
    const inputGrads = rule(n, g, needs, outputGrads);
    checkInputGrads(n, inputGrads);
    n.inputs.forEach((t, k) => {
      const gi = inputGrads[k];
      if (!gi || !needs[k]) return;
      const prev = grads.get(t.id);
      grads.set(t.id, prev ? op.add(prev, gi) : gi);
    });
  }
  return wrt.map((t) => grads.get(t.id) ?? op.zerosLike(t));
}
