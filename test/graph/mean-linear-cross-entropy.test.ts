/**
 * meanLinearCrossEntropy (LM head + mean loss as one node, computed over chunks of rows, its
 * gradient made in the forward pass) against the reference cross-entropy of x·wᵀ, against the
 * composition it replaces, mean(crossEntropy(x·wᵀ)), and against finite differences; with
 * repeated labels, chunks that do not divide the rows, and one chunk.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { grad } from '../../src/graph/grad.js';
import { Graph } from '../../src/graph/graph.js';
import * as op from '../../src/graph/ops.js';
import { assertClose, checkVjp, f32, f64, i32, i64, run } from '../support/check.js';
import { Rng } from '../support/random.js';
import * as ref from '../support/reference.js';

describe('meanLinearCrossEntropy', () => {
  const rng = new Rng(91);
  const labels = [3, 0, 3, 5, 1];
  const x = rng.nd([5, 4], 0.2, 1.5);
  const w = rng.nd([6, 4], 0.2, 1.5);
  // 30 logits: 12 per chunk gives chunks of 2, 2 and 1 rows; the default gives one chunk.
  const chunkings = [12, op.LOGITS_PER_CHUNK];

  for (const perChunk of chunkings) {
    it(`float64 loss equals the reference mean cross-entropy (${perChunk} logits per chunk)`, async () => {
      const r = await run({ x: f64(x), w: f64(w), l: i64(labels) }, (t) =>
        op.meanLinearCrossEntropy(t.x!, t.w!, t.l!, perChunk),
      );
      const rows = ref.crossEntropy(ref.matmul(x, w, { transB: true }), labels).data;
      const expected = rows.reduce((a, b) => a + b, 0) / rows.length;
      assertClose(r.y!.data as Float64Array, [expected], { rtol: 1e-13, atol: 0 }, 'loss');
      assert.deepEqual(r.y!.dims, []);
    });

    it(`float64 gradients equal those of mean(crossEntropy(x·wᵀ)) (${perChunk} logits per chunk)`, async () => {
      const r = await run({ x: f64(x), w: f64(w), l: i64(labels) }, (t) => {
        const fused = op.meanLinearCrossEntropy(t.x!, t.w!, t.l!, perChunk);
        const plain = op.mean(op.crossEntropy(op.matmul(t.x!, t.w!, { transB: true }), t.l!));
        const [fx, fw] = grad(fused, [t.x!, t.w!]);
        const [px, pw] = grad(plain, [t.x!, t.w!]);
        return { fx: fx!, fw: fw!, px: px!, pw: pw! };
      });
      const tol = { rtol: 1e-12, atol: 1e-14 };
      assertClose(r.fx!.data as Float64Array, r.px!.data as Float64Array, tol, 'dx');
      assertClose(r.fw!.data as Float64Array, r.pw!.data as Float64Array, tol, 'dw');
    });

    it(`VJP against finite differences, upstream gradient ≠ 1 (${perChunk} logits per chunk)`, async () => {
      await checkVjp({
        wrt: { x, w },
        fixed: { l: i64(labels) },
        build: (t) => op.mul(op.meanLinearCrossEntropy(t.x!, t.w!, t.l!, perChunk), 2.5),
      });
    });
  }

  it('VJP with weights tied to an embedding gather', async () => {
    await checkVjp({
      wrt: { w },
      fixed: { ids: i64([5, 2, 2, 0, 1]), l: i64(labels) },
      build: (t) => op.meanLinearCrossEntropy(op.tanh(op.gather(t.w!, t.ids!)), t.w!, t.l!, 12),
    });
  });

  // 4 rows: 1/4 is a float32, so float64 folds the mean into Gemm's alpha and beta too.
  for (const perChunk of chunkings) {
    it(`float64 gradients with 1/N folded into the products (${perChunk} logits per chunk)`, async () => {
      const rows = { data: x.data.slice(0, 16), dims: [4, 4] };
      const r = await run({ x: f64(rows), w: f64(w), l: i64(labels.slice(0, 4)) }, (t) => {
        const fused = op.meanLinearCrossEntropy(t.x!, t.w!, t.l!, perChunk);
        const plain = op.mean(op.crossEntropy(op.matmul(t.x!, t.w!, { transB: true }), t.l!));
        const [fx, fw] = grad(fused, [t.x!, t.w!]);
        const [px, pw] = grad(plain, [t.x!, t.w!]);
        return { fx: fx!, fw: fw!, px: px!, pw: pw! };
      });
      assertClose(r.fx!.data as Float64Array, r.px!.data as Float64Array, { rtol: 1e-12, atol: 1e-15 }, 'dx');
      assertClose(r.fw!.data as Float64Array, r.pw!.data as Float64Array, { rtol: 1e-12, atol: 1e-15 }, 'dw');
    });
  }

  for (const perChunk of chunkings) {
    it(`float32 with int32 labels matches float64, loss and gradients (${perChunk} logits per chunk)`, async () => {
      const results = [];
      for (const feed of [f32, f64]) {
        results.push(
          await run({ x: feed(x), w: feed(w), l: i32(labels) }, (t) => {
            const loss = op.meanLinearCrossEntropy(t.x!, t.w!, t.l!, perChunk);
            const [dx, dw] = grad(loss, [t.x!, t.w!]);
            return { loss, dx: dx!, dw: dw! };
          }),
        );
      }
      for (const name of ['loss', 'dx', 'dw']) {
        assertClose(
          results[0]![name]!.data as Float32Array,
          results[1]![name]!.data as Float64Array,
          { rtol: 1e-5, atol: 1e-6 },
          name,
        );
      }
    });
  }

  it('refuses mismatched shapes in one line', async () => {
    await assert.rejects(
      () =>
        run({ x: f64(x), w: f64(rng.nd([6, 3])), l: i64(labels) }, (t) => op.meanLinearCrossEntropy(t.x!, t.w!, t.l!)),
      /meanLinearCrossEntropy.*expects x \[N,d\], w \[V,d\] and labels \[N\]/,
    );
  });

  it('by default, chunks of 2^20 logits or 256 rows, whichever is more, balanced', () => {
    const chunkRows = (n: number, vocab: number): number => {
      const g = new Graph();
      const loss = op.meanLinearCrossEntropy(
        g.input('x', 'float32', [n, 8]),
        g.input('w', 'float32', [vocab, 8]),
        g.input('l', 'int32', [n]),
      );
      return (loss.producer!.attrs as { chunkRows: number }).chunkRows;
    };
    assert.equal(chunkRows(2048, 4096), 256);
    assert.equal(chunkRows(2048, 1024), 1024);
    assert.equal(chunkRows(2048, 50304), 256);
    assert.equal(chunkRows(100, 4096), 100);
    assert.equal(chunkRows(2000, 4096), 250);
  });
});
