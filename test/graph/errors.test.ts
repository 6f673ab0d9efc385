/** Malformed graphs fail when they are built, with one line that names the op. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { grad, VJP } from '../../src/graph/grad.js';
import { Graph } from '../../src/graph/graph.js';
import { toOnnx } from '../../src/graph/onnx.js';
import * as op from '../../src/graph/ops.js';
import type { OpName } from '../../src/graph/registry.js';
import { GraphError } from '../../src/graph/shape.js';

function assertGraphError(build: () => unknown, expected: string): void {
  assert.throws(build, (e: unknown) => {
    assert.ok(e instanceof GraphError, `expected a GraphError, got ${String(e)}`);
    assert.equal(e.message, expected);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

describe('build-time errors name the op', () => {
  const g = new Graph();
  const x = g.input('x', 'float32', [2, 3]);
  const y = g.input('y', 'float32', [4]);
  const d = g.input('d', 'float64', [2, 3]);
  const ids = g.input('ids', 'int64', [5]);
  const seq = g.input('s', 'float32', ['batch', 3]);

  it('shape mismatch', () => {
    assertGraphError(() => op.add(x, y), 'add: shapes [2,3] and [4] do not broadcast');
    assertGraphError(() => op.where(op.less(x, 0), x, y), 'where: shapes [2,3] and [2,3] and [4] do not broadcast');
    assertGraphError(() => op.matmul(x, x), 'matmul: inner dimensions differ: x:float32[2,3] · x:float32[2,3]');
    assertGraphError(() => op.matmul(x, y), 'matmul: inputs need rank ≥ 2, got x:float32[2,3] and y:float32[4]');
    assertGraphError(() => op.concat([x, y], 0), 'concat: y:float32[4] does not fit x:float32[2,3] along axis 0');
    assertGraphError(() => op.broadcastLike(x, y), 'broadcastLike: shapes [2,3] and [4] do not broadcast');
  });

  it('dtype mismatch', () => {
    assertGraphError(() => op.mul(x, d), 'mul: dtypes differ: x:float32[2,3] and d:float64[2,3]');
    assertGraphError(() => op.exp(ids), 'exp: ids:int64[5] must be floating point');
    assertGraphError(() => op.gather(x, x), 'gather: indices x:float32[2,3] must be int64 or int32');
    assertGraphError(() => op.where(x, x, x), 'where: condition x:float32[2,3] must be bool');
  });

  it('bad axis', () => {
    assertGraphError(() => op.sum(x, [2]), 'sum: axis 2 is out of range for rank 2');
    assertGraphError(() => op.mean(x, [0, -2]), 'mean: axis listed twice in [0,-2]');
    assertGraphError(() => op.softmax(x, -3), 'softmax: axis -3 is out of range for rank 2');
    assertGraphError(() => op.slice(x, 2, 0, 1), 'slice: axis 2 is out of range for rank 2');
    assertGraphError(() => op.slice(x, 1, 2, 4), 'slice: range [2, 4) is not inside axis 1 of x:float32[2,3]');
    assertGraphError(() => op.slice(seq, 0, 0, 1), 'slice: axis 0 of s:float32[batch,3] is symbolic');
    assertGraphError(() => op.transpose(x, [0, 0]), 'transpose: permutation [0,0] does not fit x:float32[2,3]');
    assertGraphError(() => op.pad(x, 0, -1, 0), 'pad: padding -1 and 0 must be whole numbers ≥ 0');
  });

  it('bad reshape', () => {
    assertGraphError(
      () => op.reshape(x, [4, 2]),
      'reshape: cannot reshape x:float32[2,3] (6 values) to [4,2] (8 values)',
    );
    assertGraphError(() => op.reshape(x, ['n', 0]), 'reshape: bad target shape [n,0]');
    assertGraphError(
      () => op.reshape(x, ['a', 'b']),
      'reshape: cannot infer both a and b when reshaping x:float32[2,3] to [a,b]',
    );
  });

  it('model ops check their parameters', () => {
    const w = g.input('w', 'float32', [4]);
    assertGraphError(
      () => op.layerNorm(x, w, w, 1e-5),
      'layerNorm: parameter w:float32[4] should be float32[3] for input x:float32[2,3]',
    );
    assertGraphError(
      () => op.crossEntropy(x, ids),
      'crossEntropy: expects logits [N,V] and labels [N], got x:float32[2,3] and ids:int64[5]',
    );
    const table = g.input('table', 'float32', [10, 3]);
    const updates = g.input('u', 'float32', [5, 2]);
    assertGraphError(
      () => op.scatterAdd(table, ids, updates),
      'scatterAdd: updates u:float32[5,2] should be float32[5,3]',
    );
  });

  it('a tensor from another graph (an input this graph does not know)', () => {
    const other = new Graph().input('z', 'float32', [2, 3]);
    assertGraphError(() => op.add(x, other), 'add: input z belongs to another graph');
  });

  it('a name used twice', () => {
    assertGraphError(() => g.input('x', 'float32', [1]), 'graph: the name x is used twice');
  });

  it('gradient of a non-scalar without a seed', () => {
    const e = op.exp(x);
    assertGraphError(
      () => grad(e, [x]),
      `grad: output ${e.name}:float32[2,3] must be a scalar, or pass a seed gradient`,
    );
  });

  it('an op outside the registry (only past the compiler, with a cast) has no lowering and no gradient rule', () => {
    const h = new Graph();
    const a = h.input('a', 'float32', [2]);
    const odd = h.addNode('frobnicate' as OpName, [a], {}, [{ dtype: 'float32', shape: [2] }]).outputs[0]!;
    assertGraphError(() => toOnnx({ graph: h, outputs: { odd } }), 'frobnicate: has no ONNX lowering');
    assertGraphError(() => grad(op.sum(odd), [a]), 'frobnicate: has no gradient rule');
  });
});

describe('grad checks what each gradient rule returns', () => {
  /** Runs `build` with `VJP.exp` replaced by `rule`, restoring the real rule afterwards. */
  function withExpRule(rule: (typeof VJP)['exp'], build: () => unknown): void {
    const real = VJP.exp;
    VJP.exp = rule;
    try {
      build();
    } finally {
      VJP.exp = real;
    }
  }

  it('a gradient of the wrong shape', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2, 3]);
    const loss = op.sum(op.exp(x));
    withExpRule(
      (n, gy) => [op.sum(op.mul(gy, n.outputs[0]!), [0])],
      () =>
        assertGraphError(
          () => grad(loss, [x]),
          'exp: gradient rule returned float32[3] for input 0 (x:float32[2,3]), expected float32[2,3]',
        ),
    );
  });

  it('a gradient of the wrong dtype', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2, 3]);
    const loss = op.sum(op.exp(x));
    withExpRule(
      (n, gy) => [op.cast(op.mul(gy, n.outputs[0]!), 'float64')],
      () =>
        assertGraphError(
          () => grad(loss, [x]),
          'exp: gradient rule returned float64[2,3] for input 0 (x:float32[2,3]), expected float32[2,3]',
        ),
    );
  });

  it('the wrong number of gradients', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2, 3]);
    const loss = op.sum(op.exp(x));
    withExpRule(
      (n, gy) => [op.mul(gy, n.outputs[0]!), undefined],
      () => assertGraphError(() => grad(loss, [x]), 'exp: gradient rule returned 2 gradients for 1 inputs'),
    );
  });

  it("a symbolic dimension other than the input's", () => {
    const g = new Graph();
    const x = g.input('x', 'float32', ['batch', 3]);
    const loss = op.sum(op.exp(x));
    withExpRule(
      (_n, gy) => [op.reshape(gy, ['rows', 3])],
      () =>
        assertGraphError(
          () => grad(loss, [x]),
          'exp: gradient rule returned float32[rows,3] for input 0 (x:float32[batch,3]), expected float32[batch,3]',
        ),
    );
  });

  it('the real rules pass the check: linear without a bias returns two gradients', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [4, 3]);
    const w = g.input('w', 'float32', [2, 3]);
    const [gx, gw] = grad(op.sum(op.linear(x, w)), [x, w]);
    assert.deepEqual(
      [gx!.shape, gw!.shape],
      [
        [4, 3],
        [2, 3],
      ],
    );
  });
});
