/**
 * The optimizer's SIMD WebAssembly loops against scalar float32 loops written from the formula,
 * bit for bit, over lengths that do and do not fill whole vectors and blocks; and the committed
 * module against an assembly of kernels.wat by wabt. Arrays that live in the kernels' memory
 * (residentArrays) give the same bits as arrays copied through it in blocks.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ApexConstants, adamApex, residentArrays, scaleInPlace, sumSquares } from '../../src/train/kernels.js';
import { KERNELS_WASM_BASE64 } from '../../src/train/kernels-wasm.js';
import { Rng } from '../support/random.js';

const f32 = Math.fround;
const LENGTHS = [1, 3, 4, 5, 16383, 16384, 16389, 40000];

function randomArray(rng: Rng, n: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) =>
    i % 97 === 0 ? 0 : i % 89 === 0 ? 1e-42 : scale * rng.uniform(-1, 1),
  );
}

/** apex AdamW's constants at `step` (β 0.9 and 0.95, ε 1e-8, decay 0.1, lr 6e-4), in float32. */
function apexConstants(step: number): ApexConstants {
  return {
    b1: f32(0.9),
    oneMinusB1: f32(1 - f32(0.9)),
    b2: f32(0.95),
    oneMinusB2: f32(1 - f32(0.95)),
    bc1: f32(1 - 0.9 ** step),
    bc2: f32(1 - 0.95 ** step),
    eps: f32(1e-8),
    decay: f32(0.1),
    lr: f32(6e-4),
  };
}

describe('SIMD optimizer kernels', () => {
  const rng = new Rng(7);

  it('the committed module is kernels.wat assembled by wabt', async () => {
    // @ts-expect-error: a plain JavaScript build script
    const { assembleKernels } = await import('../../../scripts/build-kernels.mjs');
    assert.equal(await assembleKernels(), KERNELS_WASM_BASE64, 'run node scripts/build-kernels.mjs');
  });

  for (const n of LENGTHS) {
    it(`apex AdamW equals the scalar float32 loop bit for bit (${n} values)`, () => {
      const [p, g, m] = [randomArray(rng, n, 0.02), randomArray(rng, n, 0.5), randomArray(rng, n, 0.01)];
      const v = randomArray(rng, n, 0.01).map(Math.abs);
      const c = apexConstants(3);
      const [p1, m1, v1] = [p.slice(), m.slice(), v.slice()];
      for (let i = 0; i < n; i++) {
        const mi = f32(f32(c.b1 * m1[i]!) + f32(c.oneMinusB1 * g[i]!));
        const vi = f32(f32(c.b2 * v1[i]!) + f32(f32(c.oneMinusB2 * g[i]!) * g[i]!));
        const denom = f32(f32(Math.sqrt(f32(vi / c.bc2))) + c.eps);
        p1[i] = f32(p1[i]! - f32(c.lr * f32(f32(f32(mi / c.bc1) / denom) + f32(c.decay * p1[i]!))));
        m1[i] = mi;
        v1[i] = vi;
      }
      adamApex(p, g, m, v, c);
      assert.deepEqual([p, m, v], [p1, m1, v1]);
    });

    it(`sum of squares and scaling (${n} values)`, () => {
      // A longer call first leaves stale values in the module's memory past this call's end.
      sumSquares(randomArray(rng, 40000, 1e3));
      const g = randomArray(rng, n, 1);
      // Both sums round at each addition: they may differ by n units of float64 rounding.
      let sequential = 0;
      for (const x of g) sequential += x * x;
      assert.ok(Math.abs(sumSquares(g) - sequential) <= n * 2.3e-16 * sequential, `${sumSquares(g)} vs ${sequential}`);
      const scaled = g.map((x) => f32(x * f32(0.37)));
      scaleInPlace(g, f32(0.37));
      assert.deepEqual(g, scaled);
    });
  }

  it('resident arrays give the bits of arrays copied through blocks, and stay apart', () => {
    const c = apexConstants(2);
    const lengths = [5, 40000, 3, 16384];
    const resident = residentArrays([...lengths, ...lengths, ...lengths, ...lengths]);
    const at = (k: number, i: number): Float32Array => resident[k * lengths.length + i]!;
    lengths.forEach((n, i) => {
      const [p, g, m] = [randomArray(rng, n, 0.02), randomArray(rng, n, 0.5), randomArray(rng, n, 0.01)];
      const v = randomArray(rng, n, 0.01).map(Math.abs);
      [p, g, m, v].forEach((a, k) => {
        at(k, i).set(a);
      });
      assert.equal(sumSquares(at(1, i)), sumSquares(g));
      scaleInPlace(g, f32(0.7));
      scaleInPlace(at(1, i), f32(0.7));
      adamApex(p, g, m, v, c);
      adamApex(at(0, i), at(1, i), at(2, i), at(3, i), c);
      assert.deepEqual([at(0, i), at(1, i), at(2, i), at(3, i)], [p, g, m, v], `length ${n}`);
    });
    // Each array's padding up to a whole vector is left as zeros, so the next array is untouched.
    assert.deepEqual(
      resident.map((a) => a.byteOffset % 16),
      resident.map(() => 0),
    );
  });
});
