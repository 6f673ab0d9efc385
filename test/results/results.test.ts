/**
 * The results database end to end through `pythia eval`: a grid over a suite, resumption after a
 * SIGKILL in the middle of a cell, shards merged back into the unsharded result row for row, conflicting merges refused,
 * newer schemas refused, training logs loaded, and tables exported.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { EvaluateSummary } from '../../src/results/evaluate.js';
import { SCHEMA_VERSION, TABLES } from '../../src/results/schema.js';
import { ResultsStore, type Row } from '../../src/results/store.js';
import { makeWorld, writeSuite } from '../eval/support.js';
import { repoRoot } from '../support/paths.js';
import { content } from './support.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'pythia-results-'));
let suite: string;
const GRID = ['--shots', '0,1', '--max-gen-tokens', '4', '--threads', '1'];

function pythia(...args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
}

before(async () => {
  const world = await makeWorld(dir);
  suite = await writeSuite(world, ['tiny-a', 'tiny-b'], [0, 4]);
  writeFileSync(
    join(suite, 'tiny-a', 'log.jsonl'),
    '{"step":0,"val_loss":5.5}\n{"step":1,"loss":5.4,"lr":0.001,"grad_norm":1.5}\n',
  );
  const r = pythia('eval', suite, '--db', join(dir, 'full.duckdb'), ...GRID);
  assert.equal(r.status, 0, r.stderr);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('eval fills every cell of the grid with items and aggregates, and the training log beside them', async () => {
  const c = await content(join(dir, 'full.duckdb'));
  // 2 models x 2 steps x (3 tasks x 2 shot counts + rolling at 0 shots only).
  assert.equal(c.cells!.length, 4 * 7);
  assert.equal(c.item_results!.length, 4 * (2 * (4 + 3 + 3) + 2));
  assert.deepEqual([...new Set(c.aggregates!.map((r) => `${r.task}:${r.metric}`))].sort(), [
    'arithmetic:exact_match',
    'choice:acc',
    'choice:acc_norm',
    'lambada:acc',
    'lambada:perplexity',
    'rolling:bits_per_byte',
    'rolling:byte_perplexity',
    'rolling:word_perplexity',
  ]);
  assert.deepEqual(c.training_log, [
    { model: 'tiny-a', step: 0, loss: null, val_loss: 5.5, lr: null, grad_norm: null },
    { model: 'tiny-a', step: 1, loss: 5.4, val_loss: null, lr: 0.001, grad_norm: 1.5 },
  ]);
  assert.deepEqual(
    c.models!.map((m) => [m.model, m.run, m.layers]),
    [
      ['tiny-a', 'baseline', 2],
      ['tiny-b', 'baseline', 2],
    ],
  );
  assert.equal(c.task_items!.filter((r) => r.task === 'choice').length, 4);
  assert.deepEqual(c.item_terms, [
    { task: 'arithmetic', item_id: 'a1', term: '2' },
    { task: 'arithmetic', item_id: 'a2', term: '4' },
    { task: 'arithmetic', item_id: 'a3', term: '2' },
  ]);
  const winobias = await (async () => {
    const store = await ResultsStore.open(join(dir, 'full.duckdb'), { readOnly: true });
    try {
      return await store.rows('SELECT * FROM winobias ORDER BY model, step, shots');
    } finally {
      store.close();
    }
  })();
  assert.equal(winobias.length, 8);
  for (const w of winobias)
    assert.ok(
      Math.abs((w.pro_accuracy as number) + (w.anti_accuracy as number) - 1) < 1e-12,
      'pro and anti items share their choices',
    );
});

test('a second run skips every finished cell', () => {
  const r = pythia('eval', suite, '--db', join(dir, 'full.duckdb'), ...GRID);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /0 cells evaluated, 28 already there/);
});

test('shards 0/3, 1/3, 2/3 merged equal the unsharded run row for row', async () => {
  const shards = [0, 1, 2].map((i) => join(dir, `shard${i}.duckdb`));
  for (const [i, db] of shards.entries()) {
    const r = pythia('eval', suite, '--db', db, '--shard', `${i}/3`, ...GRID);
    assert.equal(r.status, 0, r.stderr);
  }
  const cellCounts = await Promise.all(shards.map(async (db) => (await content(db)).cells!.length));
  assert.deepEqual(cellCounts, [10, 9, 9]);
  const merged = join(dir, 'merged.duckdb');
  const r = pythia('results', 'merge', ...shards, '--out', merged);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(await content(merged), await content(join(dir, 'full.duckdb')));
});

test('merging refuses rows that conflict, and a database from a newer schema', async () => {
  const changed = join(dir, 'changed.duckdb');
  copyFileSync(join(dir, 'full.duckdb'), changed);
  const store = await ResultsStore.open(changed);
  await store.connection.run(
    "UPDATE aggregates SET value = value + 0.5 WHERE model = 'tiny-b' AND step = 4 AND task = 'choice' AND shots = 1 AND metric = 'acc'",
  );
  await store.connection.run("UPDATE meta SET value = '99' WHERE key = 'schema_version'");
  store.close();
  const newer = pythia('results', 'merge', join(dir, 'full.duckdb'), changed, '--out', join(dir, 'never.duckdb'));
  assert.equal(newer.status, 1);
  assert.match(
    newer.stderr,
    new RegExp(
      `^pythia: .*changed\\.duckdb: meta\\.schema_version: 99 is newer than this pythia-ts understands \\(${SCHEMA_VERSION}\\)`,
    ),
  );
  const fix = await ResultsStore.open(changed, { readOnly: false }).catch((e: Error) => e);
  assert.ok(fix instanceof Error, 'a newer database is refused for writing too');

  const conflicting = join(dir, 'conflicting.duckdb');
  copyFileSync(join(dir, 'full.duckdb'), conflicting);
  const s2 = await ResultsStore.open(conflicting);
  await s2.connection.run(
    "UPDATE aggregates SET value = value + 0.5 WHERE model = 'tiny-b' AND step = 4 AND task = 'choice' AND shots = 1 AND metric = 'acc'",
  );
  s2.close();
  const r = pythia('results', 'merge', join(dir, 'full.duckdb'), conflicting, '--out', join(dir, 'never.duckdb'));
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(
    r.stderr,
    /conflicting\.duckdb: conflicts with an earlier input in table aggregates at model=tiny-b, step=4, task=choice, shots=1, metric=acc/,
  );
  assert.ok(!existsSync(join(dir, 'never.duckdb')));
});

test('results merge --force names --out, never its temporary file, when --out cannot be written', () => {
  const parent = join(dir, 'merge-into');
  const out = join(parent, 'results.duckdb');
  mkdirSync(join(out, 'inside'), { recursive: true });
  const r = pythia('results', 'merge', join(dir, 'full.duckdb'), '--out', out, '--force');
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `pythia: --out: ${out} is a directory, expected a results database file\n`);
  assert.deepEqual(readdirSync(parent), ['results.duckdb'], 'no temporary file left beside it');
});

/**
 * Runs the grid of GRID through the library in a child that stops for good in the middle of its
 * cell number `after + 1` (at its first progress report: `after` cells are committed, the next is
 * being scored), says so on stdout, and is then SIGKILLed: the kill lands at one known point.
 */
async function killDuringCell(db: string, after: number): Promise<void> {
  const code = `
    import { writeSync } from 'node:fs';
    import { evaluate } from ${JSON.stringify(join(repoRoot, 'dist/src/results/evaluate.js'))};
    let finished = 0;
    await evaluate({
      sources: [${JSON.stringify(suite)}], db: ${JSON.stringify(db)}, shots: [0, 1], maxGenTokens: 4, threads: 1,
      onEvent: (e) => {
        if (e.type === 'cell') finished++;
        if (e.type === 'progress' && finished === ${after}) {
          writeSync(1, 'stopped\\n');
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
        }
      },
    });
    writeSync(1, 'finished\\n');
  `;
  // A file, not `node -e`: the tokenizer's own child process inherits the parent's execArgv.
  const script = join(dir, 'stop-during-cell.mjs');
  writeFileSync(script, code);
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let said = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    said += chunk.toString();
    if (said.includes('stopped')) child.kill('SIGKILL');
  });
  const signal = await new Promise((resolve) => child.on('close', (_status, sig) => resolve(sig)));
  assert.equal(signal, 'SIGKILL', `the child was killed where it stopped (it said: ${JSON.stringify(said)})`);
}

test('an evaluation killed with SIGKILL in the middle of a cell resumes to the same database content', async () => {
  const db = join(dir, 'killed.duckdb');
  await killDuringCell(db, 5);
  assert.equal((await content(db)).cells!.length, 5, 'the 5 committed cells, not the one being scored');
  const r = pythia('eval', suite, '--db', db, ...GRID);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /23 cells evaluated, 5 already there/);
  assert.deepEqual(await content(db), await content(join(dir, 'full.duckdb')));
});

test('results export writes each table as Parquet and CSV that DuckDB reads back', async () => {
  for (const format of ['parquet', 'csv']) {
    const out = join(dir, `export-${format}`);
    const r = pythia('results', 'export', join(dir, 'full.duckdb'), '--format', format, '--out', out);
    assert.equal(r.status, 0, r.stderr);
    for (const t of TABLES) assert.ok(existsSync(join(out, `${t.name}.${format}`)), t.name);
    const store = await ResultsStore.open(join(dir, 'full.duckdb'), { readOnly: true });
    try {
      const path = join(out, `aggregates.${format}`);
      const [{ n }] = (await store.rows(`SELECT count(*)::INTEGER AS n FROM '${path}'`)) as [{ n: number }];
      const [{ m }] = (await store.rows('SELECT count(*)::INTEGER AS m FROM aggregates')) as [{ m: number }];
      assert.equal(n, m);
    } finally {
      store.close();
    }
  }
});

test('eval --json prints the summary rows; bad arguments are one-line errors', () => {
  const r = pythia(
    'eval',
    join(suite, 'tiny-a', 'step4'),
    '--task-dir',
    join(dir, 'corpus', 'tasks'),
    '--tasks',
    'choice',
    '--db',
    join(dir, 'one.duckdb'),
    '--json',
  );
  assert.equal(r.status, 0, r.stderr);
  const rows: EvaluateSummary['rows'] = JSON.parse(r.stdout);
  assert.deepEqual(
    rows.map((x) => [x.model, x.step, x.task, x.metric]),
    [
      ['tiny-a', 4, 'choice', 'acc'],
      ['tiny-a', 4, 'choice', 'acc_norm'],
    ],
  );
  const unknown = pythia('eval', suite, '--tasks', 'nope', '--db', join(dir, 'x.duckdb'));
  assert.equal(unknown.status, 1);
  assert.match(
    unknown.stderr,
    /^pythia: --tasks: unknown task "nope" in .*tasks; known: arithmetic, choice, lambada, rolling\n$/,
  );
  const steps = pythia('eval', suite, '--steps', '3', '--db', join(dir, 'x.duckdb'));
  assert.match(steps.stderr, /^pythia: --steps: no checkpoint at step 3 in .*suite \(steps: 0, 4\)\n$/);
  const shard = pythia('eval', suite, '--shard', '3/3');
  assert.match(shard.stderr, /--shard.*expected i\/n with 0 <= i < n/);
  const device = pythia('eval', suite, '--db', join(dir, 'x.duckdb'), '--tasks', 'choice', '--device', 'cuda');
  assert.equal(device.status, 1);
  assert.match(device.stderr, /^pythia: --device cuda: .*\n$/);
});

test('eval reads a Hugging Face id at a revision from a hub cache laid out as huggingface_hub does', async () => {
  // models--EleutherAI--pythia-tiny/{refs/step4, snapshots/<commit>/<file> -> ../../blobs/<hash>}
  const cache = join(dir, 'hub');
  const repo = join(cache, 'models--EleutherAI--pythia-tiny');
  const commit = 'a'.repeat(40);
  mkdirSync(join(repo, 'refs'), { recursive: true });
  mkdirSync(join(repo, 'blobs'));
  mkdirSync(join(repo, 'snapshots', commit), { recursive: true });
  writeFileSync(join(repo, 'refs', 'step4'), commit);
  const source = join(suite, 'tiny-b', 'step4');
  for (const [i, file] of readdirSync(source).entries()) {
    const blob = `blob${i}`;
    copyFileSync(join(source, file), join(repo, 'blobs', blob));
    symlinkSync(join('..', '..', 'blobs', blob), join(repo, 'snapshots', commit, file));
  }
  const db = join(dir, 'hub.duckdb');
  const tasks = join(dir, 'corpus', 'tasks', 'choice.jsonl');
  const r = pythia('eval', 'EleutherAI/pythia-tiny@step4', '--cache-dir', cache, '--tasks', tasks, '--db', db);
  assert.equal(r.status, 0, r.stderr);
  const c = await content(db);
  // The same files as the suite's tiny-b at step 4: the same content hash, and the same item results.
  const full = await content(join(dir, 'full.duckdb'));
  const tinyB = full.checkpoints!.find((x) => x.model === 'tiny-b' && x.step === 4)!;
  assert.deepEqual(c.checkpoints, [
    { model: 'EleutherAI/pythia-tiny', step: 4, sha256: tinyB.sha256, tokens: 4 * 1024 * 2048 },
  ]);
  const strip = (rows: Row[]) => rows.map((x) => ({ ...x, model: undefined, cell: undefined }));
  assert.deepEqual(
    strip(c.item_results!),
    strip(
      full.item_results!.filter((x) => x.model === 'tiny-b' && x.step === 4 && x.task === 'choice' && x.shots === 0),
    ),
  );
  // The other commands that take a checkpoint read the same hub cache ($HF_HUB_CACHE).
  const exported = spawnSync(
    process.execPath,
    [cli, 'export', 'onnx', 'EleutherAI/pythia-tiny@step4', '--out', join(dir, 'hub-export')],
    {
      encoding: 'utf8',
      env: { ...process.env, HF_HUB_CACHE: cache },
    },
  );
  assert.equal(exported.status, 0, exported.stderr);
  assert.ok(existsSync(join(dir, 'hub-export', 'onnx', 'model.onnx')));
  const missing = pythia('eval', 'EleutherAI/pythia-tiny@step8', '--cache-dir', cache, '--tasks', tasks, '--db', db);
  assert.equal(missing.status, 1);
  assert.equal(missing.stderr.trim().split('\n').length, 1);
  assert.match(missing.stderr, /step8.*step4.*huggingface-cli download EleutherAI\/pythia-tiny --revision step8/);
});
