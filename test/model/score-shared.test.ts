/**
 * Shared-context scoring (`Scorer.scoreGroups`: a group's common prefix run once, in one row with
 * each request's remaining tokens after it) equals plain scoring (`Scorer.score`) of the same
 * requests within 1e-5 relative, with the same greedy flags: on the HF fixture checkpoints for
 * groups with continuations of different lengths, contexts that differ after a common start
 * (partial items), groups of one, groups left-truncated at max_position_embeddings, prefixes
 * ending next to it and groups too long for one packed row; and through
 * lm-eval's tokenization (encodePairs) where a context ends inside a word or on whitespace.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { encodePairs } from '../../src/eval/encode.js';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import { type ScoreRequest, type ScoreResult, Scorer } from '../../src/model/score.js';
import { Prng } from '../../src/util/prng.js';
import { makeWorld, randomParams } from '../eval/support.js';
import { FIXTURE_CASES } from '../support/hf-fixture-checks.js';
import { fixtureDir } from '../support/paths.js';

const RELATIVE = 1e-5;

function assertSame(shared: ScoreResult[][], plain: ScoreResult[], label: string): void {
  const flat = shared.flat();
  assert.equal(flat.length, plain.length, `${label}: results`);
  flat.forEach((s, i) => {
    const p = plain[i]!;
    const tolerance = RELATIVE * Math.max(1, Math.abs(p.logprob));
    assert.ok(Math.abs(s.logprob - p.logprob) <= tolerance, `${label} request ${i}: ${s.logprob} vs ${p.logprob}`);
    assert.equal(s.tokenLogprobs.length, p.tokenLogprobs.length, `${label} request ${i}: tokens`);
    assert.equal(s.isGreedy, p.isGreedy, `${label} request ${i}: is_greedy`);
  });
}

async function compare(scorer: Scorer, groups: ScoreRequest[][], batchSize: number, label: string): Promise<void> {
  const plain = await scorer.score(groups.flat(), batchSize);
  const shared = await scorer.scoreGroups(groups, batchSize);
  assert.deepEqual(
    shared.map((g) => g.length),
    groups.map((g) => g.length),
    `${label}: group sizes`,
  );
  assertSame(shared, plain, label);
}

function tokenGroups(vocab: number, maxPositions: number, seed: number): ScoreRequest[][] {
  const rng = new Prng(seed);
  const tokens = (n: number) => Array.from({ length: n }, () => rng.int(vocab));
  const groups: ScoreRequest[][] = [];
  // Multiple choice: one context, 2–5 continuations of 1–12 tokens.
  for (let i = 0; i < 7; i++) {
    const context = tokens(rng.between(1, 40));
    groups.push(
      Array.from({ length: rng.between(2, 5) }, () => ({ context, continuation: tokens(rng.between(1, 12)) })),
    );
  }
  // Partial: contexts sharing their start, one continuation.
  for (let i = 0; i < 3; i++) {
    const start = tokens(rng.between(1, 20));
    const continuation = tokens(rng.between(1, 6));
    groups.push([0, 1].map(() => ({ context: [...start, ...tokens(rng.between(1, 8))], continuation })));
  }
  // Contexts with no common first token, and a group of one.
  groups.push([
    { context: [1, 2, 3], continuation: [4] },
    { context: [2, 2, 3], continuation: [4, 5] },
  ]);
  groups.push([{ context: tokens(9), continuation: tokens(3) }]);
  // Longer than the model's context: each request left-truncated by its own length.
  const long = tokens(maxPositions + 5);
  groups.push([1, 3, 7].map((n) => ({ context: long, continuation: tokens(n) })));
  // A prefix that ends near max_position_embeddings, batched with longer remainders: its padding
  // must not run past the last position.
  const nearEnd = tokens(maxPositions - 2);
  groups.push([0, 1].map(() => ({ context: nearEnd, continuation: tokens(1) })));
  // Remainders that together run past max_position_embeddings after their prefix: the group takes
  // more than one packed row.
  const overflow = tokens(maxPositions - 12);
  groups.push([4, 5, 6, 7].map((n) => ({ context: overflow, continuation: tokens(n) })));
  return groups;
}

for (const name of FIXTURE_CASES) {
  test(`shared-context scoring equals plain scoring on fixture ${name}`, async () => {
    const { config, params } = loadCheckpoint(join(fixtureDir(name), 'model'));
    const scorer = await Scorer.create(config, params, { threads: 1 });
    const groups = tokenGroups(config.vocabSize, config.maxPositions, 3);
    for (const batchSize of [1, 3, 16]) await compare(scorer, groups, batchSize, `${name} batch ${batchSize}`);
  });
}

const dir = mkdtempSync(join(tmpdir(), 'pythia-score-shared-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('shared-context scoring equals plain scoring through lm-eval tokenization at word boundaries', async () => {
  const world = await makeWorld(dir);
  const scorer = await Scorer.create(world.config, randomParams(world.config, 5), { threads: 1 });
  const items = [
    // The context ends inside a word: the whole text's tokens cross the boundary.
    { context: 'The ca', choices: ['t sat on the mat.', 'r', 'nal flows to the sea.'] },
    // Trailing whitespace moves to the continuation.
    { context: 'Q: What is 2 plus 3? A: ', choices: ['5', '8', 'a city'] },
    { context: 'Paris is a', choices: [' city.', ' river', ' coin by the river and kept the coin.'] },
    { context: '', choices: ['The cat', 'The nurse said'] },
  ];
  const groups: ScoreRequest[][] = [];
  for (const item of items)
    groups.push(
      await encodePairs(
        world.tokenizer,
        item.choices.map((c) => ({ context: item.context, continuation: c })),
      ),
    );
  // The shared part is the context's own tokens, which the whole text's tokens need not start with.
  const whole = await world.tokenizer.encodeBatch(['The cat sat on the mat.']);
  const context = groups[0]![0]!.context;
  assert.notDeepEqual(whole[0]!.slice(0, context.length), context, 'the fixture crosses a token boundary');
  for (const batchSize of [1, 2, 8]) await compare(scorer, groups, batchSize, `tokenized batch ${batchSize}`);
});
