/**
 * The logit-lens study as `pythia eval` records it: one lens_layers row per layer at each
 * checkpoint, equal to what `pythia lens` prints for the same held-out rows; identified by the
 * checkpoint, the held-out tokens' sha256, rows, length and the tokenizer, so a rerun records
 * nothing; sharded and merged it holds what one run holds; a checkpoint with no held-out text of its
 * own is skipped with one warning line unless --held-out-data gives some.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { heldOutTokens } from '../../src/analysis/held-out.js';
import { loadReportData } from '../../src/report/data.js';
import { fileSha256 } from '../../src/results/identity.js';
import { TABLES } from '../../src/results/schema.js';
import { ResultsStore } from '../../src/results/store.js';
import { cli, pythia, type TinySuite, trainTinySuite } from '../support/tiny-suite.js';
import { LENS_LAYER_COLUMNS, query } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'pythia-lens-study-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let tiny: TinySuite;
before(() => {
  tiny = trainTinySuite(dir);
});

/** `pythia eval` with the logit-lens study on 4 held-out rows (a short task cell beside it). */
function lensEval(sources: string[], db: string, ...extra: string[]): string {
  return pythia(
    'eval',
    ...sources,
    '--tasks',
    'arithmetic',
    '--task-dir',
    join(dir, 'synth', 'tasks'),
    '--limit',
    '1',
    '--threads',
    '1',
    '--db',
    db,
    '--logit-lens',
    '--held-out-rows',
    '4',
    ...extra,
  );
}

test('records every layer at every checkpoint, equal to pythia lens; a rerun records nothing', async () => {
  const db = join(dir, 'run.duckdb');
  const first = lensEval([tiny.suite], db);
  for (const step of [0, 1, 2, 4]) assert.match(first, new RegExp(`logit-lens: nano-25k step ${step}\\n`));
  const rows = await query(
    db,
    'SELECT step, layer, kl, ce, entropy, top1, kl_bpb, ce_bpb FROM lens_layers WHERE lens = $$logit$$ ORDER BY step, layer',
  );
  assert.equal(rows.length, 4 * 3);
  const printed = spawnSync(process.execPath, [cli, 'lens', tiny.step(4), '--rows', '4', '--json', '--threads', '1'], {
    encoding: 'utf8',
  });
  assert.equal(printed.status, 0, printed.stderr);
  const expected = printed.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);
  const stored = rows.filter((r) => r.step === 4);
  assert.equal(stored.length, expected.length);
  stored.forEach((r, l) => {
    for (const key of ['layer', 'kl', 'ce', 'entropy', 'top1', 'kl_bpb', 'ce_bpb'])
      assert.ok(
        Math.abs((r[key] as number) - expected[l]![key]!) < 1e-9,
        `layer ${l} ${key}: ${r[key]} vs ${expected[l]![key]}`,
      );
  });

  const held = await heldOutTokens(tiny.step(4), { rows: 4, length: 65 });
  const [study] = await query(
    db,
    "SELECT data_sha256, tokenizer_sha256, settings::VARCHAR AS settings FROM studies WHERE kind = 'logit_lens' AND step = 4",
  );
  assert.equal(study!.data_sha256, held.sha256);
  assert.equal(study!.tokenizer_sha256, await fileSha256(join(tiny.step(4), 'tokenizer.json')));
  assert.deepEqual(JSON.parse(study!.settings as string), { rows: 4, length: 65, lens: 'logit' });

  const again = lensEval([tiny.suite], db);
  assert.doesNotMatch(again, /logit-lens:/);
  assert.equal((await query(db, "SELECT count(*)::INTEGER AS n FROM studies WHERE kind = 'logit_lens'"))[0]!.n, 4);
  // Other rows are another run, stored beside it.
  lensEval([tiny.suite], db, '--held-out-length', '33', '--steps', '4');
  assert.deepEqual(
    await query(
      db,
      "SELECT settings->>'length' AS length, count(*)::INTEGER AS n FROM studies WHERE kind = 'logit_lens' GROUP BY ALL ORDER BY ALL",
    ),
    [
      { length: '33', n: 1 },
      { length: '65', n: 4 },
    ],
  );

  const store = await ResultsStore.open(db, { readOnly: true });
  try {
    const data = await loadReportData(store);
    const report = data.studies.lensLayers;
    assert.equal(report.length, 12, 'one run per checkpoint: the one finished last');
    assert.deepEqual(Object.keys(report[0]!), LENS_LAYER_COLUMNS);
  } finally {
    store.close();
  }
});

/** Every row of the studies' tables but the columns that may differ between runs of the same work. */
async function contents(db: string): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const t of TABLES.filter((t) => t.name === 'studies' || t.name === 'lens_layers')) {
    const columns = t.columns.filter((c) => !(t.volatile ?? []).includes(c));
    out[t.name] = await query(db, `SELECT ${columns.join(', ')} FROM ${t.name} ORDER BY ALL`);
  }
  return out;
}

test('two shards, merged, hold what one run holds', async () => {
  const whole = join(dir, 'whole.duckdb');
  lensEval([tiny.suite], whole);
  const shards = [0, 1].map((i) => {
    const db = join(dir, `shard${i}.duckdb`);
    lensEval([tiny.suite], db, '--shard', `${i}/2`);
    return db;
  });
  const merged = join(dir, 'merged.duckdb');
  pythia('results', 'merge', ...shards, '--out', merged);
  const rows = await contents(whole);
  assert.equal(rows.lens_layers!.length, 12);
  assert.deepEqual(await contents(merged), rows);
  for (const db of shards) assert.equal((await contents(db)).lens_layers!.length, 6);
});

test('a checkpoint with no training record is skipped with one warning line, and studied with --held-out-data', async () => {
  const bare = join(dir, 'bare', 'step4');
  cpSync(tiny.step(4), bare, { recursive: true, filter: (src) => !src.endsWith('trainer_state.json') });
  const other = join(dir, 'bare', 'step2');
  cpSync(tiny.step(2), other, { recursive: true, filter: (src) => !src.endsWith('trainer_state.json') });
  const db = join(dir, 'bare.duckdb');
  const stderr = lensEval([bare, other], db);
  const warnings = stderr.split('\n').filter((l) => /warning/.test(l));
  assert.deepEqual(warnings, [
    'pythia eval: warning: logit-lens skipped for bare: no training record to take held-out text from; give --held-out-data <prefix>',
  ]);
  assert.equal((await query(db, 'SELECT count(*)::INTEGER AS n FROM lens_layers'))[0]!.n, 0);

  lensEval([bare], db, '--held-out-data', tiny.data, '--held-out-length', '1000');
  const [study] = await query(
    db,
    "SELECT data_sha256, settings::VARCHAR AS settings FROM studies WHERE kind = 'logit_lens'",
  );
  // The length is capped at the model's context + 1.
  assert.deepEqual(JSON.parse(study!.settings as string), { rows: 4, length: 129, lens: 'logit' });
  assert.equal(study!.data_sha256, (await heldOutTokens(bare, { rows: 4, length: 129, data: tiny.data })).sha256);
  assert.equal((await query(db, 'SELECT count(*)::INTEGER AS n FROM lens_layers'))[0]!.n, 3);
});
