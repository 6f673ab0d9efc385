/**
 * `pythia eval --weights int8`: its cells are other cells than float32's (the weights are part of a
 * cell's identity), said on stderr, resumed like any other; refused with one line off the CPU.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readConfig } from '../../src/model/checkpoint.js';
import { int8WeightBytes } from '../../src/model/int8.js';
import { float32WeightBytes, RESIDENT_SHARE } from '../../src/model/memory-budget.js';
import { makeWorld, writeCheckpoint, writeTasks } from '../eval/support.js';
import { query } from '../results/support.js';
import { repoRoot } from '../support/paths.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'pythia-eval-int8-'));
let checkpoint: string;
let tasks: Record<string, string>;

before(async () => {
  const world = await makeWorld(dir);
  checkpoint = join(dir, 'lone');
  await writeCheckpoint(world, checkpoint, 7);
  tasks = writeTasks(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function pythia(...args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd: dir });
}

test('float32 and int8 cells of one checkpoint and task are both kept, each resumed by its own run', async () => {
  const db = join(dir, 'r.duckdb');
  const common = ['eval', checkpoint, '--tasks', tasks.choice!, tasks.arithmetic!, '--threads', '1', '--db', db];
  const float = pythia(...common);
  assert.equal(float.status, 0, float.stderr);
  assert.doesNotMatch(float.stderr, /int8 weights/);
  const int8 = pythia(...common, '--weights', 'int8');
  assert.equal(int8.status, 0, int8.stderr);
  assert.match(
    int8.stderr,
    /^pythia eval: int8 weights: every linear layer and the LM head quantized per output channel/m,
  );
  assert.match(int8.stderr, /2 cells evaluated, 0 already there/);
  const again = pythia(...common, '--weights', 'int8');
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /0 cells evaluated, 2 already there/);
  const rows = await query(db, 'SELECT task, weights FROM cells ORDER BY task, weights');
  assert.deepEqual(
    rows.map((r) => `${r.task} ${r.weights}`),
    ['arithmetic float32', 'arithmetic int8', 'choice float32', 'choice int8'],
  );
});

test('an int8 cell is identified by its batch size too (activation scales are per batch), a float32 cell is not', async () => {
  const db = join(dir, 'batches.duckdb');
  const common = ['eval', checkpoint, '--tasks', tasks.choice!, '--threads', '1', '--db', db];
  for (const [weights, batch, evaluated] of [
    ['int8', '16', 1],
    ['int8', '2', 1],
    ['int8', '2', 0],
    ['float32', '16', 1],
    ['float32', '2', 0],
  ] as const) {
    const r = pythia(...common, '--weights', weights, '--batch-size', batch);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`${evaluated} cells? evaluated`), `${weights} batch ${batch}`);
  }
});

test('a budget that holds int8 weights and not float32 ones: int8 cells run resident, generation too, with the same results', async () => {
  const config = readConfig(checkpoint);
  const maxMemory = Math.ceil(int8WeightBytes(config) / RESIDENT_SHARE) + 1;
  assert.ok(float32WeightBytes(config) > RESIDENT_SHARE * maxMemory);
  const values = (db: string) =>
    query(
      db,
      'SELECT c.task, c.weights, a.metric, a.value FROM aggregates a JOIN cells c USING (cell) ORDER BY c.task, a.metric',
    );
  const common = ['eval', checkpoint, '--tasks', tasks.choice!, tasks.arithmetic!, '--threads', '1'];
  const roomy = join(dir, 'roomy.duckdb');
  assert.equal(pythia(...common, '--weights', 'int8', '--db', roomy).status, 0);
  const tight = join(dir, 'tight.duckdb');
  const int8 = pythia(...common, '--weights', 'int8', '--max-memory', String(maxMemory), '--db', tight);
  assert.equal(int8.status, 0, int8.stderr);
  assert.doesNotMatch(int8.stderr, /stream/);
  const expected = await values(roomy);
  assert.ok(expected.length >= 2);
  assert.deepEqual(await values(tight), expected);
  // float32 weights under the same budget stream, and a streamed checkpoint cannot generate.
  const float = pythia(...common, '--max-memory', String(maxMemory), '--db', join(dir, 'float.duckdb'));
  assert.equal(float.status, 1);
  assert.match(float.stderr, /task arithmetic generates, which needs the checkpoint resident/);
  // int8 weights that do not fit either are refused before anything runs: int8 does not stream.
  const below = String(Math.floor(RESIDENT_SHARE * maxMemory) - 1);
  const refused = pythia(...common, '--weights', 'int8', '--max-memory', below, '--db', join(dir, 'none.duckdb'));
  assert.equal(refused.status, 1);
  assert.match(
    refused.stderr,
    /^pythia: --weights int8 needs the int8 weights resident, but .* streams \(its int8 weights of/m,
  );
});

test('--weights int8 off the CPU, or an unknown format, is refused in one line', () => {
  const gpu = pythia('eval', checkpoint, '--tasks', tasks.choice!, '--weights', 'int8', '--device', 'webgpu');
  assert.equal(gpu.status, 1);
  assert.equal(
    gpu.stderr.trim(),
    "pythia: --weights int8 runs on the CPU only (onnxruntime's DynamicQuantizeMatMul), not webgpu",
  );
  const unknown = pythia('eval', checkpoint, '--tasks', tasks.choice!, '--weights', 'int4');
  assert.notEqual(unknown.status, 0);
  assert.match(unknown.stderr, /--weights <format>.*expected one of float32, int8/);
});
