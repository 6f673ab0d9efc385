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

/** The fixture's int64 input_ids as the Int32Array a training batch is. */
function fixtureTokens(data: Uint8Array, count: number): Int32Array {
  return Int32Array.from(new BigInt64Array(data.buffer, data.byteOffset, count), Number);
}

for (const name of ['parallel-r25', 'sequential-r100']) {
  test(`train step loss and gradients equal HF's (${name})`, async () => {
    const dir = fixtureDir(name);
    const { config, params } = loadCheckpoint(join(dir, 'model'));
    const expected = openSafetensors(join(dir, 'expected.safetensors'));
    const raw = expected.readRaw('input_ids');
    const [batch, width] = raw.shape as [number, number];
    const step = await TrainStep.create(config, { batch, seq: width - 1 }, { threads: 1 });
    const r = await step.run(params, fixtureTokens(raw.data, batch * width));
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
  await assert.rejects(step.run(new Map(), new Int32Array(5)), /needs 2 × 9 tokens, got 5/);
});

test('tokens reach the step as an Int32Array only: a BigInt64Array is refused in one line', async () => {
  const { config, params } = loadCheckpoint(join(fixtureDir('parallel-r25'), 'model'));
  const step = await TrainStep.create(config, { batch: 2, seq: 8, gradients: false }, { threads: 1 });
  const wide = new BigInt64Array(18) as unknown as Int32Array;
  await assert.rejects(
    step.loss(params, wide),
    (e: Error) => e.message === 'a training batch is an Int32Array of token ids, got BigInt64Array',
  );
});

test('token ids outside the vocabulary are refused, naming the batch', async () => {
  const { config, params } = loadCheckpoint(join(fixtureDir('parallel-r25'), 'model'));
  const step = await TrainStep.create(config, { batch: 2, seq: 8, gradients: false }, { threads: 1 });
  const V = config.vocabSize;
  for (const bad of [V, -1]) {
    const tokens = new Int32Array(18).fill(3);
    tokens[11] = bad;
    await assert.rejects(
      step.loss(params, tokens, 'the batch of step 7'),
      new RegExp(`^DataError: the batch of step 7 holds token id ${bad}, outside the model's vocabulary \\[0, ${V}\\)`),
    );
  }
  const last = new Int32Array(18).fill(V - 1);
  assert.ok(Number.isFinite(await step.loss(params, last)));
});

test('a micro-batch view into a larger batch gives the loss of its own copy', async () => {
  const dir = fixtureDir('parallel-r25');
  const { config, params } = loadCheckpoint(join(dir, 'model'));
  const raw = openSafetensors(join(dir, 'expected.safetensors')).readRaw('input_ids');
  const [batch, width] = raw.shape as [number, number];
  const all = fixtureTokens(raw.data, batch * width);
  const step = await TrainStep.create(config, { batch: 1, seq: width - 1, gradients: false }, { threads: 1 });
  const second = all.subarray(width, 2 * width);
  assert.equal(second.byteOffset, width * 4);
  const fromView = await step.loss(params, second);
  assert.equal(fromView, await step.loss(params, second.slice()));
  assert.notEqual(fromView, await step.loss(params, all.slice(0, width)));
});
