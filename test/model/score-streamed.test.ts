/**
 * Layer-streamed scoring (`Scorer.streamed`: the checkpoint read a stage at a time from its shards)
 * gives the resident scorer's numbers, within 1e-6 relative on log-likelihoods and with the same
 * greedy flags: on the HF fixture checkpoints and a tied-embedding model split over many float16 or
 * bfloat16 shards, with activation budgets that hold every row, and ones so small that each batch
 * takes its own pass over the checkpoint; and through `scoreGroups` (shared contexts run once, a
 * layer at a time too) against the resident `scoreGroups`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import type { NeoXConfig, WeightDType } from '../../src/model/config.js';
import { LayerStream } from '../../src/model/layer-stream.js';
import type { Params } from '../../src/model/params.js';
import { pythiaArchitecture } from '../../src/model/presets.js';
import { type ScoreRequest, type ScoreResult, Scorer } from '../../src/model/score.js';
import { Prng } from '../../src/util/prng.js';
import { randomParams } from '../eval/support.js';
import { FIXTURE_CASES } from '../support/hf-fixture-checks.js';
import { fixtureDir } from '../support/paths.js';
import { writeShardedCheckpoint } from './sharded-checkpoint.js';

const RELATIVE = 1e-6;
const tmp = mkdtempSync(join(tmpdir(), 'pythia-stream-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function assertSame(streamed: ScoreResult[], resident: ScoreResult[], label: string): void {
  assert.equal(streamed.length, resident.length, `${label}: results`);
  streamed.forEach((s, i) => {
    const r = resident[i]!;
    const tolerance = RELATIVE * Math.max(1, Math.abs(r.logprob));
    assert.ok(Math.abs(s.logprob - r.logprob) <= tolerance, `${label} request ${i}: ${s.logprob} vs ${r.logprob}`);
    assert.equal(s.tokenLogprobs.length, r.tokenLogprobs.length, `${label} request ${i}: tokens`);
    s.tokenLogprobs.forEach((lp, t) => {
      const want = r.tokenLogprobs[t]!;
      assert.ok(Math.abs(lp - want) <= RELATIVE * Math.max(1, Math.abs(want)), `${label} request ${i} token ${t}`);
    });
    assert.equal(s.isGreedy, r.isGreedy, `${label} request ${i}: is_greedy`);
  });
}

function requests(vocab: number, maxPositions: number, seed: number): ScoreRequest[][] {
  const rng = new Prng(seed);
  const tokens = (n: number) => Array.from({ length: n }, () => rng.int(vocab));
  const groups: ScoreRequest[][] = [];
  for (let i = 0; i < 6; i++) {
    const context = tokens(rng.between(1, 30));
    groups.push(
      Array.from({ length: rng.between(1, 4) }, () => ({ context, continuation: tokens(rng.between(1, 8)) })),
    );
  }
  // Partial items: contexts that share their start, one continuation.
  for (let i = 0; i < 2; i++) {
    const start = tokens(rng.between(2, 10));
    const continuation = tokens(rng.between(1, 4));
    groups.push(Array.from({ length: 3 }, () => ({ context: [...start, ...tokens(rng.between(1, 6))], continuation })));
  }
  // Longer than max_position_embeddings: left-truncated, alone and shared.
  groups.push([{ context: tokens(maxPositions + 5), continuation: tokens(3) }]);
  const long = tokens(maxPositions - 3);
  groups.push([
    { context: long, continuation: tokens(2) },
    { context: long, continuation: tokens(6) },
  ]);
  return groups;
}

async function compareOn(dir: string, label: string, seed: number): Promise<void> {
  const { config, params } = loadCheckpoint(dir);
  const resident = await Scorer.create(config, params);
  const stream = LayerStream.open(dir);
  try {
    const groups = requests(config.vocabSize, Math.min(config.maxPositions, 100), seed);
    const flat = groups.flat();
    const want = await resident.score(flat, 3);
    const seqBytes = 4 * config.hiddenSize * Math.min(config.maxPositions, 100);
    for (const activationBytes of [2 ** 30, seqBytes]) {
      const streamed = await Scorer.streamed(stream, {}, activationBytes);
      assert.equal(streamed.streamed, true);
      assertSame(await streamed.score(flat, 3), want, `${label} budget ${activationBytes}`);
      assertSame(
        (await streamed.scoreGroups(groups, 2)).flat(),
        (await resident.scoreGroups(groups, 2)).flat(),
        `${label} groups`,
      );
    }
  } finally {
    await stream.close();
  }
}

for (const name of FIXTURE_CASES) {
  test(`streamed scoring equals resident scoring: fixture ${name} in 5 float16 shards`, async () => {
    const { config, params } = loadCheckpoint(join(fixtureDir(name), 'model'));
    const dir = join(tmp, name);
    await writeShardedCheckpoint(dir, config, params, 'float16', 5);
    await compareOn(dir, name, 7);
  });
}

test('streamed scoring equals resident scoring: tied embeddings, 3 layers, 7 bfloat16 shards', async () => {
  const config: NeoXConfig = {
    ...pythiaArchitecture({ numLayers: 3, hiddenSize: 32, numHeads: 4, vocabSize: 97, maxPositions: 48 }),
    tieWordEmbeddings: true,
    dtype: 'bfloat16' satisfies WeightDType,
  };
  const params: Params = randomParams(config, 3);
  const dir = join(tmp, 'tied');
  await writeShardedCheckpoint(dir, config, params, 'bfloat16', 7);
  await compareOn(dir, 'tied', 11);
});

test('a streamed checkpoint refuses a non-finite weight, naming the tensor', async () => {
  const config: NeoXConfig = {
    ...pythiaArchitecture({ numLayers: 2, hiddenSize: 16, numHeads: 2, vocabSize: 50, maxPositions: 16 }),
    dtype: 'float32',
  };
  const params = randomParams(config, 5);
  params.get('gpt_neox.layers.1.mlp.dense_4h_to_h.weight')![3] = Number.NaN;
  const dir = join(tmp, 'nan');
  await writeShardedCheckpoint(dir, config, params, 'float32', 3);
  const stream = LayerStream.open(dir);
  try {
    const scorer = await Scorer.streamed(stream);
    await assert.rejects(
      scorer.score([{ context: [1, 2], continuation: [3] }]),
      /tensor gpt_neox\.layers\.1\.mlp\.dense_4h_to_h\.weight holds NaN at element 3/,
    );
  } finally {
    await stream.close();
  }
});

test('concurrent calls on one stream wait for each other and score as the resident scorer', async () => {
  const dir = join(tmp, 'parallel-r25');
  const { config, params } = loadCheckpoint(dir);
  const groups = requests(config.vocabSize, config.maxPositions, 21);
  const want = await (await Scorer.create(config, params)).score(groups.flat(), 2);
  const stream = LayerStream.open(dir);
  try {
    const [a, b] = [await Scorer.streamed(stream), await Scorer.streamed(stream)];
    const [x, y, z] = await Promise.all([
      a.score(groups.flat(), 2),
      b.score(groups.flat(), 2),
      a.score(groups.flat(), 2),
    ]);
    for (const got of [x, y, z]) assertSame(got, want, 'concurrent');
  } finally {
    await stream.close();
  }
});
