/**
 * quantizedLinear (int8 weights, onnxruntime's DynamicQuantizeMatMul): against a float64 product of
 * the dequantized weights, within the error that quantizing the activations per tensor to uint8
 * allows; exact at the largest products (no int16 saturation); refused where it cannot run.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { grad } from '../../src/graph/grad.js';
import { Graph } from '../../src/graph/graph.js';
import { toOnnx } from '../../src/graph/onnx.js';
import * as op from '../../src/graph/ops.js';
import type { HostTensor } from '../../src/runtime/session.js';
import { run } from '../support/check.js';
import { Rng } from '../support/random.js';

const QMAX = 63;

/** x [m, k], q [k, n] int8, scale [n], bias [n] and the float64 reference x·(scale ⊙ q) + b with its error bound. */
function fixture(rng: Rng, m: number, k: number, n: number) {
  const x = Float32Array.from({ length: m * k }, () => rng.uniform(-3, 2));
  const q = Int8Array.from({ length: k * n }, () => rng.int(-QMAX, QMAX + 1));
  const scale = Float32Array.from({ length: n }, () => rng.uniform(0.001, 0.05));
  const bias = Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
  // DynamicQuantizeLinear: the range [min(x, 0), max(x, 0)] in 255 steps; each activation is off by at most half a step.
  const lo = Math.min(0, ...x);
  const hi = Math.max(0, ...x);
  const step = (hi - lo) / 255;
  const expected = new Float64Array(m * n);
  const bound = new Float64Array(m * n);
  for (let r = 0; r < m; r++) {
    for (let c = 0; c < n; c++) {
      let sum = bias[c]!;
      let weightL1 = 0;
      for (let i = 0; i < k; i++) {
        const w = scale[c]! * q[i * n + c]!;
        sum += x[r * k + i]! * w;
        weightL1 += Math.abs(w);
      }
      expected[r * n + c] = sum;
      // Half a step (and a little more: onnxruntime rounds the scale and zero point in float32) per weight, plus float32 rounding.
      bound[r * n + c] = weightL1 * step * 0.51 + 1e-5 * (Math.abs(sum) + 1);
    }
  }
  const feeds: Record<string, HostTensor> = {
    x: { data: x, dims: [m, k] },
    q: { data: q, dims: [k, n] },
    scale: { data: scale, dims: [n] },
    b: { data: bias, dims: [n] },
  };
  return { feeds, expected, bound };
}

describe('quantizedLinear', () => {
  it('equals the float64 product of the dequantized weights within the activation quantization bound', async () => {
    const rng = new Rng(25);
    for (const [m, k, n] of [
      [3, 16, 5],
      [7, 64, 33],
    ] as const) {
      const { feeds, expected, bound } = fixture(rng, m, k, n);
      const r = await run(feeds, (t) => ({
        y: op.quantizedLinear(t.x!, t.q!, t.scale!, t.b!),
        plain: op.quantizedLinear(t.x!, t.q!, t.scale!),
      }));
      const y = r.y!.data as Float32Array;
      const plain = r.plain!.data as Float32Array;
      assert.deepEqual(r.y!.dims, [m, n]);
      let worst = 0;
      for (let i = 0; i < expected.length; i++) {
        const err = Math.abs(y[i]! - expected[i]!);
        assert.ok(err <= bound[i]!, `[${m},${k},${n}] element ${i}: ${y[i]} vs ${expected[i]} (bound ${bound[i]})`);
        worst = Math.max(worst, err / bound[i]!);
        const b = feeds.b!.data[i % n] as number;
        assert.ok(Math.abs(plain[i]! + b - y[i]!) <= 1e-5 * (1 + Math.abs(y[i]!)), `bias at ${i}`);
      }
      // The bound is not loose by orders of magnitude: the error uses a fair part of it.
      assert.ok(worst > 0.01, `worst error is ${worst} of the bound`);
    }
  });

  it('takes batched input [b, t, in]', async () => {
    const { feeds, expected } = fixture(new Rng(3), 6, 8, 4);
    const batched = { ...feeds, x: { data: feeds.x!.data, dims: [2, 3, 8] } };
    const r = await run(batched, (t) => op.quantizedLinear(t.x!, t.q!, t.scale!, t.b!));
    assert.deepEqual(r.y!.dims, [2, 3, 4]);
    const flat = await run(feeds, (t) => op.quantizedLinear(t.x!, t.q!, t.scale!, t.b!));
    assert.deepEqual(r.y!.data, flat.y!.data);
    assert.equal(expected.length, 24);
  });

  it('is exact at the largest products: two activations at 255 against two weights at 63 (no int16 saturation)', async () => {
    // x quantizes to [255, 255, 0, 0] (scale 1/255, zero point 0); 2·255·63 = 32130 fits in int16.
    const r = await run(
      {
        x: { data: Float32Array.from([1, 1, 0, 0]), dims: [1, 4] },
        q: { data: Int8Array.from([QMAX, -QMAX, QMAX, -QMAX, 0, 0, 0, 0]), dims: [4, 2] },
        scale: { data: Float32Array.from([1, 0.5]), dims: [2] },
      },
      (t) => op.quantizedLinear(t.x!, t.q!, t.scale!),
    );
    const y = r.y!.data as Float32Array;
    assert.ok(Math.abs(y[0]! - 126) < 1e-4, `${y[0]}`);
    assert.ok(Math.abs(y[1]! + 63) < 1e-4, `${y[1]}`);
  });

  it('refuses wrong dtypes and shapes, the WebGPU lowering, and gradients, each in one line naming the op', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2, 4]);
    const q = g.input('q', 'int8', [4, 3]);
    const s = g.input('s', 'float32', [3]);
    assert.throws(
      () => op.quantizedLinear(x, g.input('qf', 'float32', [4, 3]), s),
      /^GraphError: quantizedLinear: weight/,
    );
    assert.throws(
      () => op.quantizedLinear(x, g.input('qt', 'int8', [3, 4]), s),
      /^GraphError: quantizedLinear: weight/,
    );
    assert.throws(() => op.quantizedLinear(x, q, g.input('s2', 'float32', [4])), /^GraphError: quantizedLinear: scale/);
    assert.throws(
      () => op.quantizedLinear(g.input('x64', 'float64', [2, 4]), q, s),
      /^GraphError: quantizedLinear: input/,
    );
    const y = op.quantizedLinear(x, q, s);
    assert.throws(
      () => toOnnx({ graph: g, outputs: { y } }, { target: 'webgpu' }),
      /^GraphError: quantizedLinear: .*CPU/,
    );
    assert.doesNotThrow(() => toOnnx({ graph: g, outputs: { y } }));
    assert.throws(() => grad(op.sum(y), [x]), /^GraphError: quantizedLinear: has no gradient/);
  });
});
