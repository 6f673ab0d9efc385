/**
 * The CPU update step (createUpdateStep) against the same update written out: the step's
 * gradients, their mean over micro-batches, clipping and AdamW on plain arrays. A small model's
 * parameters and moments live in the optimizer kernels' memory; the result must be the same bits.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type NeoXConfig, parameterShapes } from '../../src/model/config.js';
import { pythiaArchitecture } from '../../src/model/presets.js';
import { TrainStep } from '../../src/model/train-step.js';
import { AdamW, noWeightDecay, PYTHIA_ADAM } from '../../src/train/adamw.js';
import { clipGradNorm } from '../../src/train/grad-clip.js';
import { initParameters, PYTHIA_INIT } from '../../src/train/init.js';
import { scaleInPlace } from '../../src/train/kernels.js';
import { createUpdateStep } from '../../src/train/update-step.js';
import { Rng } from '../support/random.js';

const SEQ = 8;
const MICRO = 2;
const config: NeoXConfig = {
  ...pythiaArchitecture({ numLayers: 2, hiddenSize: 32, numHeads: 2, vocabSize: 64, maxPositions: SEQ }),
  dtype: 'float32',
};

function batches(rng: Rng, count: number): Int32Array[] {
  return Array.from({ length: count }, () =>
    Int32Array.from({ length: MICRO * (SEQ + 1) }, () => Math.floor(rng.uniform(0, config.vocabSize))),
  );
}

const copy = (m: Map<string, Float32Array>): Map<string, Float32Array> =>
  new Map([...m].map(([n, a]) => [n, Float32Array.from(a)]));

describe('CPU update step', () => {
  for (const gas of [1, 2]) {
    it(`gives the bits of the update written out (${gas} micro-batch${gas > 1 ? 'es' : ''}, clipping on)`, async () => {
      const rng = new Rng(11);
      const params = initParameters(
        parameterShapes(config),
        { hiddenSize: config.hiddenSize, numLayers: config.numLayers },
        PYTHIA_INIT,
        5,
      );
      const expected = copy(params);
      const undecayed = noWeightDecay(parameterShapes(config));
      const optimizer = new AdamW(PYTHIA_ADAM, params, undecayed);
      const reference = new AdamW(PYTHIA_ADAM, expected, undecayed);
      const before = [...params.values()];
      const update = await createUpdateStep({
        config,
        params,
        optimizer,
        micro: MICRO,
        seq: SEQ,
        maxNorm: 0.5,
        validation: false,
        runtime: { threads: 1 },
      });
      // A model this small moves into the kernels' memory: the map holds new arrays of the same values.
      assert.ok([...params.values()].every((a, i) => a !== before[i]));
      assert.deepEqual(params, expected);
      const step = await TrainStep.create(config, { batch: MICRO, seq: SEQ }, { threads: 1 });
      for (let k = 0; k < 4; k++) {
        const micro = batches(rng, gas);
        const got = await update.update(micro, 3e-3, 'a test batch');
        let loss = 0;
        let grads: Map<string, Float32Array> | undefined;
        for (const tokens of micro) {
          const r = await step.run(expected, tokens);
          loss += r.loss;
          if (!grads) grads = copy(r.grads);
          else
            for (const [n, g] of r.grads) {
              const sum = grads.get(n)!;
              for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + g[i]!;
            }
        }
        if (gas > 1) for (const g of grads!.values()) scaleInPlace(g, Math.fround(1 / gas));
        const gradNorm = clipGradNorm(grads!, 0.5);
        reference.step(expected, grads!, 3e-3);
        assert.deepEqual(got, { loss: loss / gas, gradNorm }, `step ${k + 1}`);
        assert.ok(gradNorm > 0.5, 'clipping applies');
      }
      assert.deepEqual(params, expected);
      assert.deepEqual(optimizer.state, reference.state);
    });
  }
});
