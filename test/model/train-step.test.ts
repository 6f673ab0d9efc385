/**
 * The training step graph (samples of seq+1 tokens, fused LM head + loss) against HF: on the
 * fixture rows, its loss and gradients equal HF's, which are taken over the same positions.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { openSafetensors } from '../../src/formats/index.js';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import { TrainStep } from '../../src/model/train-step.js';
import { relativeL2 } from '../support/check.js';
import { fixtureDir } from '../support/paths.js';

for (const name of ['parallel-r25', 'sequential-r100']) {
  test(`train step loss and gradients equal HF's (${name})`, async () => {
    const dir = fixtureDir(name);
    const { config, params } = loadCheckpoint(join(dir, 'model'));
    const expected = openSafetensors(join(dir, 'expected.safetensors'));
    const raw = expected.readRaw('input_ids');
    const [batch, width] = raw.shape as [number, number];
    const step = await TrainStep.create(config, { batch, seq: width - 1 }, { threads: 1 });
    const r = await step.run(params, new BigInt64Array(raw.data.buffer, 0, batch * width));
    assert.ok(Math.abs(r.loss - expected.readFloat32('loss')[0]!) < 1e-5, `loss ${r.loss}`);
    for (const [paramName, g] of r.grads) {
      const e = expected.readFloat32(`grad.${paramName === 'embed_out.weight' ? 'lm_head.weight' : paramName}`);
      const err = relativeL2(g, e);
      assert.ok(err <= 1e-4, `${paramName}: relative L2 error ${err}`);
    }
  });
}

test('a batch of the wrong size is refused', async () => {
  const { config } = loadCheckpoint(join(fixtureDir('parallel-r25'), 'model'));
  const step = await TrainStep.create(config, { batch: 2, seq: 8 }, { threads: 1 });
  await assert.rejects(step.run(new Map(), new BigInt64Array(5)), /needs 2 × 9 tokens, got 5/);
});
