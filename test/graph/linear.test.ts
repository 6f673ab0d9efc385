/** linear (x·wᵀ + b): forward against the reference, VJP by finite differences, 2-D and batched. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as op from '../../src/graph/ops.js';
import { assertClose, assertNdClose, checkVjp, f32, f64, run } from '../support/check.js';
import { Rng } from '../support/random.js';
import * as ref from '../support/reference.js';

describe('linear', () => {
  const rng = new Rng(5);
  const w = rng.nd([4, 3]);
  const b = rng.nd([4]);

  for (const dims of [
    [5, 3],
    [2, 5, 3],
  ]) {
    const x = rng.nd(dims);
    const expected = ref.zip([ref.matmul(x, w, { transB: true }), b], (p, q) => p + q);

    it(`forward on x[${dims}], with and without bias`, async () => {
      const r = await run({ x: f64(x), w: f64(w), b: f64(b) }, (t) => ({
        y: op.linear(t.x!, t.w!, t.b!),
        plain: op.linear(t.x!, t.w!),
      }));
      assertNdClose(r.y!, expected, { rtol: 1e-14 }, 'y');
      assertNdClose(r.plain!, ref.matmul(x, w, { transB: true }), { rtol: 1e-14 }, 'plain');
      const r32 = await run({ x: f32(x), w: f32(w), b: f32(b) }, (t) => op.linear(t.x!, t.w!, t.b!));
      assertClose(r32.y!.data as Float32Array, expected.data, { rtol: 1e-5, atol: 1e-6 }, 'float32');
    });

    it(`VJP on x[${dims}]`, async () => {
      await checkVjp({ wrt: { x, w, b }, build: (t) => op.linear(t.x!, t.w!, t.b!) });
    });
  }

  it('a weight that does not fit is refused, naming the op', async () => {
    await assert.rejects(
      run({ x: f64(rng.nd([2, 3])), w: f64(rng.nd([3, 4])) }, (t) => op.linear(t.x!, t.w!)),
      /^GraphError: linear: weight/,
    );
  });
});
