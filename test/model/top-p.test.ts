import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pick } from '../../src/model/generate.js';
import { Prng } from '../../src/util/prng.js';

/** Frequencies of `draws` seeded picks from one row of logits. */
function frequencies(
  probabilities: number[],
  options: { temperature: number; topK?: number; topP?: number },
  draws = 40000,
): number[] {
  const logits = Float32Array.from(probabilities, Math.log);
  const rng = new Prng(7);
  const counts = new Array<number>(probabilities.length).fill(0);
  for (let i = 0; i < draws; i++) counts[pick(logits, 0, logits.length, { maxNewTokens: 1, ...options }, rng)]!++;
  return counts.map((c) => c / draws);
}

/** Within 4 standard errors of a binomial proportion. */
function near(actual: number, expected: number, draws = 40000): void {
  const se = Math.sqrt((expected * (1 - expected)) / draws);
  assert.ok(Math.abs(actual - expected) <= 4 * se + 1e-12, `${actual} vs ${expected}`);
}

const P = [0.5, 0.3, 0.15, 0.05];

test('top-p keeps the most likely tokens until their probability reaches p, then renormalises (hand-computed)', () => {
  // p = 0.7: 0.5 < 0.7 so token 1 is kept; 0.5 + 0.3 >= 0.7 so token 2 is not. Kept: 0.5/0.8, 0.3/0.8.
  const f = frequencies(P, { temperature: 1, topP: 0.7 });
  near(f[0]!, 0.625);
  near(f[1]!, 0.375);
  assert.equal(f[2], 0);
  assert.equal(f[3], 0);
  // p = 0.45: token 0 alone reaches it.
  assert.deepEqual(frequencies(P, { temperature: 1, topP: 0.45 }, 2000), [1, 0, 0, 0]);
  // p = 1: everything.
  const all = frequencies(P, { temperature: 1, topP: 1 });
  P.forEach((p, i) => {
    near(all[i]!, p);
  });
});

test('temperature applies before top-p, and top-k before top-p, as in HF', () => {
  // T = 2: weights sqrt(p) = .7071 .5477 .3873 .2236 (sum 1.8657) -> .3790 .2936 .2076 .1198.
  // p = 0.6: .3790 < .6 keeps token 1; .6726 >= .6 stops. Kept: .7071/1.2548, .5477/1.2548.
  const hot = frequencies(P, { temperature: 2, topP: 0.6 });
  near(hot[0]!, Math.sqrt(0.5) / (Math.sqrt(0.5) + Math.sqrt(0.3)));
  assert.equal(hot[2]! + hot[3]!, 0);
  // top-k 3 renormalises to .5263 .3158 .1579; p = 0.9: .8421 < .9 keeps all three; token 3 never.
  const k3 = frequencies(P, { temperature: 1, topK: 3, topP: 0.9 });
  near(k3[2]!, 0.15 / 0.95);
  assert.equal(k3[3], 0);
});

test('same seed, same tokens', () => {
  const logits = Float32Array.from(P, Math.log);
  const run = () => {
    const rng = new Prng(11);
    return Array.from({ length: 50 }, () => pick(logits, 0, 4, { maxNewTokens: 1, temperature: 1, topP: 0.9 }, rng));
  };
  assert.deepEqual(run(), run());
});
