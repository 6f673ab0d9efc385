/**
 * A cell's identity is every input that changes its numbers: a rerun with another --limit, --seed,
 * --fewshot-file or --max-gen-tokens, or another checkpoint under the same name and step, is
 * evaluated as a new cell beside the old one (and a setting that cannot change a cell's numbers
 * does not make it new); `results show` says which settings each row used; the views and the
 * report pick one cell per (model, step, task, shots) and say so; a version-1 database is refused.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { loadReportData } from '../../src/report/data.js';
import { identityKey } from '../../src/results/identity.js';
import { SCHEMA_VERSION } from '../../src/results/schema.js';
import { ResultsStore } from '../../src/results/store.js';
import { type EvalWorld, makeWorld, writeCheckpoint, writeJsonl, writeTasks } from '../eval/support.js';
import { repoRoot } from '../support/paths.js';
import { query } from './support.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'pythia-identity-'));
let world: EvalWorld;
let tasks: Record<string, string>;
let checkpoint: string;
let fewshot: string;

function pythia(...args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
}

/** `pythia eval` of the test checkpoint on two tasks at 0 and 1 shots (4 cells), with `extra` flags. */
function evaluate(db: string, ...extra: string[]) {
  const r = pythia(
    'eval',
    checkpoint,
    '--tasks',
    tasks.choice!,
    tasks.arithmetic!,
    '--shots',
    '0,1',
    '--max-gen-tokens',
    '4',
    '--threads',
    '1',
    '--db',
    db,
    '--json',
    ...extra,
  );
  assert.equal(r.status, 0, r.stderr);
  return { rows: JSON.parse(r.stdout) as Record<string, unknown>[], stderr: r.stderr };
}

before(async () => {
  world = await makeWorld(dir);
  tasks = writeTasks(dir);
  checkpoint = join(dir, 'models', 'tiny', 'step4');
  await writeCheckpoint(world, checkpoint, 1);
  fewshot = writeJsonl(join(dir, 'fewshot.jsonl'), [
    { id: 'f1', output_type: 'multiple_choice', context: 'The river flows to the', choices: ['sea', 'mat'], gold: 0 },
    { id: 'f2', output_type: 'multiple_choice', context: 'Q: What is 1 plus 1? A:', choices: ['2', '3'], gold: 0 },
  ]);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('a rerun with another --limit, --seed, --fewshot-file or --max-gen-tokens evaluates new cells beside the old', async () => {
  const db = join(dir, 'settings.duckdb');
  const base = evaluate(db);
  assert.match(base.stderr, /4 cells evaluated, 0 already there/);
  const cellsOf = (rows: Record<string, unknown>[]) => [...new Set(rows.map((r) => r.cell))].sort();
  const baseCells = cellsOf(base.rows);

  // choice has 4 items and arithmetic 3: --limit 2 changes both; --limit 4 takes every item of both.
  const limited = evaluate(db, '--limit', '2');
  assert.match(limited.stderr, /4 cells evaluated, 0 already there/);
  assert.ok(
    limited.rows.every((r) => r.n === 2),
    'the rerun prints its own numbers, over 2 items',
  );
  assert.match(evaluate(db, '--limit', '4').stderr, /0 cells evaluated, 4 already there/);
  // A seed and a few-shot file draw demonstrations: they change the 1-shot cells only.
  assert.match(evaluate(db, '--seed', '7').stderr, /2 cells evaluated, 2 already there/);
  assert.match(evaluate(db, '--fewshot-file', fewshot).stderr, /2 cells evaluated, 2 already there/);
  // The generation limit changes the generate_until task's cells only.
  assert.match(evaluate(db, '--max-gen-tokens', '2').stderr, /2 cells evaluated, 2 already there/);

  const cells = await query(
    db,
    'SELECT task, shots, seed, fewshot_sha256, item_limit, max_gen_tokens FROM cells ORDER BY ALL NULLS LAST',
  );
  assert.equal(cells.length, 4 + 4 + 2 + 2 + 2);
  const fewshotSha = (
    await query(db, 'SELECT DISTINCT fewshot_sha256 AS s FROM cells WHERE fewshot_sha256 IS NOT NULL')
  )[0]!.s;
  assert.match(String(fewshotSha), /^[0-9a-f]{64}$/);
  assert.deepEqual(
    cells.filter((c) => c.task === 'arithmetic' && c.shots === 1),
    [
      { task: 'arithmetic', shots: 1, seed: 7, fewshot_sha256: null, item_limit: null, max_gen_tokens: 4 },
      { task: 'arithmetic', shots: 1, seed: 1234, fewshot_sha256: fewshotSha, item_limit: null, max_gen_tokens: 4 },
      { task: 'arithmetic', shots: 1, seed: 1234, fewshot_sha256: null, item_limit: 2, max_gen_tokens: 4 },
      { task: 'arithmetic', shots: 1, seed: 1234, fewshot_sha256: null, item_limit: null, max_gen_tokens: 2 },
      { task: 'arithmetic', shots: 1, seed: 1234, fewshot_sha256: null, item_limit: null, max_gen_tokens: 4 },
    ],
  );
  // Settings that cannot change a cell are null: no seed at 0 shots, no generation limit for multiple choice.
  assert.deepEqual(
    cells.filter((c) => c.task === 'choice' && c.shots === 0),
    [
      { task: 'choice', shots: 0, seed: null, fewshot_sha256: null, item_limit: 2, max_gen_tokens: null },
      { task: 'choice', shots: 0, seed: null, fewshot_sha256: null, item_limit: null, max_gen_tokens: null },
    ],
  );
  // The first run's numbers are still there, unchanged, and a rerun with its settings finds them.
  const again = evaluate(db);
  assert.match(again.stderr, /0 cells evaluated, 4 already there/);
  assert.deepEqual(cellsOf(again.rows), baseCells);
  assert.deepEqual(again.rows, base.rows);
});

test('another checkpoint under the same model name and step is a new cell; the same files elsewhere are not', async () => {
  const db = join(dir, 'checkpoints.duckdb');
  const swapped = join(dir, 'swap', 'tiny', 'step4');
  cpSync(checkpoint, swapped, { recursive: true });
  assert.match(evaluate(db).stderr, /4 cells evaluated, 0 already there/);
  const copy = pythia('eval', swapped, '--tasks', tasks.choice!, '--db', db, '--threads', '1');
  assert.equal(copy.status, 0, copy.stderr);
  assert.match(copy.stderr, /0 cells evaluated, 1 already there/);

  await writeCheckpoint(world, swapped, 2);
  const other = pythia('eval', swapped, '--tasks', tasks.choice!, '--db', db, '--threads', '1', '--json');
  assert.equal(other.status, 0, other.stderr);
  assert.match(other.stderr, /1 cells evaluated, 0 already there/);
  const checkpoints = await query(db, 'SELECT model, step, sha256 FROM checkpoints ORDER BY path');
  assert.equal(checkpoints.length, 2);
  assert.deepEqual(
    checkpoints.map((c) => [c.model, c.step]),
    [
      ['tiny', 4],
      ['tiny', 4],
    ],
  );
  assert.notEqual(checkpoints[0]!.sha256, checkpoints[1]!.sha256);
  const choice = await query(
    db,
    "SELECT checkpoint_sha256 AS sha FROM cells WHERE task = 'choice' AND shots = 0 ORDER BY finished_at",
  );
  assert.deepEqual(
    choice.map((c) => c.sha),
    checkpoints.map((c) => c.sha256),
  );
});

test('results show gives each row the settings of its cell', async () => {
  const db = join(dir, 'show.duckdb');
  evaluate(db);
  evaluate(db, '--limit', '2');
  const json = pythia('results', 'show', db, '--json');
  assert.equal(json.status, 0, json.stderr);
  const rows = JSON.parse(json.stdout) as Record<string, unknown>[];
  const acc = rows.filter((r) => r.task === 'choice' && r.shots === 0 && r.metric === 'acc');
  assert.deepEqual(
    acc.map((r) => [r.item_limit, r.n, r.seed, r.max_gen_tokens, r.device, r.weights]),
    [
      [null, 4, null, null, 'cpu', 'float32'],
      [2, 2, null, null, 'cpu', 'float32'],
    ],
  );
  for (const r of acc) {
    assert.match(String(r.checkpoint_sha256), /^[0-9a-f]{64}$/);
    assert.match(String(r.tokenizer_sha256), /^[0-9a-f]{64}$/);
    assert.match(String(r.cell), /^[0-9a-f]{64}$/);
    assert.equal(r.threads, 1);
    assert.equal(r.batch_size, 16);
  }
  const text = pythia('results', 'show', db);
  assert.equal(text.status, 0, text.stderr);
  const lines = text.stdout.trim().split('\n');
  assert.match(
    lines[0]!,
    /^model +step +task +shots +metric +value +stderr +checkpoint +tokenizer +seed +limit +max_gen +fewshot +device +weights$/,
  );
  const sha = String(acc[0]!.checkpoint_sha256).slice(0, 8);
  const choiceAcc = lines.filter((l) => /^tiny +4 +choice +0 +acc /.test(l));
  assert.equal(choiceAcc.length, 2);
  assert.match(choiceAcc[0]!, new RegExp(` ${sha} +[0-9a-f]{8} +- +all +- +- +cpu +float32$`));
  assert.match(choiceAcc[1]!, new RegExp(` ${sha} +[0-9a-f]{8} +- +2 +- +- +cpu +float32$`));
});

test('the views and the report take the cell finished last of each (model, step, task, shots), and say so', async () => {
  const db = join(dir, 'report.duckdb');
  evaluate(db, '--limit', '2');
  const later = evaluate(db);
  const store = await ResultsStore.open(db, { readOnly: true });
  try {
    const data = await loadReportData(store);
    const acc = data.scores.filter((r) => r.task === 'choice' && r.metric === 'acc');
    assert.deepEqual(
      acc.map((r) => [r.shots, r.n]),
      [
        [0, 4],
        [1, 4],
      ],
    );
    const expected = later.rows.find((r) => r.task === 'choice' && r.shots === 0 && r.metric === 'acc')!;
    assert.equal(acc[0]!.value, expected.value);
    assert.deepEqual(data.notes, [
      '4 of the 4 (model, step, task, shots) cells were evaluated more than once (other settings or another checkpoint under the same name); every chart shows the evaluation finished last (pythia results show lists them all).',
    ]);
    const winobias = await store.rows('SELECT model, step, task, shots FROM winobias');
    assert.equal(winobias.length, 2, 'one row per (model, step, task, shots)');
    const scores = await store.rows("SELECT n FROM scores WHERE task = 'choice' AND metric = 'acc' ORDER BY shots");
    assert.deepEqual(scores, [{ n: 4 }, { n: 4 }]);
  } finally {
    store.close();
  }
  const page = join(dir, 'report-page');
  const report = pythia('report', dir, '--db', db, '--out', page);
  assert.equal(report.status, 0, report.stderr);
  assert.match(
    readFileSync(join(page, 'index.html'), 'utf8'),
    /<p class="how">4 of the 4 \(model, step, task, shots\) cells were evaluated more than once/,
  );
});

/** The version-1 tables (pythia-ts before schema version 2) with one finished cell. */
async function writeVersion1(path: string): Promise<void> {
  const instance = await DuckDBInstance.create(path);
  const c = await instance.connect();
  await c.run('CREATE TABLE meta (key VARCHAR NOT NULL, value VARCHAR, PRIMARY KEY (key))');
  await c.run("INSERT INTO meta VALUES ('schema_version', '1')");
  await c.run(
    `CREATE TABLE cells (model VARCHAR NOT NULL, step INTEGER NOT NULL, task VARCHAR NOT NULL, shots INTEGER NOT NULL,
      seed INTEGER NOT NULL, items INTEGER NOT NULL, seconds DOUBLE, PRIMARY KEY (model, step, task, shots))`,
  );
  await c.run("INSERT INTO cells VALUES ('tiny', 4, 'choice', 0, 1234, 4, 0.5)");
  c.closeSync();
  instance.closeSync();
}

test('a version-1 database is refused in one line that names the command rebuilding it, and left as it was', async () => {
  const db = join(dir, 'v1.duckdb');
  await writeVersion1(db);
  const before = readFileSync(db);
  const expected = new RegExp(
    `^pythia: ${db.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: schema version 1 cannot be upgraded to ${SCHEMA_VERSION}: version 1 keys a cell by model, step, task and shots alone, so the checkpoint and settings behind its numbers are unknown; move it aside and rebuild it with \`pythia eval <suite or checkpoints> --db .*v1\\.duckdb\`\\n$`,
  );
  const r = pythia('eval', checkpoint, '--tasks', tasks.choice!, '--db', db);
  assert.equal(r.status, 1);
  assert.match(r.stderr, expected);
  for (const args of [
    ['results', 'show', db],
    ['results', 'export', db, '--out', join(dir, 'v1-export')],
  ]) {
    const shown = pythia(...args);
    assert.equal(shown.status, 1);
    assert.match(shown.stderr, expected);
  }
  assert.deepEqual(readFileSync(db), before);
  assert.ok(!existsSync(`${db}.wal`));
});

test('a version-2 database upgrades in place: its studies keep their rows and keys, with no settings', async () => {
  const db = join(dir, 'v2.duckdb');
  const made = await ResultsStore.open(db);
  const identity = {
    kind: 'term_counts',
    model: null,
    step: null,
    checkpointSha256: null,
    tokenizerSha256: 't'.repeat(64),
    dataSha256: 'd'.repeat(64),
    truthSha256: null,
    sequences: null,
    sampleSeed: null,
    windowSize: null,
    promptLength: null,
    continuationLength: null,
    device: null,
    weights: null,
  } as const;
  const key = identityKey(identity);
  // The key schema version 2 gave it: the sha256 of its fields as [name, value] pairs by name.
  const v2Key = createHash('sha256')
    .update(JSON.stringify(Object.entries(identity).sort(([a], [b]) => (a < b ? -1 : 1))))
    .digest('hex');
  assert.equal(key, v2Key);
  await made.writeStudy({ ...identity, study: key, batchSize: null, threads: 1, seconds: 1 }, async () => {});
  // Version 2's studies table is version 3's without its last column.
  await made.connection.run('DROP VIEW current_studies');
  await made.connection.run('ALTER TABLE studies DROP COLUMN settings');
  await made.connection.run("UPDATE meta SET value = '2' WHERE key = 'schema_version'");
  made.close();
  const upgraded = await ResultsStore.open(db);
  assert.ok(await upgraded.hasStudy(key));
  const rows = await upgraded.rows('SELECT study, settings FROM current_studies');
  assert.deepEqual(rows, [{ study: key, settings: null }]);
  const version = await upgraded.rows("SELECT value FROM meta WHERE key = 'schema_version'");
  assert.deepEqual(version, [{ value: String(SCHEMA_VERSION) }]);
  upgraded.close();
});
