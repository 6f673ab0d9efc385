/**
 * Where `pythia eval` keeps its results without --db: beside one suite folder as before, else in
 * ./results.duckdb of the working directory, said in one line; a second run there resumes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ResultsStore } from '../../src/results/store.js';
import { makeWorld, writeCheckpoint, writeSuite, writeTasks } from '../eval/support.js';
import { repoRoot } from '../support/paths.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'pythia-eval-db-'));
let checkpoint: string;
let choice: string;
let suite: string;

before(async () => {
  const world = await makeWorld(dir);
  checkpoint = join(dir, 'lone');
  await writeCheckpoint(world, checkpoint, 7);
  choice = writeTasks(dir).choice!;
  suite = await writeSuite(world, ['tiny'], [0]);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function pythia(cwd: string, ...args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd });
}

test('pythia eval <checkpoint> --tasks … without --db prints its table and keeps the results in ./results.duckdb, saying so', async () => {
  const cwd = join(dir, 'work');
  mkdirSync(cwd);
  const first = pythia(cwd, 'eval', checkpoint, '--tasks', choice, '--threads', '1');
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stdout, /^model\s+step\s+task\s+shots\s+metric\s+value\s+stderr\n/);
  assert.match(first.stdout, /\nlone\s+-1\s+choice\s+0\s+acc\s+\d\.\d{4}/);
  const said = first.stderr.split('\n').filter((l) => l.includes('--db'));
  assert.deepEqual(said, ['pythia eval: no --db given and no suite folder; results kept in ./results.duckdb']);
  assert.ok(existsSync(join(cwd, 'results.duckdb')));

  const store = await ResultsStore.open(join(cwd, 'results.duckdb'), { readOnly: true });
  try {
    const rows = await store.rows('SELECT model, step, task, metric, n FROM aggregates ORDER BY metric');
    assert.deepEqual(
      rows.map((r) => `${r.model} ${r.step} ${r.task} ${r.metric} ${r.n}`),
      ['lone -1 choice acc 4', 'lone -1 choice acc_norm 4'],
    );
  } finally {
    store.close();
  }

  // The same command again finds its cells there.
  const again = pythia(cwd, 'eval', checkpoint, '--tasks', choice, '--threads', '1');
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /0 cells evaluated, 1 already there; results in results\.duckdb/);
});

test('pythia eval on one suite folder still keeps its results beside the suite, and --db wins over both', () => {
  const cwd = join(dir, 'elsewhere');
  mkdirSync(cwd);
  const r = pythia(cwd, 'eval', suite, '--tasks', 'choice', '--threads', '1');
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /no --db given/);
  assert.ok(existsSync(join(suite, 'results.duckdb')));
  const named = pythia(cwd, 'eval', checkpoint, '--tasks', choice, '--threads', '1', '--db', 'named.duckdb');
  assert.equal(named.status, 0, named.stderr);
  assert.doesNotMatch(named.stderr, /no --db given/);
  assert.ok(existsSync(join(cwd, 'named.duckdb')));
  assert.ok(!existsSync(join(cwd, 'results.duckdb')));
});

test('a refused run without --db is still one line, and leaves no database behind', () => {
  const cwd = join(dir, 'refused');
  mkdirSync(cwd);
  const r = pythia(cwd, 'eval', checkpoint, '--tasks', join(dir, 'nope.jsonl'), '--threads', '1');
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^pythia: /);
  assert.ok(!existsSync(join(cwd, 'results.duckdb')));
});
