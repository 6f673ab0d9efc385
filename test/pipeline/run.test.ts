/**
 * `pythia run` end to end on a reduced pipeline (a small corpus, one size, a few steps): every stage
 * joins the next (synth → suite with its intervention sibling → eval with the case studies →
 * report), a second run skips all finished work, and so does a run of the run folder moved
 * elsewhere, started from another directory.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ResultsStore } from '../../src/results/store.js';
import { repoRoot } from '../support/paths.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const root = mkdtempSync(join(tmpdir(), 'pythia-run-'));
const out = join(root, 'runs', 'default');
after(() => rmSync(root, { recursive: true, force: true }));

const OPTIONS = [
  '--synth-documents',
  '400',
  '--models',
  'nano-25k',
  '--train-iters',
  '8',
  '--train-batch-size',
  '4',
  '--seq-length',
  '64',
  '--checkpoint-factor',
  '4',
  '--extra-save-iters',
  '0,1,2',
  '--intervention-from',
  '0.5',
  '--limit',
  '8',
  '--memorization',
  '8',
  '--window',
  '4',
  '--threads',
  '1',
];
const ARGS = ['run', '--out', out, ...OPTIONS];

function pythia(args: string[], cwd?: string) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd });
}

test('pythia run: synth, suite with its intervention sibling, eval with case studies, report; then nothing left to do', async () => {
  const first = pythia(ARGS);
  assert.equal(first.status, 0, first.stderr);
  const report = join(out, 'suite', 'report', 'index.html');
  assert.equal(first.stdout.trim(), report);
  assert.ok(existsSync(report));
  assert.match(
    first.stderr,
    /wall time per stage:\n {2}synth +\S+\n {2}train +\S+\n {2}eval +\S+\n {2}report +\S+\n {2}total/,
  );
  const record = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
  assert.deepEqual(
    record.stages.map((s: { stage: string; status: string }) => `${s.stage}:${s.status}`),
    ['synth:done', 'train:done', 'eval:done', 'report:done'],
  );

  const store = await ResultsStore.open(join(out, 'suite', 'results.duckdb'), { readOnly: true });
  try {
    const models = await store.rows('SELECT model, run, baseline FROM models ORDER BY model');
    assert.deepEqual(models, [
      { model: 'nano-25k', run: 'baseline', baseline: null },
      { model: 'nano-25k-intervention', run: 'intervention', baseline: 'nano-25k' },
    ]);
    const tasks = (await store.rows('SELECT DISTINCT task FROM cells ORDER BY task')).map((r) => r.task);
    assert.deepEqual(tasks, ['arithmetic', 'crows_pairs', 'lambada', 'qa', 'winobias']);
    const memorized = await store.rows('SELECT DISTINCT model FROM memorization ORDER BY model');
    assert.equal(memorized.length, 2);
    // Each window of 4 holds the scored and memorized sequences of the memorization table.
    const numbers = (rows: Record<string, unknown>[]) => rows.map((r) => Object.values(r).map(Number));
    assert.deepEqual(
      numbers(
        await store.rows(
          'SELECT step, window_index, first_index, scored, memorized FROM memorization_windows ORDER BY model, step, window_index',
        ),
      ),
      numbers(
        await store.rows(`SELECT step, sample_index // 4, sample_index // 4 * 4, count(*), count(*) FILTER (WHERE memorized)
          FROM memorization GROUP BY model, step, sample_index // 4 ORDER BY model, step, sample_index // 4`),
      ),
    );
    assert.ok(((await store.rows('SELECT count(*) AS n FROM canary_memorization'))[0]!.n as number) > 0);
    assert.ok(
      ((await store.rows('SELECT count(*) AS n FROM term_counts WHERE step = 8 AND count > 0'))[0]!.n as number) > 0,
    );
    assert.deepEqual(
      (await store.rows('SELECT DISTINCT model FROM attention_tokens ORDER BY model')).map((r) => r.model),
      ['nano-25k', 'nano-25k-intervention'],
      'the attention study at every checkpoint',
    );
    assert.ok(((await store.rows('SELECT count(*) AS n FROM training_log'))[0]!.n as number) >= 8);
    assert.ok(
      ((await store.rows('SELECT count(*) AS n FROM training_log WHERE val_loss IS NOT NULL'))[0]!.n as number) > 0,
      'validation loss at the checkpoints',
    );
  } finally {
    store.close();
  }
  const html = readFileSync(report, 'utf8');
  assert.match(html, /wall time/i);

  const again = pythia(ARGS);
  assert.equal(again.status, 0, again.stderr);
  const second = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
  assert.equal(second.stages[0].status, 'skipped');
  assert.match(again.stderr, /0 cells evaluated, \d+ already there/);

  // Moved as a whole and run from elsewhere, without the training stage: the suite.json written
  // before the move leads to the moved corpus's tasks, whose cells are all there.
  const moved = join(root, 'moved', 'default');
  mkdirSync(join(root, 'moved'));
  renameSync(out, moved);
  const elsewhere = join(root, 'elsewhere');
  mkdirSync(elsewhere);
  const third = pythia(['run', '--out', moved, '--skip-train', ...OPTIONS], elsewhere);
  assert.equal(third.status, 0, third.stderr);
  assert.equal(third.stdout.trim(), join(moved, 'suite', 'report', 'index.html'));
  assert.match(third.stderr, /0 cells evaluated, \d+ already there/);
  assert.equal(JSON.parse(readFileSync(join(moved, 'run.json'), 'utf8')).report, 'suite/report/index.html');
});
