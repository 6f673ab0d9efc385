/**
 * linearCrossEntropy (LM head + per-row loss as one node, with its own gradient rule) against the
 * composition it replaces, crossEntropy(x·wᵀ), and against finite differences, with repeated labels.
 */
import { describe, it } from 'node:test';
import * as op from '../../src/graph/ops.js';
import { assertClose, checkVjp, f32, f64, i64, run } from '../support/check.js';
import { Rng } from '../support/random.js';
import { grad } from '../../src/graph/grad.js';

describe('linearCrossEntropy', () => {
  const rng = new Rng(91);
  const labels = [3, 0, 3, 5, 1];
  const x = rng.nd([5, 4], 0.2, 1.5);
  const w = rng.nd([6, 4], 0.2, 1.5);

  it('equals crossEntropy of the matmul, forward and gradients (float64)', async () => {
    const r = await run({ x: f64(x), w: f64(w), l: i64(labels) }, (t) => {
      const fused = op.linearCrossEntropy(t.x!, t.w!, t.l!);
      const plain = op.crossEntropy(op.matmul(t.x!, t.w!, { transB: true }), t.l!);
      const [fx, fw] = grad(op.mean(fused), [t.x!, t.w!]);
      const [px, pw] = grad(op.mean(plain), [t.x!, t.w!]);
      return { fused, plain, fx: fx!, fw: fw!, px: px!, pw: pw! };
    });
    const tol = { rtol: 1e-12, atol: 1e-14 };
    assertClose(r.fused!.data as Float64Array, r.plain!.data as Float64Array, tol, 'loss');
    assertClose(r.fx!.data as Float64Array, r.px!.data as Float64Array, tol, 'dx');
    assertClose(r.fw!.data as Float64Array, r.pw!.data as Float64Array, tol, 'dw');
  });

  it('VJP against finite differences (float64, non-uniform upstream gradient)', async () => {
    await checkVjp({ wrt: { x, w }, fixed: { l: i64(labels) }, build: (t) => op.linearCrossEntropy(t.x!, t.w!, t.l!) });
  });

  it('float32 matches float64', async () => {
    const r64 = await run({ x: f64(x), w: f64(w), l: i64(labels) }, (t) => op.linearCrossEntropy(t.x!, t.w!, t.l!));
    const r32 = await run({ x: f32(x), w: f32(w), l: i64(labels) }, (t) => op.linearCrossEntropy(t.x!, t.w!, t.l!));
    assertClose(r32.y!.data as Float32Array, r64.y!.data as Float64Array, { rtol: 1e-5, atol: 1e-6 }, 'loss');
  });
});
