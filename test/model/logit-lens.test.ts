/**
 * The logit lens against a float64 one computed here from the float64 GPT-NeoX
 * (test/support/reference.ts): every metric at every layer within 1e-5, on a parallel and a
 * sequential residual; the known answer at the last layer (KL 0, top-1 1); chunking does not change
 * the result; too-short rows are refused in one line.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ActivationRunner } from '../../src/model/activations.js';
import { type LensLayer, logitLens } from '../../src/model/logit-lens.js';
import { ConfigError } from '../../src/util/errors.js';
import { fixtureModel } from '../support/activations.js';
import { layerNorm, logSoftmax, matmul, nd, referenceGptNeoX } from '../support/reference.js';

type Model = ReturnType<typeof fixtureModel>;

/** The lens metrics in float64, straight from the definitions. */
function referenceLens(m: Model): LensLayer[] {
  const c = m.config;
  const [L, H, V] = [c.numLayers, c.hiddenSize, c.vocabSize];
  const { activations } = referenceGptNeoX(c, m.params, m.rows);
  const w = nd(m.params.get('gpt_neox.final_layer_norm.weight')!, [H]);
  const b = nd(m.params.get('gpt_neox.final_layer_norm.bias')!, [H]);
  const unembed = nd(m.params.get(c.tieWordEmbeddings ? 'gpt_neox.embed_in.weight' : 'embed_out.weight')!, [V, H]);
  const [B, T] = [m.rows.length, m.rows[0]!.length];
  const lensAt = (l: number) => {
    const resid = activations.get(l < L ? `blocks.${l}.hook_resid_pre` : `blocks.${L - 1}.hook_resid_post`)!;
    return logSoftmax(matmul(layerNorm(nd(resid.data, [B * T, H]), w, b, c.layerNormEps), unembed, { transB: true }));
  };
  const final = lensAt(L).data;
  const argmax = (a: Float64Array, o: number) => {
    let best = 0;
    for (let v = 1; v < V; v++) if (a[o + v]! > a[o + best]!) best = v;
    return best;
  };
  return Array.from({ length: L + 1 }, (_, l) => {
    const q = lensAt(l).data;
    const sum = { kl: 0, ce: 0, entropy: 0, top1: 0 };
    let n = 0;
    for (let row = 0; row < B; row++)
      for (let t = 0; t < T - 1; t++) {
        const o = (row * T + t) * V;
        for (let v = 0; v < V; v++) {
          sum.kl += Math.exp(final[o + v]!) * (final[o + v]! - q[o + v]!);
          sum.entropy -= Math.exp(q[o + v]!) * q[o + v]!;
        }
        sum.ce -= q[o + m.rows[row]![t + 1]!]!;
        if (argmax(q, o) === argmax(final, o)) sum.top1 += 1;
        n++;
      }
    return { layer: l, kl: sum.kl / n, ce: sum.ce / n, entropy: sum.entropy / n, top1: sum.top1 / n };
  });
}

function assertLensClose(got: readonly LensLayer[], expected: readonly LensLayer[], tolerance: number): void {
  assert.equal(got.length, expected.length);
  got.forEach((g, l) => {
    assert.equal(g.layer, l);
    for (const key of ['kl', 'ce', 'entropy', 'top1'] as const)
      assert.ok(
        Math.abs(g[key] - expected[l]![key]) <= tolerance,
        `layer ${l} ${key}: got ${g[key]}, expected ${expected[l]![key]}`,
      );
  });
}

for (const fixture of ['parallel-r25', 'sequential-r100']) {
  describe(`logit lens, fixture ${fixture}`, () => {
    const m = fixtureModel(fixture);
    const runner = new ActivationRunner(m.config, m.params, { threads: 1 });
    after(() => runner.release());
    const expected = referenceLens(m);

    test('every metric at every layer equals the float64 reference within 1e-5', async () => {
      const got = await logitLens(runner, m.params, m.ids, m.rows.length, { runtime: { threads: 1 } });
      assertLensClose(got, expected, 1e-5);
      // The reference is not degenerate: the early layers disagree with the final distribution.
      assert.ok(expected[0]!.kl > 0.01, `layer 0 KL ${expected[0]!.kl}`);
    });

    test('at the last layer the lens is the final distribution: KL 0, top-1 1', async () => {
      const got = await logitLens(runner, m.params, m.ids, m.rows.length);
      const last = got.at(-1)!;
      assert.equal(last.layer, m.config.numLayers);
      assert.equal(last.kl, 0);
      assert.equal(last.top1, 1);
    });

    test('positions in chunks of 1, 5 or all give the same result', async () => {
      const whole = await logitLens(runner, m.params, m.ids, m.rows.length);
      for (const chunk of [1, 5]) {
        const got = await logitLens(runner, m.params, m.ids, m.rows.length, { chunk });
        assertLensClose(got, whole, 1e-6);
      }
    });
  });
}

test('rows of one token are refused in one line', async () => {
  const m = fixtureModel('parallel-r25');
  const runner = new ActivationRunner(m.config, m.params, { threads: 1 });
  await assert.rejects(
    logitLens(runner, m.params, BigInt64Array.of(1n, 2n), 2),
    (e: Error) => e instanceof ConfigError && /at least 2 tokens/.test(e.message),
  );
  await runner.release();
});

test('a row may be the context + 1 tokens (a training sample): the last is only predicted; one more is refused', async () => {
  const m = fixtureModel('parallel-r25');
  const runner = new ActivationRunner(m.config, m.params, { threads: 1 });
  try {
    const T = m.config.maxPositions + 1;
    const row = Array.from({ length: T }, (_, t) => (t * 7 + 3) % m.config.vocabSize);
    const ids = BigInt64Array.from(row, BigInt);
    const got = await logitLens(runner, m.params, ids, 1);
    // Another last token changes only the cross-entropy, and only at the last position.
    const other = BigInt64Array.from(ids);
    other[T - 1] = BigInt((row[T - 1]! + 1) % m.config.vocabSize);
    const changed = await logitLens(runner, m.params, other, 1);
    got.forEach((g, l) => {
      for (const key of ['kl', 'entropy', 'top1'] as const) assert.equal(changed[l]![key], g[key]);
      assert.notEqual(changed[l]!.ce, g.ce);
    });
    await assert.rejects(
      logitLens(runner, m.params, BigInt64Array.from([...row, 1].map(BigInt)), 1),
      (e: Error) => e instanceof ConfigError && /max_position_embeddings \+ 1 = 129 tokens; got 130/.test(e.message),
    );
  } finally {
    await runner.release();
  }
});
