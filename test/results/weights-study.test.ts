/**
 * The weights study through `evaluate`: a checkpoint copied to the next step is flagged identical
 * with no change; the change from the previous checkpoint equals float64 sums over both; a shard
 * compares with the previous checkpoint of the whole evaluation; a rerun is skipped, and a rerun
 * over other steps (another previous checkpoint) is stored beside and read by the report.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import { type EvaluateOptions, evaluate } from '../../src/results/evaluate.js';
import { STUDIES } from '../../src/results/studies.js';
import { makeWorld, writeCheckpoint, writeTasks } from '../eval/support.js';
import { query } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'pythia-weights-study-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const { weightChanges, identicalCheckpoints } = STUDIES.weights.report.queries;

test('weights study: identical copies, changes against float64 sums, shards, resume and another previous step', async () => {
  const world = await makeWorld(dir, 16);
  const suite = join(dir, 'suite');
  await writeCheckpoint(world, join(suite, 'm', 'step0'), 1);
  cpSync(join(suite, 'm', 'step0'), join(suite, 'm', 'step1'), { recursive: true });
  await writeCheckpoint(world, join(suite, 'm', 'step2'), 2);
  await writeCheckpoint(world, join(suite, 'n', 'step0'), 3);
  await writeCheckpoint(world, join(suite, 'n', 'step4'), 4);
  const tasks = writeTasks(dir);
  const run = async (db: string, more: Partial<EvaluateOptions> = {}) => {
    let recorded = 0;
    await evaluate({
      sources: [suite],
      tasks: [tasks.choice!],
      limit: 1,
      db,
      threads: 1,
      studies: ['weights'],
      onEvent: (e) => {
        if (e.type === 'study') recorded++;
      },
      ...more,
    });
    return recorded;
  };

  const db = join(dir, 'results.duckdb');
  assert.equal(await run(db), 5);
  assert.deepEqual(
    (await query(db, identicalCheckpoints.sql)).map((r) => [r.model, r.size, r.step, r.previous_step, r.identical]),
    [
      ['m', 'm', 0, null, null],
      ['m', 'm', 1, 0, true],
      ['m', 'm', 2, 1, false],
      ['n', 'n', 0, null, null],
      ['n', 'n', 4, 0, false],
    ],
  );
  const hashes = await query(db, identicalCheckpoints.sql);
  assert.equal(hashes[0]!.weights_sha256, hashes[1]!.weights_sha256);
  assert.match(hashes[0]!.weights_sha256 as string, /^[0-9a-f]{64}$/);

  const changes = await query(db, weightChanges.sql);
  assert.deepEqual(Object.keys(changes[0]!), [
    'model',
    'size',
    'run',
    'step',
    'param_group',
    'norm',
    'previous_step',
    'relative_change',
    'cosine',
  ]);
  const groups = ['all', 'embed_in', 'embed_out', 'final_layer_norm'];
  for (const i of [0, 1]) groups.push(...['attention', 'layer_norms', 'mlp'].map((p) => `layers.${i}.${p}`));
  assert.deepEqual(
    changes.filter((r) => r.model === 'm' && r.step === 0).map((r) => r.param_group),
    groups.sort(),
  );
  for (const r of changes.filter((r) => r.model === 'm' && r.step === 1)) {
    assert.equal(r.relative_change, 0);
    assert.ok(Math.abs((r.cosine as number) - 1) < 1e-12);
  }
  // Every parameter of step 2 against step 1, summed in float64 here.
  const [a, b] = [1, 2].map((s) => loadCheckpoint(join(suite, 'm', `step${s}`)).params);
  let [aa, bb, ab, dd] = [0, 0, 0, 0];
  for (const [name, w] of b!) {
    const p = a!.get(name)!;
    for (let i = 0; i < w.length; i++) {
      aa += p[i]! ** 2;
      bb += w[i]! ** 2;
      ab += p[i]! * w[i]!;
      dd += (w[i]! - p[i]!) ** 2;
    }
  }
  const all = changes.find((r) => r.model === 'm' && r.step === 2 && r.param_group === 'all')!;
  assert.ok(Math.abs((all.norm as number) - Math.sqrt(bb)) < 1e-12 * Math.sqrt(bb));
  assert.ok(Math.abs((all.relative_change as number) - Math.sqrt(dd / aa)) < 1e-12);
  assert.ok(Math.abs((all.cosine as number) - ab / Math.sqrt(aa * bb)) < 1e-12);
  assert.equal(all.previous_step, 1);

  // A shard without step 0 still compares step 1 with it.
  const shard = join(dir, 'shard.duckdb');
  assert.equal(await run(shard, { shard: { index: 1, count: 2 } }), 2);
  assert.deepEqual(
    (await query(shard, identicalCheckpoints.sql)).map((r) => [r.model, r.step, r.previous_step, r.identical]),
    [
      ['m', 1, 0, true],
      ['n', 0, null, null],
    ],
  );

  // Resumed: nothing new. Over steps 0 and 2 alone, step 2's previous is 0: a new run of it.
  assert.equal(await run(db), 0);
  assert.equal(await run(db, { steps: [0, 2] }), 1);
  const rerun = await query(db, identicalCheckpoints.sql);
  assert.deepEqual(
    rerun.filter((r) => r.model === 'm').map((r) => [r.step, r.previous_step, r.identical]),
    [
      [0, null, null],
      [1, 0, true],
      [2, 0, false],
    ],
  );
  assert.deepEqual(await query(db, "SELECT count(*)::INTEGER AS n FROM studies WHERE kind = 'weights' AND step = 2"), [
    { n: 2 },
  ]);
});
