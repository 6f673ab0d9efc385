/**
 * `pythia eval --max-memory` end to end: a checkpoint split over float16 shards, with a budget too
 * small for its float32 weights, is scored a layer at a time, says so on stderr, and stores the
 * resident run's item results (multiple choice, last word, rolling perplexity) within 1e-6
 * relative; a generating task or a bad size is refused in one line.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ResultsStore } from '../../src/results/store.js';
import { makeWorld, randomParams, writeTasks } from '../eval/support.js';
import { repoRoot } from '../support/paths.js';
import { writeShardedCheckpoint } from './sharded-checkpoint.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'pythia-eval-stream-'));
let checkpoint: string;
let tasks: Record<string, string>;

function pythia(...args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
}

async function itemResults(db: string): Promise<Record<string, unknown>[]> {
  const store = await ResultsStore.open(db, { readOnly: true });
  try {
    return await store.rows(
      'SELECT c.task, r.item_id, r.acc, r.acc_norm, r.loglikelihood, r.is_greedy, r.choice_loglikelihoods, r.tokens ' +
        'FROM item_results r JOIN cells c USING (cell) ORDER BY c.task, r.item_id',
    );
  } finally {
    store.close();
  }
}

before(async () => {
  const world = await makeWorld(dir);
  checkpoint = join(dir, 'tiny', 'step0');
  await writeShardedCheckpoint(
    checkpoint,
    { ...world.config, dtype: 'float16' },
    randomParams(world.config, 9),
    'float16',
    4,
    world.tokenizerPath,
  );
  tasks = writeTasks(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const close = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));

test('eval with a budget below the float32 weights streams and stores the resident results', async () => {
  const scoring = ['--tasks', tasks.choice!, tasks.lambada!, tasks.rolling!, '--threads', '1', '--batch-size', '2'];
  const resident = pythia('eval', checkpoint, '--db', join(dir, 'resident.duckdb'), ...scoring);
  assert.equal(resident.status, 0, resident.stderr);
  assert.doesNotMatch(resident.stderr, /streaming/);
  const streamed = pythia(
    'eval',
    checkpoint,
    '--db',
    join(dir, 'streamed.duckdb'),
    '--max-memory',
    '100KB',
    ...scoring,
  );
  assert.equal(streamed.status, 0, streamed.stderr);
  assert.match(
    streamed.stderr,
    /float32 weights of .* exceed 70% of --max-memory 97\.7 KiB: streaming one layer at a time/,
  );
  const want = await itemResults(join(dir, 'resident.duckdb'));
  const got = await itemResults(join(dir, 'streamed.duckdb'));
  assert.equal(got.length, want.length);
  assert.ok(want.some((r) => r.task === 'rolling') && want.some((r) => r.task === 'choice'));
  got.forEach((g, i) => {
    const w = want[i]!;
    const label = `${w.task} ${w.item_id}`;
    for (const key of ['task', 'item_id', 'acc', 'acc_norm', 'is_greedy', 'tokens'])
      assert.deepEqual(g[key], w[key], `${label} ${key}`);
    if (w.loglikelihood !== null) assert.ok(close(g.loglikelihood as number, w.loglikelihood as number), label);
    const choices = (w.choice_loglikelihoods ?? []) as number[];
    choices.forEach((c, k) => {
      assert.ok(close((g.choice_loglikelihoods as number[])[k]!, c), `${label} choice ${k}`);
    });
  });
});

test('eval refuses a generating task on a streamed checkpoint, and a size it cannot read, in one line', () => {
  const r = pythia(
    'eval',
    checkpoint,
    '--db',
    join(dir, 'gen.duckdb'),
    '--tasks',
    tasks.arithmetic!,
    '--max-memory',
    '100KB',
  );
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /task arithmetic generates, which needs the checkpoint resident, but tiny step 0 streams/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  const bad = pythia('eval', checkpoint, '--db', join(dir, 'bad.duckdb'), '--max-memory', 'lots');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--max-memory.*expected a size such as 8GB/);
});
