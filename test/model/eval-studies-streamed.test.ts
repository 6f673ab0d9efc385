/**
 * `pythia eval` with the studies that only score or read activations (logit lens, heads, icl,
 * token curves, attention) on a checkpoint streamed by `--max-memory`: every table holds the
 * resident run's rows, numbers within 1e-6 relative; a study that needs every weight (weights,
 * memorization) is refused in one line before anything runs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { content } from '../results/support.js';
import { cli, type TinySuite, trainTinySuite } from '../support/tiny-suite.js';

const dir = mkdtempSync(join(tmpdir(), 'pythia-eval-studies-stream-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let tiny: TinySuite;
before(() => {
  tiny = trainTinySuite(dir);
});

const STUDIES = ['--logit-lens', '--heads', '--icl', '--token-curves', '--attention', '--held-out-rows', '2'];

/** `pythia eval` of nano-25k step 4 on two winobias items, into `db`. */
function evaluate(db: string, ...extra: string[]) {
  const tasks = ['--tasks', 'winobias', '--task-dir', join(dir, 'synth', 'tasks'), '--limit', '2'];
  return spawnSync(process.execPath, [cli, 'eval', tiny.step(4), ...tasks, '--threads', '1', '--db', db, ...extra], {
    encoding: 'utf8',
  });
}

function assertClose(got: unknown, want: unknown, path: string): void {
  if (typeof want === 'number' && typeof got === 'number') {
    if (got === want || (Number.isNaN(got) && Number.isNaN(want))) return;
    assert.ok(Math.abs(got - want) <= 1e-6 * Math.max(1, Math.abs(want)), `${path}: ${got} vs ${want}`);
  } else if (Array.isArray(want)) {
    assert.ok(Array.isArray(got), path);
    assert.equal((got as unknown[]).length, want.length, path);
    want.forEach((w, i) => {
      assertClose((got as unknown[])[i], w, `${path}[${i}]`);
    });
  } else if (want !== null && typeof want === 'object' && !(want instanceof Date)) {
    for (const [k, v] of Object.entries(want)) assertClose((got as Record<string, unknown>)[k], v, `${path}.${k}`);
  } else {
    assert.deepEqual(got, want, path);
  }
}

test('the scoring and activation studies stream and record the resident rows', async () => {
  const resident = evaluate(join(dir, 'resident.duckdb'), ...STUDIES);
  assert.equal(resident.status, 0, resident.stderr);
  assert.doesNotMatch(resident.stderr, /streaming/);
  const streamed = evaluate(join(dir, 'streamed.duckdb'), ...STUDIES, '--max-memory', '10KB');
  assert.equal(streamed.status, 0, streamed.stderr);
  assert.match(
    streamed.stderr,
    /nano-25k step 4: float32 weights of .* exceed 70% of --max-memory .*: streaming one layer at a time/,
  );
  const want = await content(join(dir, 'resident.duckdb'));
  const got = await content(join(dir, 'streamed.duckdb'));
  for (const table of ['lens_layers', 'head_scores', 'item_results']) assert.ok(want[table]!.length > 0, table);
  for (const [table, rows] of Object.entries(want)) {
    assert.equal(got[table]!.length, rows.length, `${table}: rows`);
    rows.forEach((row, i) => {
      assertClose(got[table]![i], row, `${table}[${i}]`);
    });
  }
});

test('a study that needs every weight is refused on a streamed checkpoint, before anything runs', () => {
  const r = evaluate(join(dir, 'weights.duckdb'), '--weight-changes', '--max-memory', '10KB');
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /the weights study needs the checkpoint resident, but nano-25k step 4 streams/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
});
