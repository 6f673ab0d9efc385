import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as op from '../../src/graph/ops.js';
import { assertClose, checkVjp, f64, i64, run, toNumbers } from '../support/check.js';
import { Rng } from '../support/random.js';
import * as ref from '../support/reference.js';

describe('cumsum', () => {
  const rng = new Rng(83);

  it('running sums along an axis, forwards and reversed, in float64 and int64', async () => {
    const r = await run({ x: f64(ref.nd([1, 2, 3, 4, 5, 6], [2, 3])), n: i64([1, 0, 1, 1], [1, 4]) }, (x) => ({
      rows: op.cumsum(x.x!, 1),
      cols: op.cumsum(x.x!, 0),
      back: op.cumsum(x.x!, -1, true),
      ints: op.cumsum(x.n!, 1),
    }));
    assertClose(toNumbers(r.rows!.data), [1, 3, 6, 4, 9, 15], {}, 'axis 1');
    assertClose(toNumbers(r.cols!.data), [1, 2, 3, 5, 7, 9], {}, 'axis 0');
    assertClose(toNumbers(r.back!.data), [6, 5, 3, 15, 11, 6], {}, 'reverse');
    assert.deepEqual(toNumbers(r.ints!.data), [1, 1, 2, 3]);
  });

  it('VJP: the reversed running sum of the upstream gradient', async () => {
    await checkVjp({ wrt: { x: rng.nd([3, 4]) }, build: (x) => op.cumsum(x.x!, 1) });
    await checkVjp({ wrt: { x: rng.nd([3, 4]) }, build: (x) => op.cumsum(x.x!, 0, true) });
  });
});
