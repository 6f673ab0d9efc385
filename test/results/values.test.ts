/**
 * Values at the edges of a DOUBLE: a whole-valued number above 2^63 (the perplexity of a checkpoint
 * with wide random output weights), ±Infinity and NaN are stored as they are, read back equal, and
 * printed by `--json` as the strings "Infinity", "-Infinity" and "NaN".
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { saveCheckpoint } from '../../src/model/checkpoint.js';
import { cellIdentity, identityKey } from '../../src/results/identity.js';
import { ResultsStore } from '../../src/results/store.js';
import { type EvalWorld, makeWorld, randomParams, writeTasks } from '../eval/support.js';
import { repoRoot } from '../support/paths.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'pythia-values-'));
let world: EvalWorld;
let tasks: Record<string, string>;

function pythia(...args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
}

/** A checkpoint whose output weights are `scale` times wider than the test world's random ones. */
async function wideCheckpoint(scale: number): Promise<string> {
  const params = randomParams(world.config, 1);
  const out = params.get('embed_out.weight')!;
  for (let i = 0; i < out.length; i++) out[i]! *= scale;
  const path = join(dir, `wide${scale}`);
  await saveCheckpoint(path, world.config, params, { tokenizerPath: world.tokenizerPath });
  return path;
}

before(async () => {
  world = await makeWorld(dir);
  tasks = writeTasks(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('a perplexity above 2^63 is stored and read back as the same number', async () => {
  const db = join(dir, 'large.duckdb');
  const r = pythia('eval', await wideCheckpoint(20), '--tasks', tasks.lambada!, '--db', db, '--json');
  assert.equal(r.status, 0, r.stderr);
  const printed = JSON.parse(r.stdout).find((x: { metric: string }) => x.metric === 'perplexity');
  assert.ok(Number.isFinite(printed.value) && printed.value > 2 ** 63, `perplexity ${printed.value}`);
  assert.ok(Number.isInteger(printed.value), 'a double this large is whole-valued');
  const store = await ResultsStore.open(db, { readOnly: true });
  try {
    const [row] = await store.rows("SELECT value FROM aggregates WHERE metric = 'perplexity'");
    assert.equal(row!.value, printed.value);
  } finally {
    store.close();
  }
});

test('--json prints an infinite perplexity as "Infinity", in eval and in results show', async () => {
  const db = join(dir, 'infinite.duckdb');
  const r = pythia('eval', await wideCheckpoint(40), '--tasks', tasks.lambada!, '--db', db, '--json');
  assert.equal(r.status, 0, r.stderr);
  const perplexity = (rows: { metric: string; value: unknown }[]) => rows.find((x) => x.metric === 'perplexity');
  assert.equal(perplexity(JSON.parse(r.stdout))!.value, 'Infinity');
  const shown = pythia('results', 'show', db, '--json');
  assert.equal(shown.status, 0, shown.stderr);
  assert.equal(perplexity(JSON.parse(shown.stdout))!.value, 'Infinity');
});

test('whole-valued, infinite and NaN values keep their values in every DOUBLE column', async () => {
  const db = join(dir, 'edges.duckdb');
  const store = await ResultsStore.open(db);
  const identity = cellIdentity(
    { model: 'm', step: 1, task: 't', shots: 0 },
    { sha256: 'f'.repeat(64), outputType: 'multiple_choice', items: 1 },
    {
      checkpointSha256: 'a'.repeat(64),
      tokenizerSha256: 'b'.repeat(64),
      seed: 1234,
      fewshotSha256: null,
      limit: undefined,
      maxGenTokens: 32,
      device: 'cpu',
      batchSize: 16,
    },
  );
  const cell = { ...identity, cell: identityKey(identity), items: 1, batchSize: 16, threads: 1, seconds: 2 };
  try {
    await store.writeCell(
      cell,
      [
        {
          itemId: 'i1',
          acc: 1,
          loglikelihood: -(2 ** 70),
          choiceLoglikelihoods: [-Infinity, -3, -(2 ** 64), Number.NaN],
        },
      ],
      [
        { metric: 'perplexity', value: 2 ** 64, stderr: Infinity, n: 1 },
        { metric: 'other', value: Number.NaN, stderr: -Infinity, n: 1 },
      ],
    );
    const [item] = await store.rows('SELECT acc, loglikelihood, choice_loglikelihoods FROM item_results');
    assert.deepEqual(item, {
      acc: 1,
      loglikelihood: -(2 ** 70),
      choice_loglikelihoods: [-Infinity, -3, -(2 ** 64), Number.NaN],
    });
    assert.deepEqual(await store.rows('SELECT metric, value, stderr FROM aggregates ORDER BY metric'), [
      { metric: 'other', value: Number.NaN, stderr: -Infinity },
      { metric: 'perplexity', value: 2 ** 64, stderr: Infinity },
    ]);
  } finally {
    store.close();
  }
  const shown = pythia('results', 'show', db, '--json');
  assert.equal(shown.status, 0, shown.stderr);
  assert.deepEqual(
    JSON.parse(shown.stdout).map((x: { value: unknown; stderr: unknown }) => [x.value, x.stderr]),
    [
      ['NaN', '-Infinity'],
      [2 ** 64, 'Infinity'],
    ],
  );
});
