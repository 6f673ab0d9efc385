/** split: forward against slices of the reference, VJP by finite differences with some parts unused. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as op from '../../src/graph/ops.js';
import { assertNdClose, checkVjp, f64, run } from '../support/check.js';
import { Rng } from '../support/random.js';
import * as ref from '../support/reference.js';

describe('split', () => {
  const rng = new Rng(17);
  const x = rng.nd([2, 6, 3]);

  it('forward equals slices along the axis', async () => {
    const r = await run({ x: f64(x) }, (t) => {
      const [a, b, c] = op.split(t.x!, 1, [1, 3, 2]);
      return { a: a!, b: b!, c: c! };
    });
    assertNdClose(r.a!, ref.slice(x, 1, 0, 1), { rtol: 0 }, 'a');
    assertNdClose(r.b!, ref.slice(x, 1, 1, 4), { rtol: 0 }, 'b');
    assertNdClose(r.c!, ref.slice(x, 1, 4, 6), { rtol: 0 }, 'c');
  });

  it('VJP: every part used, and only some parts used', async () => {
    await checkVjp({
      wrt: { x },
      build: (t) => {
        const [a, b, c] = op.split(t.x!, 1, [1, 3, 2]);
        return op.add(
          op.add(op.mul(op.sum(a!, [1], true), 2), op.sum(op.mul(b!, b!), [1], true)),
          op.sum(c!, [1], true),
        );
      },
    });
    await checkVjp({ wrt: { x }, build: (t) => op.mul(op.split(t.x!, -1, [2, 1])[1]!, 3) });
  });

  it('sizes that do not add up are refused, naming the op', async () => {
    await assert.rejects(
      run({ x: f64(x) }, (t) => op.split(t.x!, 1, [2, 2])[0]!),
      /^GraphError: split: sizes \[2,2\] do not add up/,
    );
  });
});
