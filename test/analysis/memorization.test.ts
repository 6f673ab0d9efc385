/**
 * Memorization scores on planted sequences: a tiny model trained on data where one sequence (the
 * canary, 65 distinct tokens) fills slot 0 of every batch and every other sample is fresh random
 * tokens. The canary must come out memorized and the random samples not, and every score must
 * equal the one computed from greedy generation by full recomputation (`forward`, argmax of the
 * last position, 32 times), which shares neither the decoder nor its KV cache.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { IndexRange, memorizationScores, sampleIndices } from '../../src/analysis/memorization.js';
import { PreshuffledDataset, PreshuffledWriter } from '../../src/data/preshuffled.js';
import { type Checkpoint, loadCheckpoint } from '../../src/model/checkpoint.js';
import type { NeoXConfig } from '../../src/model/config.js';
import { Decoder } from '../../src/model/decoder.js';
import { pythiaArchitecture } from '../../src/model/presets.js';
import { nanoRecipe, type TrainRecipe } from '../../src/train/recipes.js';
import { train } from '../../src/train/trainer.js';
import { Prng } from '../../src/util/prng.js';
import { repoRoot } from '../support/paths.js';
import { greedyByForward } from './greedy.js';

const SEQ = 64;
const BATCH = 8;
const STEPS = 120;
const config: NeoXConfig = {
  ...pythiaArchitecture({ numLayers: 2, hiddenSize: 32, numHeads: 2, vocabSize: 160, maxPositions: SEQ }),
  dtype: 'float32',
};
// The nano recipe at lr 1e-2 (its schedule decays over 256 steps; these 120 stay near the peak).
const recipe: TrainRecipe = {
  ...nanoRecipe(1e-2),
  seqLength: SEQ,
  trainBatchSize: BATCH,
  microBatchSize: BATCH,
  trainIters: STEPS,
  checkpoint: { checkpointScale: 'linear', extraSaveIters: [] },
};

const work = mkdtempSync(join(tmpdir(), 'memorization-'));
after(() => rmSync(work, { recursive: true, force: true }));
const data = join(work, 'data');
let stepDir: string;
let checkpoint: Checkpoint;

before(async () => {
  const rng = new Prng(3);
  // The canary: 65 distinct ids from 64 … 159; random samples use ids 2 … 63 only.
  const canary = rng.shuffle(Array.from({ length: 96 }, (_, i) => 64 + i)).slice(0, SEQ + 1);
  const writer = PreshuffledWriter.create(data, { vocabSize: 160, seqLength: SEQ });
  for (let s = 0; s < STEPS; s++) {
    writer.addSample(canary);
    for (let j = 1; j < BATCH; j++) writer.addSample(Array.from({ length: SEQ + 1 }, () => 2 + rng.int(62)));
  }
  await writer.finish();
  const result = await train({
    name: 'tiny',
    config,
    recipe,
    data: { prefix: data, preshuffled: true },
    outDir: join(work, 'run'),
    evalIters: 0,
    threads: 1,
  });
  stepDir = join(result.modelDir, `step${STEPS}`);
  checkpoint = loadCheckpoint(stepDir);
});

test('the canary is memorized, random samples are not, and every score matches greedy generation by forward', async () => {
  const source = PreshuffledDataset.open(data, { seqLength: SEQ });
  const decoder = await Decoder.create(checkpoint.config, checkpoint.params, { threads: 1 });
  const indices = [0, 3, 8 * 50, 8 * 50 + 5, 8 * 119, 8 * 119 + 7, 8 * 60 + 1];
  const scores = await memorizationScores(decoder, source, indices, { batchSize: 3 });
  await decoder.release();
  const samples = indices.map((k) => Array.from(source.sample(k)));
  source.close();
  const greedy = await greedyByForward(
    checkpoint.config,
    checkpoint.params,
    samples.map((s) => s.slice(0, 32)),
    32,
  );
  const expected = samples.map((s, i) => {
    let matched = 0;
    for (let t = 32; t < 64; t++) if (greedy[i]![t] === s[t]) matched++;
    return { index: indices[i]!, score: matched / 32, memorized: matched === 32 };
  });
  assert.deepEqual(scores, expected);
  for (const s of scores) {
    if (s.index % BATCH === 0) assert.equal(s.memorized, true, `canary at ${s.index}: score ${s.score}`);
    else assert.ok(s.score < 0.5, `random sample ${s.index} scored ${s.score}`);
  }
});

test('sampled indices: distinct, ascending, seeded; bad ranges are one-line errors', async () => {
  const a = sampleIndices(1000, 50, 7);
  assert.equal(new Set(a).size, 50);
  assert.deepEqual(
    a,
    [...a].sort((x, y) => x - y),
  );
  assert.deepEqual(sampleIndices(1000, 50, 7), a);
  assert.notDeepEqual(sampleIndices(1000, 50, 8), a);
  assert.deepEqual(sampleIndices(5, 9, 1), [0, 1, 2, 3, 4]);
  const big = sampleIndices(146_432_000, 20, 1);
  assert.ok(big.every((k) => k >= 0 && k < 146_432_000) && new Set(big).size === 20);

  const source = PreshuffledDataset.open(data, { seqLength: SEQ });
  const decoder = await Decoder.create(checkpoint.config, checkpoint.params, { threads: 1 });
  await assert.rejects(
    memorizationScores(decoder, source, new IndexRange(950, 961)),
    /sample 960 is out of range: the training order has 960 samples/,
  );
  await assert.rejects(
    memorizationScores(decoder, source, [0], { promptLength: 40, continuationLength: 30 }),
    /longer than a training sample \(65 tokens\)/,
  );
  await decoder.release();
  source.close();
});

test('pythia memorize reads the order from trainer_state.json; pythia poisson sees one memorized sequence per batch', () => {
  const cli = join(repoRoot, 'dist/src/cli/main.js');
  const out = join(work, 'scores.jsonl');
  const r = spawnSync(
    process.execPath,
    [cli, 'memorize', stepDir, '--sequences', '0:64', '--out', out, '--threads', '1'],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const lines = readFileSync(out, 'utf8')
    .trim()
    .split('\n')
    .map(
      (l) => JSON.parse(l) as { index: number; score: number; memorized: boolean; step: number; trained_at: number },
    );
  assert.deepEqual(
    lines.map((l) => l.index),
    Array.from({ length: 64 }, (_, i) => i),
  );
  assert.ok(
    lines.every(
      (l) =>
        l.step === STEPS && l.trained_at === Math.floor(l.index / BATCH) && l.memorized === (l.index % BATCH === 0),
    ),
  );
  assert.match(r.stderr, /64 sequences, 8 memorized/);

  const p = spawnSync(process.execPath, [cli, 'poisson', '--scores', out, '--window', String(BATCH), '--json'], {
    encoding: 'utf8',
  });
  assert.equal(p.status, 0, p.stderr);
  const test = JSON.parse(p.stdout) as {
    windows: number;
    lambda: number;
    dispersion: number;
    dof: number;
    p_value: number;
    qq: number[][];
  };
  assert.equal(test.windows, 8);
  assert.equal(test.lambda, 1);
  assert.equal(test.dispersion, 0);
  assert.equal(test.dof, 7);
  assert.equal(test.p_value, 1);
  assert.equal(test.qq.length, 8);

  const zero = spawnSync(process.execPath, [cli, 'poisson', '--scores', out, '--window', '0'], { encoding: 'utf8' });
  assert.equal(zero.status, 1);
  assert.equal(
    zero.stderr
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith('(')).length,
    1,
  );

  const sampled = spawnSync(process.execPath, [cli, 'memorize', stepDir, '--sample', '20', '--threads', '1'], {
    encoding: 'utf8',
  });
  assert.equal(sampled.status, 0, sampled.stderr);
  assert.equal(sampled.stdout.trim().split('\n').length, 20);
});
