/**
 * The tuned lens: the translator loss and its gradient from our autodiff in float64 against a
 * float64 reference written here and its central differences; zero translators are the logit lens
 * exactly; a lens trained on some rows has a lower KL than the logit lens at every layer but the
 * last on other rows, and training is deterministic.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ActivationRunner } from '../../src/model/activations.js';
import type { NeoXConfig } from '../../src/model/config.js';
import { logitLens } from '../../src/model/logit-lens.js';
import { pythiaArchitecture } from '../../src/model/presets.js';
import {
  checkTraining,
  TUNED_LENS_DEFAULTS,
  trainTunedLens,
  translatorLossGraph,
  tunedLensLayers,
  zeroTunedLens,
} from '../../src/model/tuned-lens.js';
import { evaluate } from '../../src/runtime/session.js';
import { ConfigError } from '../../src/util/errors.js';
import { randomParams } from '../eval/support.js';
import { Rng } from '../support/random.js';
import { layerNorm, logSoftmax, matmul, type Nd, nd } from '../support/reference.js';

describe('translator loss', () => {
  const [layers, H, V, n] = [2, 5, 7, 3];
  const config = { hiddenSize: H, vocabSize: V, layerNormEps: 1e-5 } as NeoXConfig;
  const rng = new Rng(24);
  const inputs = {
    resid: rng.nd([layers, n, H], 0.2, 2),
    target: logSoftmax(rng.nd([n, V], 0.1, 3)),
    weight: rng.nd([layers, H, H], 0.05, 0.4),
    bias: rng.nd([layers, H], 0.05, 0.4),
    'ln.weight': rng.nd([H], 0.5, 1.5),
    'ln.bias': rng.nd([H], 0.1, 0.5),
    unembed: rng.nd([V, H], 0.2, 1.5),
  };
  const layerOf = (a: Nd, l: number, dims: number[]) => {
    const size = dims.reduce((x, y) => x * y, 1);
    return nd(a.data.slice(l * size, (l + 1) * size), dims);
  };

  /** Layer l's Σ_positions KL(target ‖ lens), straight from the definition. */
  function referenceLoss(l: number, weight: Nd, bias: Nd): number {
    const resid = layerOf(inputs.resid, l, [n, H]);
    const b = layerOf(bias, l, [H]);
    const translated = matmul(resid, layerOf(weight, l, [H, H]), { transB: true });
    for (let i = 0; i < translated.data.length; i++)
      translated.data[i] = resid.data[i]! + translated.data[i]! + b.data[i % H]!;
    const normalized = layerNorm(translated, inputs['ln.weight'], inputs['ln.bias'], config.layerNormEps);
    const q = logSoftmax(matmul(normalized, inputs.unembed, { transB: true })).data;
    const t = inputs.target.data;
    let loss = 0;
    for (let i = 0; i < t.length; i++) loss += Math.exp(t[i]!) * (t[i]! - q[i]!);
    return loss;
  }
  const totalLoss = (weight: Nd, bias: Nd) =>
    Array.from({ length: layers }, (_, l) => referenceLoss(l, weight, bias)).reduce((a, b) => a + b, 0);

  test("each layer's loss and the gradients in float64 equal the reference and its central differences", async () => {
    const feeds = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, { data: v.data, dims: v.dims }]));
    const out = await evaluate(translatorLossGraph(config, 'float64'), feeds);
    const losses = Array.from(out.loss!.data as Float64Array);
    assert.equal(losses.length, layers);
    losses.forEach((loss, l) => {
      assert.ok(Math.abs(loss - referenceLoss(l, inputs.weight, inputs.bias)) < 1e-12, `layer ${l} loss ${loss}`);
      assert.ok(loss > 0.1, `layer ${l}: the loss is not degenerate: ${loss}`);
    });
    for (const [name, gradName] of [
      ['weight', 'grad_weight'],
      ['bias', 'grad_bias'],
    ] as const) {
      const g = out[gradName]!.data as Float64Array;
      assert.equal(g.length, inputs[name].data.length);
      const h = 1e-6;
      for (let i = 0; i < g.length; i++) {
        const at = (delta: number) => {
          const moved = nd(inputs[name].data, inputs[name].dims);
          moved.data[i]! += delta;
          return name === 'weight' ? totalLoss(moved, inputs.bias) : totalLoss(inputs.weight, moved);
        };
        const numeric = (at(h) - at(-h)) / (2 * h);
        assert.ok(
          Math.abs(g[i]! - numeric) < 1e-7,
          `${gradName}[${i}]: autodiff ${g[i]}, central difference ${numeric}`,
        );
      }
    }
  });
});

describe('a trained tuned lens', () => {
  const config: NeoXConfig = {
    ...pythiaArchitecture({ numLayers: 3, hiddenSize: 32, numHeads: 2, vocabSize: 96, maxPositions: 32 }),
    dtype: 'float32',
  };
  const params = randomParams(config, 5);
  const runner = new ActivationRunner(config, params, { threads: 1 });
  after(() => runner.release());
  const rng = new Rng(7);
  const length = 24;
  const train = { tokens: Int32Array.from(rng.ints(24 * length, 0, config.vocabSize), Number), rows: 24, length };
  const heldOut = rng.ints(6 * length, 0, config.vocabSize);
  const training = { ...TUNED_LENS_DEFAULTS, steps: 40, tokensPerStep: 4 * length };

  test('zero translators are the logit lens', async () => {
    const logit = await logitLens(runner, params, heldOut, 6);
    assert.deepEqual(await tunedLensLayers(runner, params, zeroTunedLens(config), heldOut, 6), logit);
  });

  test('has a lower KL than the logit lens at every layer but the last on held-out rows', async () => {
    const { lens, losses, rowsPerStep } = await trainTunedLens(runner, params, train, training, {
      runtime: { threads: 1 },
    });
    assert.equal(rowsPerStep, 4);
    assert.equal(losses.length, 40);
    assert.ok(losses.at(-1)! < 0.5 * losses[0]!, `training loss ${losses[0]} → ${losses.at(-1)}`);
    const logit = await logitLens(runner, params, heldOut, 6);
    const tuned = await tunedLensLayers(runner, params, lens, heldOut, 6);
    for (let l = 0; l < config.numLayers; l++)
      assert.ok(tuned[l]!.kl < logit[l]!.kl, `layer ${l}: tuned KL ${tuned[l]!.kl}, logit KL ${logit[l]!.kl}`);
    assert.deepEqual(tuned.at(-1), logit.at(-1));
  });

  test('training is deterministic and its chunking does not change it', async () => {
    const short = { ...training, steps: 3 };
    const a = await trainTunedLens(runner, params, train, short, { runtime: { threads: 1 } });
    const b = await trainTunedLens(runner, params, train, short, { runtime: { threads: 1 }, chunk: 7 });
    a.lens.weights.forEach((w, l) => {
      const other = b.lens.weights[l]!;
      for (let i = 0; i < w.length; i++) assert.ok(Math.abs(w[i]! - other[i]!) < 1e-6, `layer ${l} weight ${i}`);
    });
    assert.deepEqual(
      a.losses.map((x) => x.toFixed(5)),
      b.losses.map((x) => x.toFixed(5)),
    );
  });

  test('settings out of range are refused in one line', () => {
    for (const [field, value] of [
      ['steps', 0],
      ['lr', -1],
      ['momentum', 1],
      ['tokensPerStep', 1.5],
    ] as const)
      assert.throws(
        () => checkTraining({ ...TUNED_LENS_DEFAULTS, [field]: value }),
        (e: Error) => e instanceof ConfigError && e.message.includes(field) && !e.message.includes('\n'),
      );
  });
});
