import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { grad } from '../../src/graph/grad.js';
import { Graph, type Tensor } from '../../src/graph/graph.js';
import { toOnnx } from '../../src/graph/onnx.js';
import * as op from '../../src/graph/ops.js';
import { evaluate } from '../../src/runtime/session.js';
import { assertClose, assertNdClose, checkVjp, f32, f64, run } from '../support/check.js';
import { Rng } from '../support/random.js';
import * as ref from '../support/reference.js';

const TRANSPOSES = [
  { transA: false, transB: false },
  { transA: true, transB: false },
  { transA: false, transB: true },
  { transA: true, transB: true },
];

/** Stored dims of an operand whose op(·) is [rows, cols] after the batch axes. */
function stored(batch: number[], rows: number, cols: number, trans: boolean): number[] {
  return [...batch, ...(trans ? [cols, rows] : [rows, cols])];
}

/** The ONNX op types a graph lowers to, read from the node names the encoder writes (n<i>_<OpType>). */
function onnxOpTypes(build: (g: Graph) => Tensor): string[] {
  const g = new Graph();
  const text = Buffer.from(toOnnx({ graph: g, outputs: { y: build(g) } }).bytes).toString('latin1');
  return [...text.matchAll(/n\d+_([A-Za-z]+)/g)].map((m) => m[1]!);
}

interface Case {
  batchA: number[];
  batchB: number[];
}
const BATCHES: Case[] = [
  { batchA: [], batchB: [] }, // Gemm
  { batchA: [3], batchB: [3] },
  { batchA: [2, 1], batchB: [3] }, // batch axes broadcast
  { batchA: [2], batchB: [] }, // a batched, b a plain matrix (activations · weight)
];

describe('matmul forward against the reference', () => {
  const rng = new Rng(21);
  for (const dtype of ['float64', 'float32'] as const) {
    for (const { batchA, batchB } of BATCHES) {
      for (const t of TRANSPOSES) {
        for (const alpha of [1, 0.125, 1 / 3]) {
          it(`${dtype} ${JSON.stringify(batchA)}·${JSON.stringify(batchB)} ${JSON.stringify(t)} alpha ${alpha.toFixed(3)}`, async () => {
            const a = rng.nd(stored(batchA, 3, 4, t.transA));
            const b = rng.nd(stored(batchB, 4, 5, t.transB));
            const feed = dtype === 'float64' ? f64 : f32;
            const r = await run({ a: feed(a), b: feed(b) }, (x) => op.matmul(x.a!, x.b!, { ...t, alpha }));
            const tol = dtype === 'float64' ? { rtol: 1e-14, atol: 1e-15 } : { rtol: 2e-6, atol: 2e-6 };
            assertNdClose(r.y!, ref.matmul(a, b, { ...t, alpha }), tol, 'matmul');
          });
        }
      }
    }
  }
});

describe('matmul lowering paths', () => {
  it('2-D goes to Gemm, with transposes and alpha as attributes', () => {
    const types = onnxOpTypes((g) =>
      op.matmul(g.input('a', 'float32', [4, 3]), g.input('b', 'float32', [5, 4]), {
        transA: true,
        transB: true,
        alpha: 0.5,
      }),
    );
    assert.deepEqual(
      types.filter((t) => t !== 'Identity'),
      ['Gemm'],
    );
  });

  it('batched float32 with a transpose or alpha goes to com.microsoft FusedMatMul', () => {
    const types = onnxOpTypes((g) =>
      op.matmul(g.input('a', 'float32', [2, 3, 4]), g.input('b', 'float32', [2, 5, 4]), { transB: true, alpha: 0.5 }),
    );
    assert.deepEqual(
      types.filter((t) => t !== 'Identity'),
      ['FusedMatMul'],
    );
  });

  it('batched without transposes goes to MatMul', () => {
    const types = onnxOpTypes((g) => op.matmul(g.input('a', 'float32', [2, 3, 4]), g.input('b', 'float32', [4, 5])));
    assert.deepEqual(
      types.filter((t) => t !== 'Identity'),
      ['MatMul'],
    );
  });

  it('batched float64 with transposes goes to Transpose + MatMul (FusedMatMul has no float64 kernel)', () => {
    const types = onnxOpTypes((g) =>
      op.matmul(g.input('a', 'float64', [2, 4, 3]), g.input('b', 'float64', [2, 4, 5]), { transA: true }),
    );
    assert.deepEqual(
      types.filter((t) => t !== 'Identity'),
      ['Transpose', 'MatMul'],
    );
  });

  it('a float64 alpha that float32 cannot hold is applied exactly', async () => {
    const a = ref.nd([1, 2, 3, 4], [2, 2]);
    const r = await run({ a: f64(a) }, (x) => op.matmul(x.a!, x.a!, { alpha: 0.1 }));
    assertNdClose(r.y!, ref.matmul(a, a, { alpha: 0.1 }), { rtol: 1e-15, atol: 0 }, 'alpha 0.1');
  });
});

describe('matmul VJP (float64, central differences)', () => {
  const rng = new Rng(22);
  for (const { batchA, batchB } of BATCHES) {
    for (const t of TRANSPOSES) {
      it(`${JSON.stringify(batchA)}·${JSON.stringify(batchB)} ${JSON.stringify(t)}`, async () => {
        await checkVjp({
          wrt: { a: rng.nd(stored(batchA, 2, 3, t.transA)), b: rng.nd(stored(batchB, 3, 2, t.transB)) },
          build: (x) => op.matmul(x.a!, x.b!, { ...t, alpha: 0.7 }),
        });
      });
    }
  }

  it('x·xᵀ (one tensor on both sides)', async () => {
    await checkVjp({ wrt: { x: rng.nd([2, 3, 2]) }, build: (t) => op.matmul(t.x!, t.x!, { transB: true }) });
  });
});

describe('matmul gradients in float32 (FusedMatMul in the backward) match float64', () => {
  const rng = new Rng(23);
  for (const t of TRANSPOSES) {
    it(JSON.stringify(t), async () => {
      const a = rng.nd(stored([2, 3], 4, 5, t.transA));
      const b = rng.nd(stored([3], 5, 6, t.transB));
      const seed = rng.nd([2, 3, 4, 6]);
      const grads = async (feed: typeof f64): Promise<Record<string, { data: ArrayLike<number> }>> => {
        const g = new Graph();
        const dtype = feed === f64 ? 'float64' : 'float32';
        const ta = g.input('a', dtype, a.dims);
        const tb = g.input('b', dtype, b.dims);
        const ts = g.input('s', dtype, seed.dims);
        const [ga, gb] = grad(op.matmul(ta, tb, { ...t, alpha: 0.25 }), [ta, tb], ts);
        return (await evaluate(
          { graph: g, outputs: { ga: ga!, gb: gb! } },
          { a: feed(a), b: feed(b), s: feed(seed) },
        )) as never;
      };
      const [lo, hi] = [await grads(f32), await grads(f64)];
      assertClose(lo.ga!.data, hi.ga!.data, { rtol: 1e-5, atol: 1e-5 }, 'grad a');
      assertClose(lo.gb!.data, hi.gb!.data, { rtol: 1e-5, atol: 1e-5 }, 'grad b');
    });
  }
});
