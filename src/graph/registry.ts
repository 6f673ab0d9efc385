/**
 * The op registry: every op's name and the attributes its nodes carry. A node's `attrs` is typed
 * by its op; lowering (onnx.ts) is a switch over every name and the gradient table (grad.ts) holds
 * a rule for every differentiable op, both checked by the compiler. How to add an op:
 * docs/architecture.md.
 */
import type { DType } from './dtype.js';

/** The attributes of an op that has none. */
export type NoAttrs = Readonly<Record<string, never>>;

export type GeluApproximation = 'none' | 'tanh';

/** Reductions: the reduced axes, normalised and sorted; `keepDims` keeps them with size 1. */
interface ReduceAttrs {
  axes: readonly number[];
  keepDims: boolean;
}

/** Every op and its attributes (builders and their checks in ops.ts). */
export interface OpAttrs {
  add: NoAttrs;
  sub: NoAttrs;
  mul: NoAttrs;
  div: NoAttrs;
  pow: NoAttrs;
  less: NoAttrs;
  greater: NoAttrs;
  equal: NoAttrs;
  where: NoAttrs;
  neg: NoAttrs;
  exp: NoAttrs;
  log: NoAttrs;
  sqrt: NoAttrs;
  tanh: NoAttrs;
  erf: NoAttrs;
  cos: NoAttrs;
  sin: NoAttrs;
  cast: { to: DType };
  /** alpha·op(a)·op(b) over the last two axes. */
  matmul: { transA: boolean; transB: boolean; alpha: number };
  linear: NoAttrs;
  /** x·(scale·q) + b with int8 weights q [in, out]; CPU only (onnxruntime's DynamicQuantizeMatMul). */
  quantizedLinear: NoAttrs;
  sum: ReduceAttrs;
  mean: ReduceAttrs;
  max: ReduceAttrs;
  /** The index of the first largest value along `axis`, which is dropped (int64). */
  argMax: { axis: number };
  reshape: NoAttrs;
  reshapeLike: NoAttrs;
  broadcastLike: NoAttrs;
  transpose: { perm: readonly number[] };
  slice: { axis: number; start: number; end: number };
  pad: { axis: number; before: number; after: number };
  concat: { axis: number };
  split: { axis: number; sizes: readonly number[] };
  gather: { axis: number };
  scatterAdd: NoAttrs;
  gatherElements: { axis: number };
  scatterElementsAdd: { axis: number };
  /** Running sum along `axis`; `reverse` sums from the end. */
  cumsum: { axis: number; reverse: boolean };
  softmax: { axis: number };
  logSoftmax: { axis: number };
  layerNorm: { eps: number };
  gelu: { approximate: GeluApproximation };
  crossEntropy: NoAttrs;
  /** KL(target ‖ softmax(logits)) along the last axis, the target as log-probabilities. */
  klDivergence: NoAttrs;
  meanLinearCrossEntropy: { chunkRows: number };
  rotary: { heads: number };
  attention: { heads: number; scale: number };
}

export type OpName = keyof OpAttrs;

/** Ops that lower to one ONNX node of the same meaning, with no attributes. */
export type ElementwiseOp =
  | 'add'
  | 'sub'
  | 'mul'
  | 'div'
  | 'pow'
  | 'less'
  | 'greater'
  | 'equal'
  | 'where'
  | 'neg'
  | 'exp'
  | 'log'
  | 'sqrt'
  | 'tanh'
  | 'cos'
  | 'sin';

/** Ops with no gradient: their outputs are booleans or indices. */
export const NOT_DIFFERENTIABLE = ['less', 'greater', 'equal', 'argMax'] as const satisfies readonly OpName[];
export type DifferentiableOp = Exclude<OpName, (typeof NOT_DIFFERENTIABLE)[number]>;

/** Ops whose every output carries a gradient; the other ops' extra outputs are saved statistics. */
export const ALL_OUTPUTS_DIFFERENTIABLE: ReadonlySet<OpName> = new Set<OpName>(['split', 'attention']);
