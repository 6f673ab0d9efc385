/**
 * The decoder's cache grows as it fills: steps past several growths give the logits of
 * one pass over the whole sequence, and generation with rows of different lengths (left padding)
 * equals recomputing the whole sequence at every step.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import { Decoder } from '../../src/model/decoder.js';
import { generate } from '../../src/model/generate.js';
import { causalBias } from '../../src/model/gpt-neox.js';
import { fixtureDir } from '../support/paths.js';

const { config, params } = loadCheckpoint(join(fixtureDir('parallel-r25'), 'model'));
const ids = (from: number, to: number): BigInt64Array =>
  BigInt64Array.from({ length: to - from }, (_, t) => BigInt(((from + t) * 37) % config.vocabSize));
const positions = (from: number, to: number): BigInt64Array =>
  BigInt64Array.from({ length: to - from }, (_, t) => BigInt(from + t));

for (const weights of ['constants', 'inputs'] as const) {
  test(`cached steps across cache growths give the full pass's logits (weights as ${weights})`, async () => {
    const decoder = await Decoder.create(config, params, { weights });
    const length = config.maxPositions;
    const prompt = 9;
    let step = await decoder.step(ids(0, prompt), positions(0, prompt), causalBias(prompt), decoder.emptyCache(1), 1);
    for (let t = prompt; t < length; t++)
      step = await decoder.step(ids(t, t + 1), positions(t, t + 1), new Float32Array(t + 1), step.cache, 1);
    assert.equal(step.cache.length, length);
    const whole = await decoder.step(
      ids(0, length),
      positions(0, length),
      causalBias(length),
      decoder.emptyCache(1),
      1,
    );
    const diff = step.logits.reduce((m, x, v) => Math.max(m, Math.abs(x - whole.logits[v]!)), 0);
    assert.ok(diff <= 1e-4, `max |Δ logit| ${diff}`);
    await decoder.release();
  });
}

test('cached generation of rows of different lengths across cache growths equals full recomputation', async () => {
  const decoder = await Decoder.create(config, params);
  const prompts = [
    [5, 17, 3, 99, 42, 7, 8, 61, 2],
    [11, 4, 23],
  ];
  const maxNewTokens = config.maxPositions - prompts[0]!.length;
  const cached = await generate(decoder, prompts, { maxNewTokens });
  assert.deepEqual(cached, await generate(decoder, prompts, { maxNewTokens, noCache: true }));
  await decoder.release();
});
