/**
 * softmax, logSoftmax, layerNorm, gelu and crossEntropy. LayerNorm, Gelu and Erf have no float64
 * kernels in onnxruntime's CPU provider, so float64 runs the engine's decomposition: it is checked
 * against the reference and finite differences, and the float32 kernels against it.
 */
import { describe, it } from 'node:test';
import { grad } from '../../src/graph/grad.js';
import { Graph, type Tensor } from '../../src/graph/graph.js';
import * as op from '../../src/graph/ops.js';
import { evaluate, type HostTensor } from '../../src/runtime/session.js';
import { assertClose, assertNdClose, checkVjp, dtypeOf, f32, f64, i64, run } from '../support/check.js';
import { Rng } from '../support/random.js';
import * as ref from '../support/reference.js';

const EPS = 1e-5;

/**
 * Runs `build` and the gradients of ⟨seed, output⟩ with respect to every float input, once with
 * float32 feeds and once with float64 ones, and compares the two.
 */
async function float32MatchesFloat64(
  floats: Record<string, ref.Nd>,
  others: Record<string, HostTensor>,
  build: (x: Record<string, Tensor>) => Tensor,
  seed: ref.Nd,
  tol = { rtol: 2e-5, atol: 2e-5 },
): Promise<void> {
  const results = [];
  for (const feed of [f32, f64]) {
    const g = new Graph();
    const feeds: Record<string, HostTensor> = { ...others, seed: feed(seed) };
    const x: Record<string, Tensor> = {};
    for (const [name, v] of Object.entries(floats)) feeds[name] = feed(v);
    for (const [name, t] of Object.entries(feeds)) x[name] = g.input(name, dtypeOf(t), t.dims);
    const y = build(x);
    const names = Object.keys(floats);
    const grads = grad(
      y,
      names.map((n) => x[n]!),
      x.seed,
    );
    const outputs: Record<string, Tensor> = { y };
    names.forEach((n, i) => {
      outputs[`g_${n}`] = grads[i]!;
    });
    results.push(await evaluate({ graph: g, outputs }, feeds));
  }
  const [lo, hi] = results as [Record<string, HostTensor>, Record<string, HostTensor>];
  for (const name of Object.keys(hi))
    assertClose(lo[name]!.data as Float32Array, hi[name]!.data as Float64Array, tol, name);
}

describe('softmax and logSoftmax', () => {
  const rng = new Rng(61);
  for (const axis of [-1, 0, 1]) {
    it(`forward along axis ${axis}`, async () => {
      const x = rng.nd([3, 4, 5], 0.1, 4);
      const r = await run({ x: f64(x) }, (t) => ({ s: op.softmax(t.x!, axis), l: op.logSoftmax(t.x!, axis) }));
      assertNdClose(r.s!, ref.softmax(x, axis), { rtol: 1e-14, atol: 1e-16 }, 'softmax');
      assertNdClose(r.l!, ref.logSoftmax(x, axis), { rtol: 1e-14, atol: 1e-15 }, 'logSoftmax');
    });
    it(`VJP along axis ${axis}`, async () => {
      await checkVjp({ wrt: { x: rng.nd([2, 3, 3]) }, build: (t) => op.softmax(t.x!, axis) });
      await checkVjp({ wrt: { x: rng.nd([2, 3, 3]) }, build: (t) => op.logSoftmax(t.x!, axis) });
    });
  }

  it('is stable for large logits', async () => {
    const x = ref.nd([1000, 1001, 999, -1000], [1, 4]);
    const r = await run({ x: f64(x) }, (t) => ({ s: op.softmax(t.x!), l: op.logSoftmax(t.x!) }));
    assertNdClose(r.s!, ref.softmax(x), { rtol: 1e-14, atol: 1e-300 }, 'softmax');
    // x − logsumexp has an ulp of ~1e-13 at |x| ≈ 1000.
    assertNdClose(r.l!, ref.logSoftmax(x), { rtol: 1e-14, atol: 3e-13 }, 'logSoftmax');
  });
});

describe('layerNorm', () => {
  const rng = new Rng(62);
  it('float64 decomposition against the reference', async () => {
    const [x, w, b] = [rng.nd([2, 3, 6], 0.1, 3), rng.nd([6]), rng.nd([6])];
    const r = await run({ x: f64(x), w: f64(w), b: f64(b) }, (t) => op.layerNorm(t.x!, t.w!, t.b!, EPS));
    assertNdClose(r.y!, ref.layerNorm(x, w, b, EPS), { rtol: 1e-13, atol: 1e-14 }, 'layerNorm');
  });

  it('float64 VJP for input, weight and bias', async () => {
    await checkVjp({
      wrt: { x: rng.nd([3, 5]), w: rng.nd([5]), b: rng.nd([5]) },
      build: (t) => op.layerNorm(t.x!, t.w!, t.b!, EPS),
    });
  });

  it('float32 LayerNormalization kernel, forward and gradients, against float64', async () => {
    await float32MatchesFloat64(
      { x: rng.nd([4, 8], 0.1, 3), w: rng.nd([8]), b: rng.nd([8]) },
      {},
      (t) => op.layerNorm(t.x!, t.w!, t.b!, EPS),
      rng.nd([4, 8]),
    );
  });
});

describe('gelu', () => {
  const rng = new Rng(63);
  for (const approximate of ['none', 'tanh'] as const) {
    it(`${approximate}: float64 against the reference`, async () => {
      const x = ref.nd(
        Array.from({ length: 81 }, (_, i) => -8 + i * 0.2 + 0.01),
        [81],
      );
      const r = await run({ x: f64(x) }, (t) => op.gelu(t.x!, approximate));
      // 1 + erf(x/√2) and 1 + tanh(·) cancel for x ≪ 0 in both: hence the absolute 1e-14.
      assertNdClose(
        r.y!,
        ref.map(x, (v) => ref.gelu(v, approximate)),
        { rtol: 1e-14, atol: 1e-14 },
        'gelu',
      );
    });

    it(`${approximate}: float64 VJP`, async () => {
      await checkVjp({ wrt: { x: rng.nd([3, 4], 0.05, 3.5) }, build: (t) => op.gelu(t.x!, approximate) });
    });

    it(`${approximate}: float32 Gelu kernel, forward and gradient, against float64`, async () => {
      await float32MatchesFloat64(
        { x: rng.nd([5, 6], 0.05, 4) },
        {},
        (t) => op.gelu(t.x!, approximate),
        rng.nd([5, 6]),
      );
    });
  }
});

describe('crossEntropy', () => {
  const rng = new Rng(64);
  const labels = [2, 0, 4, 4];

  it('float64 against the reference', async () => {
    const logits = rng.nd([4, 5], 0.1, 5);
    const r = await run({ z: f64(logits), l: i64(labels) }, (t) => op.crossEntropy(t.z!, t.l!));
    assertNdClose(r.y!, ref.crossEntropy(logits, labels), { rtol: 1e-14 }, 'crossEntropy');
  });

  it('float64 VJP, int64 and int32 labels', async () => {
    await checkVjp({
      wrt: { z: rng.nd([4, 5]) },
      fixed: { l: i64(labels) },
      build: (t) => op.crossEntropy(t.z!, t.l!),
    });
    await checkVjp({
      wrt: { z: rng.nd([4, 5]) },
      fixed: { l: { data: Int32Array.from(labels), dims: [4] } },
      build: (t) => op.crossEntropy(t.z!, t.l!),
    });
  });

  it('mean loss over tokens, as training uses it', async () => {
    await checkVjp({
      wrt: { z: rng.nd([4, 5]) },
      fixed: { l: i64(labels) },
      build: (t) => op.mean(op.crossEntropy(t.z!, t.l!)),
    });
  });

  it('float32 against float64', async () => {
    await float32MatchesFloat64(
      { z: rng.nd([4, 7], 0.1, 6) },
      { l: i64(labels) },
      (t) => op.crossEntropy(t.z!, t.l!),
      rng.nd([4]),
    );
  });

  it('repeated labels (the accumulation in the backward)', async () => {
    await checkVjp({
      wrt: { z: rng.nd([5, 3]) },
      fixed: { l: i64([1, 1, 1, 0, 1]) },
      build: (t) => op.crossEntropy(t.z!, t.l!),
    });
  });
});
