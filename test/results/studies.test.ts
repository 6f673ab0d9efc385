/**
 * A case study's run at a checkpoint is identified like a cell: by the checkpoint's content, the
 * training data and the study's settings. A rerun with the same inputs is skipped; one with other
 * settings, or at a checkpoint whose weights changed, is stored beside the old run, and the report
 * draws the run finished last and says so.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadReportData } from '../../src/report/data.js';
import { TABLES } from '../../src/results/schema.js';
import { ResultsStore } from '../../src/results/store.js';
import { repoRoot } from '../support/paths.js';
import { query } from './support.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'pythia-studies-'));
const synth = join(dir, 'synth');
const trained = join(dir, 'suite');

function ok(...args: string[]): string {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, `pythia ${args.join(' ')}\n${r.stderr}`);
  return r.stderr;
}

/** The case studies (and the arithmetic cells, whose terms are counted) of a suite into its own results.duckdb. */
function studies(suite: string, sequences: number): string {
  return ok(
    'eval',
    suite,
    '--tasks',
    'arithmetic',
    '--limit',
    '4',
    '--threads',
    '1',
    '--memorization',
    String(sequences),
    '--window',
    '4',
    '--canaries',
    '--term-counts',
  );
}

before(() => {
  ok('synth', '--out', synth, '--tokens', '20000', '--vocab-size', '512');
  // 64 tokens per sample: room for memorization's 32-token prompt and 32-token continuation.
  ok(
    'suite',
    '--preset',
    'nano',
    '--models',
    'nano-25k',
    '--data',
    join(synth, 'data/corpus_text_document'),
    '--vocab-file',
    join(synth, 'tokenizer.json'),
    '--out',
    trained,
    '--seq-length',
    '64',
    '--train-batch-size',
    '4',
    '--train-iters',
    '4',
    '--checkpoint-factor',
    '2',
    '--extra-save-iters',
    '0,1',
    '--eval-iters',
    '1',
    '--threads',
    '1',
  );
});
after(() => rmSync(dir, { recursive: true, force: true }));

const KINDS = 'SELECT kind, model, step FROM studies ORDER BY kind, step, finished_at';

test('a rerun skips the studies it has, and runs again those whose settings changed', async () => {
  const suite = join(dir, 'settings');
  cpSync(trained, suite, { recursive: true });
  const db = join(suite, 'results.duckdb');
  studies(suite, 16);
  const first = await query(db, KINDS);
  const at = (kind: string, steps: number[]) => steps.map((step) => ({ kind, model: 'nano-25k', step }));
  assert.deepEqual(first, [
    ...at('canaries', [0, 1, 2, 4]),
    ...at('memorization', [1, 2, 4]),
    { kind: 'term_counts', model: null, step: null },
  ]);
  const again = studies(suite, 16);
  assert.doesNotMatch(again, /memorization:|canaries:|term-counts/);
  assert.deepEqual(await query(db, KINDS), first);

  // Fewer sequences: a new memorization run at each step beside the old; canaries and term counts do not depend on it.
  studies(suite, 8);
  assert.deepEqual(await query(db, KINDS), [
    ...at('canaries', [0, 1, 2, 4]),
    ...at('memorization', [1, 1, 2, 2, 4, 4]),
    { kind: 'term_counts', model: null, step: null },
  ]);
  const scored = await query(
    db,
    'SELECT s.sequences, m.step, count(*)::INTEGER AS n FROM memorization m JOIN studies s USING (study) GROUP BY ALL ORDER BY ALL',
  );
  // Step 1 has trained on 4 sequences, step 2 on 8, step 4 on 16.
  assert.deepEqual(scored, [
    { sequences: 8, step: 1, n: 4 },
    { sequences: 8, step: 2, n: 8 },
    { sequences: 8, step: 4, n: 8 },
    { sequences: 16, step: 1, n: 4 },
    { sequences: 16, step: 2, n: 8 },
    { sequences: 16, step: 4, n: 16 },
  ]);
  const store = await ResultsStore.open(db, { readOnly: true });
  try {
    const data = await loadReportData(store);
    assert.deepEqual(
      data.studies.memorizedFraction.map((r) => [r.step, r.scored]),
      [
        [1, 4],
        [2, 8],
        [4, 8],
      ],
      'the run finished last',
    );
    assert.ok(
      data.notes.some((n) => /^3 case studies were run more than once at one checkpoint/.test(n)),
      data.notes.join('\n'),
    );
  } finally {
    store.close();
  }
});

test('a checkpoint whose weights changed under the same name and step is studied again', async () => {
  const suite = join(dir, 'changed');
  cpSync(trained, suite, { recursive: true });
  const db = join(suite, 'results.duckdb');
  studies(suite, 16);
  const before = await query(db, KINDS);
  copyFileSync(join(suite, 'nano-25k/step2/model.safetensors'), join(suite, 'nano-25k/step4/model.safetensors'));
  const stderr = studies(suite, 16);
  assert.match(stderr, /1 cells evaluated, 3 already there/);
  const after = await query(db, KINDS);
  assert.deepEqual(
    after.filter((r) => !before.some((b) => JSON.stringify(b) === JSON.stringify(r))),
    [],
    'every earlier study is kept',
  );
  assert.deepEqual(
    await query(db, 'SELECT kind, step, count(*)::INTEGER AS n FROM studies GROUP BY ALL HAVING n > 1 ORDER BY ALL'),
    [
      { kind: 'canaries', step: 4, n: 2 },
      { kind: 'memorization', step: 4, n: 2 },
    ],
  );
});

/** Every row of every table but the columns that may differ between runs of the same work. */
async function contents(db: string): Promise<Record<string, unknown[]>> {
  const store = await ResultsStore.open(db, { readOnly: true });
  try {
    const out: Record<string, unknown[]> = {};
    for (const t of TABLES) {
      const columns = t.columns.filter((c) => !(t.volatile ?? []).includes(c) && c !== 'path');
      out[t.name] = await store.rows(`SELECT ${columns.join(', ')} FROM ${t.name} ORDER BY ALL`);
    }
    return out;
  } finally {
    store.close();
  }
}

test('studies are cells of the grid: two shards, merged, hold what one run holds (term counts too); --studies and the shorthands agree', async () => {
  const suite = join(dir, 'shards');
  cpSync(trained, suite, { recursive: true });
  const whole = join(dir, 'whole.duckdb');
  const common = ['eval', suite, '--tasks', 'arithmetic', '--limit', '4', '--threads', '1', '--window', '4'];
  ok(...common, '--memorization', '8', '--canaries', '--term-counts', '--db', whole);
  const shards = [0, 1].map((i) => {
    const db = join(dir, `shard${i}.duckdb`);
    const stderr = ok(
      ...common,
      '--studies',
      'canaries,term-counts',
      '--memorization',
      '8',
      '--shard',
      `${i}/2`,
      '--db',
      db,
    );
    // Term counts are counted on both shards, each at its share of the steps (0, 1, 2, 4).
    assert.match(stderr, /term-counts at 2 steps/);
    return db;
  });
  const merged = join(dir, 'merged.duckdb');
  ok('results', 'merge', ...shards, '--out', merged);
  const wholeRows = await contents(whole);
  assert.deepEqual(await contents(merged), wholeRows);
  for (const t of ['memorization', 'canary_memorization', 'term_counts']) assert.ok(wholeRows[t]!.length > 0, t);
});

test('--studies with an unknown name is refused as any bad argument is, naming the studies there are', () => {
  const r = spawnSync(process.execPath, [cli, 'eval', trained, '--studies', 'memorization,canary'], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 1);
  assert.match(
    r.stderr.split('\n')[0]!,
    /^error: option '--studies <list>' argument 'memorization,canary' is invalid\. unknown study canary \(studies: canaries, memorization, term-counts, logit-lens, tuned-lens, heads, icl, token-curves, weights, attention\)\.$/,
  );
});

test('heads and icl at a suite checkpoint trained on 64-token samples: fitted to that length, the score on its validation batches', async () => {
  const suite = join(dir, 'inside');
  cpSync(trained, suite, { recursive: true });
  const db = join(suite, 'results.duckdb');
  ok('eval', suite, '--tasks', 'arithmetic', '--limit', '1', '--threads', '1', '--steps', '4', '--heads', '--icl');
  const rows = await query(
    db,
    "SELECT kind, data_sha256, settings FROM studies WHERE kind IN ('heads', 'icl') ORDER BY kind",
  );
  const settings = rows.map((r) => JSON.parse(r.settings as string));
  // max_position_embeddings is 128, but the model trained on 64 positions: 2 × 31 tokens, positions 2 and 16.
  assert.deepEqual(settings[0], { context: 64, length: 31, tokenLow: 100, tokenHigh: 512 });
  assert.deepEqual(
    { ...settings[1], textRows: undefined },
    { ...settings[0], earlyPosition: 2, latePosition: 16, text: 'held-out', textRows: undefined },
  );
  assert.ok(settings[1].textRows >= 1);
  assert.match(rows[1]!.data_sha256 as string, /^[0-9a-f]{64}$/);
  assert.equal((await query(db, 'SELECT count(*)::INTEGER AS n FROM head_scores'))[0]!.n, 2 * 2);
});
