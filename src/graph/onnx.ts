/**
 * Lowers a graph to ONNX (ai.onnx opset 20, plus com.microsoft FusedMatMul, RotaryEmbedding and
 * MultiHeadAttention) and encodes the ModelProto. Each op of ours becomes one or a few ONNX nodes;
 * where onnxruntime's CPU provider lacks a float64 kernel (Erf, Gelu, LayerNormalization and the
 * com.microsoft ops) a float64 node is written as its decomposition, so float64 graphs still run.
 * For the WebGPU provider, ops it has no kernel for (FusedMatMul, LogSoftmax) are decomposed too, as
 * a node it cannot run goes to the CPU with copies to and from the GPU around it; so is attention,
 * whose WebGPU kernel computes other numbers than the CPU's.
 */
import { type DType, ONNX_TYPE, type TypedArray } from './dtype.js';
import type { Graph, Node, OpNode, Tensor } from './graph.js';
import { ProtoWriter } from './protobuf.js';
import type { ElementwiseOp } from './registry.js';
import { GraphError } from './shape.js';

export const OPSET = 20;
export const IR_VERSION = 9;

type OnnxAttr = number | string | readonly number[] | { float: number };

interface OnnxNode {
  opType: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, OnnxAttr>;
  domain?: string;
}

interface OnnxInitializer {
  name: string;
  dtype: DType;
  dims: readonly number[];
  data: TypedArray;
}

/** Builds the ONNX node list for one graph. */
class Lowering {
  /**
   * `used`: ids of the tensors some lowered node or graph output consumes. `renamed`: node outputs
   * written straight under their graph-output name (an Identity per output would copy it).
   */
  constructor(
    readonly used: ReadonlySet<number>,
    private readonly renamed: ReadonlyMap<number, string>,
    readonly target: LoweringTarget,
    /** WebGPU: the largest table a scatter kernel is given whole. */
    readonly scatterBytes: number,
    /** Add nodes lowered inside the one Sum of the add that reads them (`addsInSums`). */
    readonly inSum: ReadonlySet<number> = new Set(),
  ) {}
  readonly nodes: OnnxNode[] = [];
  readonly constants: OnnxInitializer[] = [];
  private counter = 0;
  private readonly int64Constants = new Map<string, string>();

  name(t: Tensor): string {
    return this.renamed.get(t.id) ?? t.name;
  }

  fresh(hint: string): string {
    return `_${hint}${this.counter++}`;
  }

  emit(
    opType: string,
    inputs: string[],
    attrs: Record<string, OnnxAttr> = {},
    output?: string,
    domain?: string,
  ): string {
    const out = output ?? this.fresh(opType.toLowerCase());
    this.nodes.push({ opType, inputs, outputs: [out], attrs, domain });
    return out;
  }

  int64s(values: readonly number[]): string {
    const key = values.join(',');
    const known = this.int64Constants.get(key);
    if (known) return known;
    const name = this.fresh('i64_');
    this.constants.push({ name, dtype: 'int64', dims: [values.length], data: BigInt64Array.from(values.map(BigInt)) });
    this.int64Constants.set(key, name);
    return name;
  }

  scalar(value: number, dtype: DType): string {
    const name = this.fresh('c');
    const data = dtype === 'float64' ? Float64Array.of(value) : Float32Array.of(value);
    if (dtype !== 'float64' && dtype !== 'float32') throw new GraphError('onnx', `no scalar constant of ${dtype}`);
    this.constants.push({ name, dtype, dims: [], data });
    return name;
  }
}

const ELEMENTWISE: Record<ElementwiseOp, string> = {
  add: 'Add',
  sub: 'Sub',
  mul: 'Mul',
  div: 'Div',
  pow: 'Pow',
  less: 'Less',
  greater: 'Greater',
  equal: 'Equal',
  where: 'Where',
  neg: 'Neg',
  exp: 'Exp',
  log: 'Log',
  sqrt: 'Sqrt',
  tanh: 'Tanh',
  cos: 'Cos',
  sin: 'Sin',
};

/** erf(x) for float64: sign(x)·(2/√π)·e^(−a²)·Σ 2ⁿa^(2n+1)/(2n+1)!!, a = min(|x|, 6); all terms positive. */
function lowerErf64(L: Lowering, x: string, out?: string): string {
  const a = L.emit('Min', [L.emit('Abs', [x]), L.scalar(6, 'float64')]);
  const z = L.emit('Mul', [a, a]);
  const terms = 110;
  const coeffs: number[] = [1];
  for (let n = 1; n < terms; n++) coeffs.push((coeffs[n - 1]! * 2) / (2 * n + 1));
  let acc = L.scalar(coeffs[terms - 1]!, 'float64');
  for (let n = terms - 2; n >= 0; n--) acc = L.emit('Add', [L.emit('Mul', [acc, z]), L.scalar(coeffs[n]!, 'float64')]);
  const series = L.emit('Mul', [L.emit('Mul', [acc, a]), L.emit('Exp', [L.emit('Neg', [z])])]);
  const magnitude = L.emit('Mul', [series, L.scalar(2 / Math.sqrt(Math.PI), 'float64')]);
  return L.emit('Mul', [magnitude, L.emit('Sign', [x])], {}, out);
}

function lowerGelu64(L: Lowering, x: string, approximate: string, out: string): void {
  const half = L.emit('Mul', [x, L.scalar(0.5, 'float64')]);
  let inner: string;
  if (approximate === 'tanh') {
    const cube = L.emit('Mul', [L.emit('Mul', [x, x]), x]);
    const u = L.emit('Add', [x, L.emit('Mul', [cube, L.scalar(0.044715, 'float64')])]);
    inner = L.emit('Tanh', [L.emit('Mul', [u, L.scalar(Math.sqrt(2 / Math.PI), 'float64')])]);
  } else {
    inner = lowerErf64(L, L.emit('Mul', [x, L.scalar(Math.SQRT1_2, 'float64')]));
  }
  L.emit('Mul', [half, L.emit('Add', [inner, L.scalar(1, 'float64')])], {}, out);
}

function lowerLayerNorm64(L: Lowering, x: string, w: string, b: string, eps: number, outs: string[]): void {
  const axes = L.int64s([-1]);
  const mean = L.emit('ReduceMean', [x, axes], { keepdims: 1 }, outs[1]);
  const centered = L.emit('Sub', [x, mean]);
  const variance = L.emit('ReduceMean', [L.emit('Mul', [centered, centered]), axes], { keepdims: 1 });
  const invStd = L.emit(
    'Reciprocal',
    [L.emit('Sqrt', [L.emit('Add', [variance, L.scalar(eps, 'float64')])])],
    {},
    outs[2],
  );
  L.emit('Add', [L.emit('Mul', [L.emit('Mul', [centered, invStd]), w]), b], {}, outs[0]);
}

/** rotary as standard nodes (float64 has no RotaryEmbedding kernel): heads apart, rotate, rejoin. */
function lowerRotaryDecomposed(
  L: Lowering,
  ins: string[],
  heads: number,
  half: number,
  headDim: number,
  out: string,
): void {
  const [x, positions, cosTable, sinTable] = ins as [string, string, string, string];
  const x4 = L.emit('Reshape', [x, L.int64s([0, 0, heads, headDim])]);
  const at = (table: string): string =>
    L.emit('Unsqueeze', [L.emit('Gather', [table, positions], { axis: 0 }), L.int64s([2])]);
  const [cos, sin] = [at(cosTable), at(sinTable)];
  const part = (start: number, end: number): string =>
    L.emit('Slice', [x4, L.int64s([start]), L.int64s([end]), L.int64s([3])]);
  const [a, b] = [part(0, half), part(half, 2 * half)];
  const parts = [
    L.emit('Sub', [L.emit('Mul', [a, cos]), L.emit('Mul', [b, sin])]),
    L.emit('Add', [L.emit('Mul', [b, cos]), L.emit('Mul', [a, sin])]),
  ];
  if (2 * half < headDim) parts.push(part(2 * half, headDim));
  L.emit('Reshape', [L.emit('Concat', parts, { axis: 3 }), L.int64s([0, 0, -1])], {}, out);
}

/** attention as standard nodes: the float64 path, and the definition the fused kernel must match. */
function lowerAttentionDecomposed(L: Lowering, node: OpNode<'attention'>, ins: string[], outs: string[]): void {
  const { heads, scale } = node.attrs;
  const headDim = (node.inputs[0]!.shape[2] as number) / heads;
  const split = (t: string): string =>
    L.emit('Transpose', [L.emit('Reshape', [t, L.int64s([0, 0, heads, headDim])])], { perm: [0, 2, 1, 3] });
  const [q, k, v] = [split(ins[0]!), split(ins[1]!), split(ins[2]!)];
  const withPast = (past: string | undefined, t: string, out: string): string =>
    past ? L.emit('Concat', [past, t], { axis: 2 }, out) : L.emit('Identity', [t], {}, out);
  const keys = withPast(ins[4], k, outs[1]!);
  const values = withPast(ins[5], v, outs[2]!);
  const dtype = node.inputs[0]!.dtype;
  const scores = L.emit('Add', [
    L.emit('Mul', [L.emit('MatMul', [q, L.emit('Transpose', [keys], { perm: [0, 1, 3, 2] })]), L.scalar(scale, dtype)]),
    ins[3]!,
  ]);
  const context = L.emit('MatMul', [L.emit('Softmax', [scores], { axis: -1 }), values]);
  L.emit('Reshape', [L.emit('Transpose', [context], { perm: [0, 2, 1, 3] }), L.int64s([0, 0, -1])], {}, outs[0]);
}

/**
 * WebGPU's scatter kernels (onnxruntime 1.30) fail on a tensor over 128 MiB, WebGPU's default
 * storage-buffer binding size (Pythia-160m's [50304, 768] embedding gradient): there a large
 * table is scattered in blocks of rows. Each block gets one spare row, the target of every index
 * outside the block, sliced off afterwards.
 */
export const WEBGPU_SCATTER_BYTES = 2 ** 27;

/**
 * table[index[i], ...] += updates[i, ...] (`tableTensor`, `indexTensor`: their tensors in the
 * graph). On the CPU: ScatterElements along axis 0 with each index repeated over its row, which adds
 * every element's updates one after another in index order, whatever the thread count.
 * onnxruntime 1.30's CPU ScatterND with reduction 'add' splits the indices over the intra-op
 * threads, which add into the same rows unsynchronised: at 2 threads repeated indices lose updates,
 * and the order of the sums changes from run to run.
 */
function lowerScatterRowsAdd(
  L: Lowering,
  table: string,
  tableTensor: Tensor,
  index: string,
  indexTensor: Tensor,
  updates: string,
  out?: string,
): string {
  if (L.target !== 'cpu') {
    const index64 = indexTensor.dtype === 'int64' ? index : L.emit('Cast', [index], { to: ONNX_TYPE.int64 });
    return lowerScatterNDRowsAdd(L, table, tableTensor, index64, updates, out);
  }
  // As [rows, d] and [n, d].
  const rank = tableTensor.rank;
  const rows = rank === 2 ? table : L.emit('Flatten', [table], { axis: 1 });
  const plain = rank === 2 && indexTensor.rank === 1;
  const updateRows = plain ? updates : L.emit('Flatten', [updates], { axis: indexTensor.rank });
  const rowIndex = L.emit('Expand', [L.emit('Reshape', [index, L.int64s([-1, 1])]), L.emit('Shape', [updateRows])]);
  const attrs = { axis: 0, reduction: 'add' };
  if (rank === 2) return L.emit('ScatterElements', [rows, rowIndex, updateRows], attrs, out);
  const scattered = L.emit('ScatterElements', [rows, rowIndex, updateRows], attrs);
  return L.emit('Reshape', [scattered, L.emit('Shape', [table])], {}, out);
}

/** The same through ScatterND (int64 `index`), for WebGPU: tables over `L.scatterBytes` in blocks of rows. */
function lowerScatterNDRowsAdd(
  L: Lowering,
  table: string,
  shape: Tensor,
  index: string,
  updates: string,
  out?: string,
): string {
  const [rows, d] = shape.shape as [number, number];
  const rowBytes = d * (shape.dtype === 'float64' ? 8 : 4);
  const blockRows = Math.floor(L.scatterBytes / rowBytes) - 1;
  const whole = shape.rank !== 2 || typeof rows !== 'number' || typeof d !== 'number' || rows <= blockRows;
  if (whole)
    return L.emit(
      'ScatterND',
      [table, L.emit('Unsqueeze', [index, L.int64s([-1])]), updates],
      { reduction: 'add' },
      out,
    );
  const spare = L.fresh('spare_row');
  L.constants.push({
    name: spare,
    dtype: shape.dtype,
    dims: [1, d],
    data: shape.dtype === 'float64' ? new Float64Array(d) : new Float32Array(d),
  });
  const parts: string[] = [];
  for (let start = 0; start < rows; start += blockRows) {
    const end = Math.min(rows, start + blockRows);
    const local = L.emit('Sub', [index, L.int64s([start])]);
    const inside = L.emit('And', [
      L.emit('GreaterOrEqual', [index, L.int64s([start])]),
      L.emit('Less', [index, L.int64s([end])]),
    ]);
    const target = L.emit('Unsqueeze', [L.emit('Where', [inside, local, L.int64s([end - start])]), L.int64s([-1])]);
    const block = L.emit(
      'Concat',
      [L.emit('Slice', [table, L.int64s([start]), L.int64s([end]), L.int64s([0])]), spare],
      { axis: 0 },
    );
    const scattered = L.emit('ScatterND', [block, target, updates], { reduction: 'add' });
    parts.push(L.emit('Slice', [scattered, L.int64s([0]), L.int64s([end - start]), L.int64s([0])]));
  }
  return L.emit('Concat', parts, { axis: 0 }, out);
}

/** log softmax(x) along `axis`; for WebGPU as x − max − log Σ exp(x − max). */
function lowerLogSoftmax(L: Lowering, x: string, axis: number, out?: string): string {
  if (L.target === 'cpu') return L.emit('LogSoftmax', [x], { axis }, out);
  const axes = L.int64s([axis]);
  const shifted = L.emit('Sub', [x, L.emit('ReduceMax', [x, axes], { keepdims: 1 })]);
  const logSum = L.emit('Log', [L.emit('ReduceSum', [L.emit('Exp', [shifted]), axes], { keepdims: 1 })]);
  return L.emit('Sub', [shifted, logSum], {}, out);
}

/** ONNX Reshape target: 0 keeps the input's dimension at that position, −1 takes what is left. */
function reshapeTarget(node: OpNode): number[] {
  const input = node.inputs[0]!;
  return node.outputs[0]!.shape.map((d, i) => (typeof d === 'number' ? d : d === input.shape[i] ? 0 : -1));
}

/**
 * Adds whose only reader is another add and which are no graph output: a chain of them is lowered
 * as one variadic Sum (CPU only), one kernel reading every operand once instead of one per add.
 */
function addsInSums(nodes: readonly Node[], outputs: readonly Tensor[]): Set<number> {
  const reads = new Map<number, number>();
  for (const n of nodes) for (const t of n.inputs) reads.set(t.id, (reads.get(t.id) ?? 0) + 1);
  const isOutput = new Set(outputs.map((t) => t.id));
  const inSum = new Set<number>();
  for (const n of nodes) {
    if (n.op !== 'add') continue;
    for (const t of n.inputs) {
      if (t.producer?.op === 'add' && reads.get(t.id) === 1 && !isOutput.has(t.id)) inSum.add(t.producer.id);
    }
  }
  return inSum;
}

/** The operands of an add, with those of the adds lowered inside its Sum in their place. */
function addOperands(L: Lowering, node: Node): Tensor[] {
  return node.inputs.flatMap((t) => (t.producer && L.inSum.has(t.producer.id) ? addOperands(L, t.producer) : [t]));
}

/**
 * Common subexpressions of the lowered graph: a node with the op, inputs and attributes of an
 * earlier one reads that one's outputs instead (unless it writes a graph output). Gradients repeat
 * work the rules cannot see, e.g. the x̂ of two LayerNorms of one input. (Two bias gradients summing
 * the same rows stay two: each is a graph output.)
 */
function eliminateCommonNodes(nodes: readonly OnnxNode[], graphOutputs: ReadonlySet<string>): OnnxNode[] {
  const replaced = new Map<string, string>();
  const seen = new Map<string, OnnxNode>();
  const kept: OnnxNode[] = [];
  for (const n of nodes) {
    const inputs = n.inputs.map((i) => replaced.get(i) ?? i);
    const node = { ...n, inputs };
    const key = JSON.stringify([n.domain ?? '', n.opType, inputs, n.attrs, n.outputs.length]);
    const earlier = seen.get(key);
    if (earlier && !n.outputs.some((o) => graphOutputs.has(o))) {
      n.outputs.forEach((o, k) => {
        replaced.set(o, earlier.outputs[k]!);
      });
      continue;
    }
    if (!earlier) seen.set(key, node);
    kept.push(node);
  }
  return kept;
}

function lowerNode(L: Lowering, node: Node): void {
  if (L.inSum.has(node.id)) return;
  const ins = node.inputs.map((t) => L.name(t));
  const outs = node.outputs.map((t) => L.name(t));
  const out = outs[0]!;
  const dtype = node.inputs[0]?.dtype;
  switch (node.op) {
    case 'add': {
      const operands = addOperands(L, node);
      if (operands.length > 2)
        L.emit(
          'Sum',
          operands.map((t) => L.name(t)),
          {},
          out,
        );
      else L.emit('Add', ins, {}, out);
      return;
    }
    case 'sub':
    case 'mul':
    case 'div':
    case 'pow':
    case 'less':
    case 'greater':
    case 'equal':
    case 'where':
    case 'neg':
    case 'exp':
    case 'log':
    case 'sqrt':
    case 'tanh':
    case 'cos':
    case 'sin':
      L.emit(ELEMENTWISE[node.op], ins, {}, out);
      return;
    case 'erf':
      if (dtype === 'float64') lowerErf64(L, ins[0]!, out);
      else L.emit('Erf', ins, {}, out);
      return;
    case 'cast':
      L.emit('Cast', ins, { to: ONNX_TYPE[node.attrs.to] }, out);
      return;
    case 'matmul': {
      const transA = node.attrs.transA ? 1 : 0;
      const transB = node.attrs.transB ? 1 : 0;
      const alpha = node.attrs.alpha;
      const [x, y] = node.inputs as [Tensor, Tensor];
      if (!transA && !transB && alpha === 1) {
        // MatMul: onnxruntime's Gemm kernel was measured up to 1.4× slower on plain products.
        L.emit('MatMul', ins, {}, out);
      } else if (x.rank === 2 && y.rank === 2) {
        // Gemm's alpha is a float32 attribute: a float64 alpha that float32 cannot hold is applied after.
        if (dtype === 'float64' && Math.fround(alpha) !== alpha) {
          L.emit('Mul', [L.emit('Gemm', ins, { transA, transB }), L.scalar(alpha, dtype)], {}, out);
        } else {
          L.emit('Gemm', ins, { transA, transB, alpha: { float: alpha } }, out);
        }
      } else if (dtype === 'float32' && L.target === 'cpu') {
        L.emit('FusedMatMul', ins, { transA, transB, alpha: { float: alpha } }, out, 'com.microsoft');
      } else {
        const swapLast = (t: Tensor, name: string): string => {
          const perm = t.shape.map((_, i) => i);
          [perm[t.rank - 1], perm[t.rank - 2]] = [perm[t.rank - 2]!, perm[t.rank - 1]!];
          return L.emit('Transpose', [name], { perm });
        };
        const left = transA ? swapLast(x, ins[0]!) : ins[0]!;
        const right = transB ? swapLast(y, ins[1]!) : ins[1]!;
        if (alpha === 1) L.emit('MatMul', [left, right], {}, out);
        else L.emit('Mul', [L.emit('MatMul', [left, right]), L.scalar(alpha, dtype!)], {}, out);
      }
      return;
    }
    case 'linear': {
      const x = node.inputs[0]!;
      if (x.rank === 2) {
        L.emit('Gemm', ins, { transB: 1 }, out);
      } else {
        const product =
          dtype === 'float32' && L.target === 'cpu'
            ? L.emit('FusedMatMul', [ins[0]!, ins[1]!], { transB: 1 }, ins[2] ? undefined : out, 'com.microsoft')
            : L.emit(
                'MatMul',
                [ins[0]!, L.emit('Transpose', [ins[1]!], { perm: [1, 0] })],
                {},
                ins[2] ? undefined : out,
              );
        if (ins[2]) L.emit('Add', [product, ins[2]], {}, out);
      }
      return;
    }
    case 'quantizedLinear': {
      if (L.target !== 'cpu')
        throw new GraphError('quantizedLinear', 'int8 weights run on the CPU provider only (DynamicQuantizeMatMul)');
      // DynamicQuantizeMatMul's inputs: A, B, b_scale, b_zero_point (absent: 0, symmetric), bias.
      const bias = ins[3] ? ['', ins[3]] : [];
      L.emit('DynamicQuantizeMatMul', [ins[0]!, ins[1]!, ins[2]!, ...bias], {}, out, 'com.microsoft');
      return;
    }
    case 'sum':
    case 'mean':
    case 'max': {
      const opType = { sum: 'ReduceSum', mean: 'ReduceMean', max: 'ReduceMax' }[node.op];
      L.emit(opType, [ins[0]!, L.int64s(node.attrs.axes)], { keepdims: node.attrs.keepDims ? 1 : 0 }, out);
      return;
    }
    case 'argMax':
      L.emit('ArgMax', ins, { axis: node.attrs.axis, keepdims: 0, select_last_index: 0 }, out);
      return;
    case 'reshape':
      L.emit('Reshape', [ins[0]!, L.int64s(reshapeTarget(node))], {}, out);
      return;
    case 'reshapeLike':
      L.emit('Reshape', [ins[0]!, L.emit('Shape', [ins[1]!])], {}, out);
      return;
    case 'broadcastLike':
      L.emit('Expand', [ins[0]!, L.emit('Shape', [ins[1]!])], {}, out);
      return;
    case 'transpose':
      L.emit('Transpose', ins, { perm: node.attrs.perm }, out);
      return;
    case 'slice':
      L.emit(
        'Slice',
        [ins[0]!, L.int64s([node.attrs.start]), L.int64s([node.attrs.end]), L.int64s([node.attrs.axis])],
        {},
        out,
      );
      return;
    case 'pad': {
      const rank = node.inputs[0]!.rank;
      const pads = new Array<number>(2 * rank).fill(0);
      pads[node.attrs.axis] = node.attrs.before;
      pads[rank + node.attrs.axis] = node.attrs.after;
      L.emit('Pad', [ins[0]!, L.int64s(pads)], {}, out);
      return;
    }
    case 'concat':
      L.emit('Concat', ins, { axis: node.attrs.axis }, out);
      return;
    case 'split':
      L.nodes.push({
        opType: 'Split',
        inputs: [ins[0]!, L.int64s(node.attrs.sizes)],
        outputs: outs,
        attrs: { axis: node.attrs.axis },
      });
      return;
    case 'gather':
      L.emit('Gather', ins, { axis: node.attrs.axis }, out);
      return;
    case 'scatterAdd':
      lowerScatterRowsAdd(L, ins[0]!, node.inputs[0]!, ins[1]!, node.inputs[1]!, ins[2]!, out);
      return;
    case 'gatherElements':
      L.emit('GatherElements', ins, { axis: node.attrs.axis }, out);
      return;
    case 'cumsum': {
      const axis = L.fresh('axis');
      L.constants.push({ name: axis, dtype: 'int64', dims: [], data: BigInt64Array.of(BigInt(node.attrs.axis)) });
      L.emit('CumSum', [ins[0]!, axis], { reverse: node.attrs.reverse ? 1 : 0 }, out);
      return;
    }
    case 'scatterElementsAdd':
      L.emit('ScatterElements', ins, { axis: node.attrs.axis, reduction: 'add' }, out);
      return;
    case 'softmax':
      L.emit('Softmax', ins, { axis: node.attrs.axis }, out);
      return;
    case 'logSoftmax':
      lowerLogSoftmax(L, ins[0]!, node.attrs.axis, out);
      return;
    case 'layerNorm':
      if (dtype === 'float64') {
        lowerLayerNorm64(L, ins[0]!, ins[1]!, ins[2]!, node.attrs.eps, outs);
      } else {
        L.nodes.push({
          opType: 'LayerNormalization',
          inputs: ins,
          outputs: outs,
          attrs: { axis: -1, epsilon: { float: node.attrs.eps } },
        });
      }
      return;
    case 'rotary': {
      const heads = node.attrs.heads;
      const half = node.inputs[2]!.shape[1] as number;
      const headDim = (node.inputs[0]!.shape[2] as number) / heads;
      if (dtype === 'float32') {
        // com.microsoft RotaryEmbedding takes int64 position_ids only.
        const [x, positions, ...tables] = ins;
        const pos =
          node.inputs[1]!.dtype === 'int64' ? positions! : L.emit('Cast', [positions!], { to: ONNX_TYPE.int64 });
        L.emit(
          'RotaryEmbedding',
          [x!, pos, ...tables],
          { interleaved: 0, num_heads: heads, rotary_embedding_dim: 2 * half },
          out,
          'com.microsoft',
        );
      } else {
        lowerRotaryDecomposed(L, ins, heads, half, headDim, out);
      }
      return;
    }
    case 'attention':
      // WebGPU's MultiHeadAttention (onnxruntime 1.30) departs from the CPU kernel by up to 1.4% of
      // the activations on these graphs: it is decomposed there.
      if (dtype === 'float32' && L.target === 'cpu') {
        // MultiHeadAttention's inputs: query, key, value, bias, key_padding_mask, attention_bias, past_key, past_value.
        const past = node.inputs.length > 4 ? [ins[4]!, ins[5]!] : [];
        L.nodes.push({
          opType: 'MultiHeadAttention',
          inputs: [ins[0]!, ins[1]!, ins[2]!, '', '', ins[3]!, ...past],
          outputs: outs,
          attrs: { num_heads: node.attrs.heads, scale: { float: node.attrs.scale } },
          domain: 'com.microsoft',
        });
      } else {
        lowerAttentionDecomposed(L, node, ins, outs);
      }
      return;
    case 'gelu':
      if (dtype === 'float64') lowerGelu64(L, ins[0]!, node.attrs.approximate, out);
      else L.emit('Gelu', ins, { approximate: node.attrs.approximate }, out);
      return;
    case 'crossEntropy': {
      lowerLogSoftmax(L, ins[0]!, 1, outs[1]);
      const labels = L.emit('Unsqueeze', [ins[1]!, L.int64s([1])]);
      const picked = L.emit('GatherElements', [outs[1]!, labels], { axis: 1 });
      L.emit('Neg', [L.emit('Squeeze', [picked, L.int64s([1])])], {}, out);
      return;
    }
    case 'meanLinearCrossEntropy':
      lowerMeanLinearCrossEntropy(L, node, ins, outs);
      return;
    case 'klDivergence': {
      const axis = node.inputs[0]!.rank - 1;
      const gap = L.emit('Sub', [ins[1]!, lowerLogSoftmax(L, ins[0]!, axis)]);
      const terms = L.emit('Mul', [L.emit('Exp', [ins[1]!]), gap]);
      L.emit('ReduceSum', [terms, L.int64s([axis])], { keepdims: 0 }, out);
      return;
    }
    default: {
      // Every op of the registry has a case above; the compiler checks that none is left.
      const unknown: never = node;
      throw new GraphError((unknown as Node).op, 'has no ONNX lowering');
    }
  }
}

/**
 * Per chunk of rows: logits = x·wᵀ, the picked log-probabilities for the loss, and from the
 * softmax p the gradient parts (p − onehot)·w (rows of ∂x) and (p − onehot)ᵀ·x (accumulated into ∂w
 * through Gemm's C). On the CPU the one-hot is subtracted from p in place, one element per row, and
 * the mean's 1/N is Gemm's alpha (where float32, the attribute's type, holds it exactly; otherwise
 * both gradients are scaled after). For WebGPU the one-hot parts, w[label] and the scatter of x into
 * rows of ∂w, are taken once over all rows, and the products are plain.
 */
function lowerMeanLinearCrossEntropy(
  L: Lowering,
  node: OpNode<'meanLinearCrossEntropy'>,
  ins: string[],
  outs: string[],
): void {
  const [x, w, labels] = ins as [string, string, string];
  const rows = node.inputs[0]!.shape[0] as number;
  const dtype = node.inputs[0]!.dtype;
  const inverse = 1 / rows;
  const oneHotInP = L.target === 'cpu';
  const folded = oneHotInP && (dtype !== 'float64' || Math.fround(inverse) === inverse);
  const alpha: Record<string, OnnxAttr> = folded ? { alpha: { float: inverse } } : {};
  const [wantLoss, wantDx, wantDw] = node.outputs.map((t) => L.used.has(t.id));
  const picked: string[] = [];
  const dxParts: string[] = [];
  let dw: string | undefined;
  const { chunkRows } = node.attrs;
  const whole = chunkRows >= rows;
  for (let start = 0; start < rows; start += chunkRows) {
    const end = Math.min(rows, start + chunkRows);
    const bounds = [L.int64s([start]), L.int64s([end]), L.int64s([0])];
    const xChunk = whole ? x : L.emit('Slice', [x, ...bounds]);
    const labelChunk = whole ? labels : L.emit('Slice', [labels, ...bounds]);
    const column = wantLoss || oneHotInP ? L.emit('Unsqueeze', [labelChunk, L.int64s([1])]) : '';
    const logits = L.emit('Gemm', [xChunk, w], { transB: 1 });
    if (wantLoss) picked.push(L.emit('GatherElements', [lowerLogSoftmax(L, logits, 1), column], { axis: 1 }));
    if (!wantDx && !wantDw) continue;
    let p = L.emit('Softmax', [logits], { axis: 1 });
    if (oneHotInP) {
      const minusOnes = L.fresh('minus_ones');
      const data = dtype === 'float64' ? new Float64Array(end - start) : new Float32Array(end - start);
      L.constants.push({ name: minusOnes, dtype, dims: [end - start, 1], data: data.fill(-1) });
      p = L.emit('ScatterElements', [p, column, minusOnes], { axis: 1, reduction: 'add' });
    }
    if (wantDx)
      dxParts.push(folded ? L.emit('Gemm', [p, w], alpha, whole ? outs[1] : undefined) : L.emit('MatMul', [p, w]));
    if (wantDw) {
      const attrs: Record<string, OnnxAttr> = { transA: 1, ...alpha, ...(dw ? { beta: { float: 1 } } : {}) };
      dw = L.emit('Gemm', dw ? [p, xChunk, dw] : [p, xChunk], attrs, folded && end === rows ? outs[2] : undefined);
    }
  }
  if (wantLoss) {
    const total = L.emit('ReduceSum', [L.emit('Concat', picked, { axis: 0 }), L.int64s([0, 1])], { keepdims: 0 });
    L.emit('Mul', [total, L.scalar(-1 / rows, dtype)], {}, outs[0]);
  }
  if (wantDx && !(folded && whole)) {
    let dx = dxParts.length > 1 ? L.emit('Concat', dxParts, { axis: 0 }, folded ? outs[1] : undefined) : dxParts[0]!;
    if (!oneHotInP) dx = L.emit('Sub', [dx, L.emit('Gather', [w, labels], { axis: 0 })]);
    if (!folded) L.emit('Mul', [dx, L.scalar(inverse, dtype)], {}, outs[1]);
  }
  if (wantDw && !folded) {
    const total = oneHotInP
      ? dw!
      : lowerScatterRowsAdd(L, dw!, node.inputs[1]!, labels, node.inputs[2]!, L.emit('Neg', [x]));
    L.emit('Mul', [total, L.scalar(inverse, dtype)], {}, outs[2]);
  }
}

/** The nodes needed to compute `outputs`, in graph order. */
export function reachableNodes(graph: Graph, outputs: readonly Tensor[]): Node[] {
  const needed = new Set<number>();
  const stack = [...outputs];
  while (stack.length > 0) {
    const t = stack.pop()!;
    const p = t.producer;
    if (p && !needed.has(p.id)) {
      needed.add(p.id);
      stack.push(...p.inputs);
    }
  }
  return graph.nodes.filter((n) => needed.has(n.id));
}

export interface ModelSpec {
  graph: Graph;
  outputs: Readonly<Record<string, Tensor>>;
  name?: string;
}

/**
 * The onnxruntime execution provider a model is lowered for: `cpu` (also right for CUDA) may use
 * every com.microsoft op of ours; `webgpu` only ops with WebGPU kernels.
 */
export type LoweringTarget = 'cpu' | 'webgpu';

export interface EncodeOptions {
  /** Default `cpu`. */
  target?: LoweringTarget;
  /** With `target: 'webgpu'`, tables larger than this are scattered in blocks (default WEBGPU_SCATTER_BYTES). */
  webgpuScatterBytes?: number;
  /**
   * Store the graph's initializers of at least 1 KiB in a separate file (ONNX external data) named
   * `location`, relative to the model file: the way past protobuf's 2 GiB limit.
   */
  externalData?: { location: string };
}

export interface EncodedModel {
  bytes: Uint8Array;
  inputNames: string[];
  outputNames: string[];
  /** With `externalData`: the external file's contents as consecutive chunks (tensors 64-byte aligned). */
  externalChunks?: Uint8Array[];
}

const EXTERNAL_MIN_BYTES = 1024;
const EXTERNAL_ALIGN = 64;

/** Collects tensor bytes for an external data file and hands out their offsets. */
class ExternalFile {
  readonly chunks: Uint8Array[] = [];
  private size = 0;
  constructor(readonly location: string) {}

  add(bytes: Uint8Array): { offset: number; length: number } {
    const padding = (EXTERNAL_ALIGN - (this.size % EXTERNAL_ALIGN)) % EXTERNAL_ALIGN;
    if (padding > 0) this.chunks.push(new Uint8Array(padding));
    const offset = this.size + padding;
    this.chunks.push(bytes);
    this.size = offset + bytes.length;
    return { offset, length: bytes.length };
  }
}

function encodeTensor(init: OnnxInitializer, external?: ExternalFile): ProtoWriter {
  const w = new ProtoWriter();
  for (const d of init.dims) w.varint(1, d);
  w.varint(2, ONNX_TYPE[init.dtype]);
  w.string(8, init.name);
  const bytes = new Uint8Array(init.data.buffer, init.data.byteOffset, init.data.byteLength);
  if (!external || bytes.length < EXTERNAL_MIN_BYTES) return w.bytes(9, bytes);
  const { offset, length } = external.add(bytes);
  const entry = (key: string, value: string): ProtoWriter => new ProtoWriter().string(1, key).string(2, value);
  w.message(13, entry('location', external.location));
  w.message(13, entry('offset', String(offset)));
  w.message(13, entry('length', String(length)));
  return w.varint(14, 1);
}

function encodeValueInfo(name: string, dtype: DType, shape?: Tensor['shape']): ProtoWriter {
  const tensorType = new ProtoWriter().varint(1, ONNX_TYPE[dtype]);
  if (shape) {
    const shapeProto = new ProtoWriter();
    for (const d of shape) {
      shapeProto.message(1, typeof d === 'number' ? new ProtoWriter().varint(1, d) : new ProtoWriter().string(2, d));
    }
    tensorType.message(2, shapeProto);
  }
  return new ProtoWriter().string(1, name).message(2, new ProtoWriter().message(1, tensorType));
}

function encodeAttr(name: string, value: OnnxAttr): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  if (typeof value === 'number') return w.varint(3, value).varint(20, 2);
  if (typeof value === 'string') return w.string(4, value).varint(20, 3);
  if (Array.isArray(value)) {
    for (const v of value as number[]) w.varint(8, v);
    return w.varint(20, 7);
  }
  return w.float(2, (value as { float: number }).float).varint(20, 1);
}

function encodeNode(n: OnnxNode, index: number): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, `n${index}_${n.opType}`);
  w.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attrs)) w.message(5, encodeAttr(k, v));
  if (n.domain) w.string(7, n.domain);
  return w;
}

/** Lowers the part of a graph that computes `outputs` and encodes it as an ONNX ModelProto. */
export function toOnnx(spec: ModelSpec, options: EncodeOptions = {}): EncodedModel {
  const { graph } = spec;
  const outputEntries = Object.entries(spec.outputs);
  const nodes = reachableNodes(
    graph,
    outputEntries.map(([, t]) => t),
  );
  const used = new Set<number>();
  for (const n of nodes) for (const t of n.inputs) used.add(t.id);
  for (const [, t] of outputEntries) used.add(t.id);

  const taken = new Set([...graph.inputs, ...graph.initializers.map((i) => i.tensor)].map((t) => t.name));
  const renamed = new Map<number, string>();
  for (const [name, t] of outputEntries) {
    if (t.kind === 'node' && !renamed.has(t.id) && !taken.has(name)) renamed.set(t.id, name);
  }
  const target = options.target ?? 'cpu';
  const outputTensors = outputEntries.map(([, t]) => t);
  const inSum = target === 'cpu' ? addsInSums(nodes, outputTensors) : new Set<number>();
  const L = new Lowering(used, renamed, target, options.webgpuScatterBytes ?? WEBGPU_SCATTER_BYTES, inSum);
  for (const n of nodes) lowerNode(L, n);
  for (const [name, t] of outputEntries) {
    if (renamed.get(t.id) !== name && name !== t.name) L.emit('Identity', [L.name(t)], {}, name);
  }

  const g = new ProtoWriter();
  const onnxNodes = eliminateCommonNodes(L.nodes, new Set(outputEntries.map(([name]) => name)));
  for (const [i, n] of onnxNodes.entries()) g.message(1, encodeNode(n, i));
  g.string(2, spec.name ?? 'pythia_ts');
  const external = options.externalData ? new ExternalFile(options.externalData.location) : undefined;
  for (const { tensor, data } of graph.initializers) {
    if (used.has(tensor.id))
      g.message(
        5,
        encodeTensor({ name: tensor.name, dtype: tensor.dtype, dims: tensor.shape as number[], data }, external),
      );
  }
  for (const c of L.constants) g.message(5, encodeTensor(c));
  const inputs = graph.inputs.filter((t) => used.has(t.id));
  for (const t of inputs) g.message(11, encodeValueInfo(t.name, t.dtype, t.shape));
  for (const [name, t] of outputEntries) g.message(12, encodeValueInfo(name, t.dtype));

  const model = new ProtoWriter()
    .varint(1, IR_VERSION)
    .string(2, 'pythia-ts')
    .message(7, g)
    .message(8, new ProtoWriter().string(1, '').varint(2, OPSET))
    .message(8, new ProtoWriter().string(1, 'com.microsoft').varint(2, 1));
  return {
    bytes: model.finish(),
    inputNames: inputs.map((t) => t.name),
    outputNames: outputEntries.map(([n]) => n),
    ...(external ? { externalChunks: external.chunks } : {}),
  };
}
