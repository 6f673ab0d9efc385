import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { grad } from '../../src/graph/grad.js';
import { Graph, type Tensor } from '../../src/graph/graph.js';
import * as op from '../../src/graph/ops.js';
import { compile } from '../../src/runtime/session.js';
import { assertClose, assertNdClose, checkVjp, f64, run, toNumbers } from '../support/check.js';
import { Rng } from '../support/random.js';
import * as ref from '../support/reference.js';

const REDUCTIONS: Record<ref.Reduction, (x: Tensor, axes?: readonly number[], keepDims?: boolean) => Tensor> = {
  sum: op.sum,
  mean: op.mean,
  max: op.max,
};

/** Axis lists: everything (undefined and []), one axis, a negative axis, two axes out of order. */
const AXES: (number[] | undefined)[] = [undefined, [], [0], [-1], [2, 0], [1]];

describe('reductions', () => {
  const rng = new Rng(31);
  for (const [kind, build] of Object.entries(REDUCTIONS) as [ref.Reduction, (typeof REDUCTIONS)['sum']][]) {
    for (const axes of AXES) {
      for (const keepDims of [false, true]) {
        const label = `${kind} axes ${JSON.stringify(axes)} keepDims ${keepDims}`;
        it(`${label}: forward`, async () => {
          const x = rng.nd([2, 3, 4]);
          const r = await run({ x: f64(x) }, (t) => build(t.x!, axes, keepDims));
          assertNdClose(r.y!, ref.reduce(x, kind, axes, keepDims), { rtol: 1e-14, atol: 1e-15 }, label);
        });
        it(`${label}: VJP`, async () => {
          // Distinct values keep max away from ties, where it has no derivative.
          await checkVjp({ wrt: { x: rng.nd([2, 3, 4]) }, build: (t) => build(t.x!, axes, keepDims) });
        });
      }
    }
  }

  it('reductions chain: mean of max of sum', async () => {
    await checkVjp({
      wrt: { x: rng.nd([3, 2, 4]) },
      build: (t) => op.mean(op.max(op.sum(t.x!, [1], true), [2]), [0]),
    });
  });

  it('mean over a symbolic axis: the gradient divides by the size fed at run time', async () => {
    const g = new Graph();
    const x = g.input('x', 'float64', ['tokens', 2]);
    const w = g.input('w', 'float64', [2]);
    const loss = op.mean(op.sum(op.mul(x, w), [1]));
    const [gx] = grad(loss, [x]);
    const compiled = await compile({ graph: g, outputs: { loss, gx: gx! } });
    for (const tokens of [1, 3, 8]) {
      const xv = rng.nd([tokens, 2]);
      const r = await compiled.run({ x: f64(xv), w: f64(ref.nd([0.5, -3], [2])) });
      assertClose(
        toNumbers(r.gx!.data),
        Array.from({ length: 2 * tokens }, (_, i) => (i % 2 ? -3 : 0.5) / tokens),
        {},
        `gx, ${tokens} tokens`,
      );
    }
  });
});

describe('argMax', () => {
  it('picks the first index of the largest value along an axis (ties go to the first), as int64', async () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2, 4]);
    const compiled = await compile({ graph: g, outputs: { rows: op.argMax(x, -1), cols: op.argMax(x, 0) } });
    const data = Float32Array.from([1, 5, 5, -2, 7, 0, 5, 7]);
    const r = await compiled.run({ x: { data, dims: [2, 4] } });
    assert.deepEqual(Array.from(r.rows!.data as BigInt64Array), [1n, 0n]);
    assert.deepEqual(r.rows!.dims, [2]);
    assert.deepEqual(Array.from(r.cols!.data as BigInt64Array), [1n, 0n, 0n, 1n]);
    await compiled.release();
  });

  it('is piecewise constant: the gradient through it is zero', async () => {
    const g = new Graph();
    const x = g.input('x', 'float64', [3]);
    const y = op.add(op.sum(op.mul(x, 2)), op.cast(op.argMax(x, 0), 'float64'));
    const [gx] = grad(y, [x]);
    const compiled = await compile({ graph: g, outputs: { y, gx: gx! } });
    const r = await compiled.run({ x: f64(ref.nd([1, 3, 2], [3])) });
    assert.deepEqual(toNumbers(r.y!.data), [13]);
    assert.deepEqual(toNumbers(r.gx!.data), [2, 2, 2]);
    await compiled.release();
  });
});
