import { describe, it } from 'node:test';
import type { Tensor } from '../../src/graph/graph.js';
import * as op from '../../src/graph/ops.js';
import { assertNdClose, checkVjp, f64, run } from '../support/check.js';
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
});
