import { type DType, dtypeOfArray, type TypedArray } from './dtype.js';
import type { OpAttrs, OpName } from './registry.js';
import { formatShape, GraphError, numel, type Shape } from './shape.js';

/** One operation in a graph. `outputs[0]` is the main result; some ops have auxiliary outputs. */
export class OpNode<K extends OpName = OpName> {
  readonly outputs: Tensor[] = [];
  constructor(
    readonly id: number,
    readonly op: K,
    readonly inputs: readonly Tensor[],
    readonly attrs: Readonly<OpAttrs[K]>,
  ) {}
}

/** A node of any op: checking `node.op` narrows `node.attrs` to that op's attributes. */
export type Node = { [K in OpName]: OpNode<K> }[OpName];

/** A value in a graph: a graph input, an initializer (constant data), or an output of a node. */
export class Tensor {
  constructor(
    readonly graph: Graph,
    readonly id: number,
    readonly dtype: DType,
    readonly shape: Shape,
    readonly producer: Node | undefined,
    readonly kind: 'input' | 'initializer' | 'node',
    readonly name: string,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `${this.name}:${this.dtype}${formatShape(this.shape)}`;
  }
}

export interface Initializer {
  tensor: Tensor;
  data: TypedArray;
}

/** A symbolic graph: tensors and the nodes that compute them, in the order they were built. */
export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: Tensor[] = [];
  readonly initializers: Initializer[] = [];
  private nextId = 0;
  private readonly names = new Set<string>();

  input(name: string, dtype: DType, shape: Shape): Tensor {
    this.claim(name);
    const t = new Tensor(this, this.nextId++, dtype, [...shape], undefined, 'input', name);
    this.inputs.push(t);
    return t;
  }

  /** Constant data baked into the graph (ONNX initializer). */
  initializer(name: string, data: TypedArray, shape: readonly number[], dtype: DType = dtypeOfArray(data)): Tensor {
    if (numel(shape) !== data.length) {
      throw new GraphError('initializer', `${name}: ${data.length} values do not fill shape ${formatShape(shape)}`);
    }
    this.claim(name);
    const t = new Tensor(this, this.nextId++, dtype, [...shape], undefined, 'initializer', name);
    this.initializers.push({ tensor: t, data });
    return t;
  }

  constant(data: TypedArray, shape: readonly number[], dtype?: DType): Tensor {
    return this.initializer(`const_${this.nextId}`, data, shape, dtype);
  }

  /** Appends a node; `outputs` gives each output's dtype and shape. */
  addNode<K extends OpName>(
    op: K,
    inputs: readonly Tensor[],
    attrs: OpAttrs[K],
    outputs: readonly { dtype: DType; shape: Shape }[],
  ): OpNode<K> {
    for (const t of inputs) {
      if (t.graph !== this) throw new GraphError(op, `input ${t.name} belongs to another graph`);
    }
    const node = new OpNode(this.nextId++, op, inputs, attrs);
    // An OpNode<K> is the member of the Node union for its own K.
    const member = node as unknown as Node;
    for (const o of outputs) {
      const id = this.nextId++;
      node.outputs.push(new Tensor(this, id, o.dtype, o.shape, member, 'node', `t${id}`));
    }
    this.nodes.push(member);
    return node;
  }

  private claim(name: string): void {
    if (this.names.has(name)) throw new GraphError('graph', `the name ${name} is used twice`);
    this.names.add(name);
  }
}
