/**
 * Continuation scoring against log-probabilities computed here from HF's own logits
 * (fixture parallel-r25), for rows of different lengths scored in one batch.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { openSafetensors } from '../../src/formats/index.js';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import { Scorer } from '../../src/model/score.js';
import { fixtureDir } from '../support/paths.js';

test('scores equal log-softmax of HF logits; is_greedy equals argmax agreement', async () => {
  const dir = fixtureDir('parallel-r25');
  const { config, params } = loadCheckpoint(join(dir, 'model'));
  const expected = openSafetensors(join(dir, 'expected.safetensors'));
  const raw = expected.readRaw('input_ids');
  const ids = Array.from(new BigInt64Array(raw.data.buffer, raw.data.byteOffset, raw.data.byteLength / 8), Number);
  const logits = expected.readFloat32('logits');
  const [batch, seq] = raw.shape as [number, number];
  const V = config.vocabSize;
  const row = (b: number): number[] => ids.slice(b * seq, (b + 1) * seq);

  function reference(b: number, from: number, to: number): { logprob: number; isGreedy: boolean } {
    let logprob = 0;
    let isGreedy = true;
    for (let t = from - 1; t < to - 1; t++) {
      const base = (b * seq + t) * V;
      let max = -Infinity;
      let arg = 0;
      for (let v = 0; v < V; v++) if (logits[base + v]! > max) [max, arg] = [logits[base + v]!, v];
      let sum = 0;
      for (let v = 0; v < V; v++) sum += Math.exp(logits[base + v]! - max);
      const target = ids[b * seq + t + 1]!;
      logprob += logits[base + target]! - max - Math.log(sum);
      if (arg !== target) isGreedy = false;
    }
    return { logprob, isGreedy };
  }

  const requests = [
    { context: row(0).slice(0, 10), continuation: row(0).slice(10) },
    { context: row(1).slice(0, 5), continuation: row(1).slice(5, 9) },
    { context: row(0).slice(0, 7), continuation: row(0).slice(7, 8) },
  ];
  const scorer = await Scorer.create(config, params);
  const results = await scorer.score(requests, 2);
  const refs = [reference(0, 10, seq), reference(1, 5, 9), reference(0, 7, 8)];
  results.forEach((r, i) => {
    assert.ok(Math.abs(r.logprob - refs[i]!.logprob) < 1e-4, `request ${i}: ${r.logprob} vs ${refs[i]!.logprob}`);
    assert.equal(r.isGreedy, refs[i]!.isGreedy, `request ${i} is_greedy`);
    assert.equal(r.tokenLogprobs.length, requests[i]!.continuation.length);
  });
  assert.equal(batch, 2);
  // One-token greedy continuation: make one whose target is the argmax, so is_greedy must be true.
  const base = 6 * V;
  let arg = 0;
  for (let v = 0; v < V; v++) if (logits[base + v]! > logits[base + arg]!) arg = v;
  const [greedy] = await scorer.score([{ context: row(0).slice(0, 7), continuation: [arg] }]);
  assert.equal(greedy!.isGreedy, true);
});
