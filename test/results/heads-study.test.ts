/**
 * The heads and icl studies (src/results/heads-study.ts) as `pythia eval` runs them: every head's
 * scores and one icl row per checkpoint, equal to the model-level functions; a rerun skips them, a
 * change of settings stores a new run beside the old; the icl study reads held-out text where it is
 * given and says it read random sequences where none is; the report's queries read them back.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { datasetHeldOut } from '../../src/analysis/held-out.js';
import { IndexedDatasetWriter } from '../../src/data/indexed-dataset.js';
import { ActivationRunner } from '../../src/model/activations.js';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import { headScores } from '../../src/model/head-detectors.js';
import { iclPositions, iclScore, inductionLoss } from '../../src/model/icl.js';
import { Scorer } from '../../src/model/score.js';
import { loadReportData } from '../../src/report/data.js';
import { recordHeads, repeatedSequences } from '../../src/results/heads-study.js';
import { checkpointSha256 } from '../../src/results/identity.js';
import { ResultsStore } from '../../src/results/store.js';
import { DEFAULT_STUDY_SETTINGS } from '../../src/results/studies.js';
import { type EvalWorld, makeWorld, writeCheckpoint, writeTasks } from '../eval/support.js';
import { repoRoot } from '../support/paths.js';
import { query } from './support.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'pythia-heads-study-'));
let world: EvalWorld;
let tasks: Record<string, string>;
let checkpoint: string;
let heldOut: string;

function evaluate(db: string, ...extra: string[]): string {
  const r = spawnSync(
    process.execPath,
    [cli, 'eval', checkpoint, '--tasks', tasks.choice!, '--limit', '1', '--threads', '1', '--db', db, ...extra],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  return r.stderr;
}

before(async () => {
  world = await makeWorld(dir);
  tasks = writeTasks(dir);
  checkpoint = join(dir, 'models', 'tiny', 'step4');
  await writeCheckpoint(world, checkpoint, 3);
  heldOut = join(dir, 'held', 'text');
  const writer = IndexedDatasetWriter.create(heldOut, { vocabSize: world.config.vocabSize });
  for (let d = 0; d < 20; d++) writer.add(Array.from({ length: 13 }, (_, t) => (d * 31 + t * 7) % 250));
  await writer.finish();
});
after(() => rmSync(dir, { recursive: true, force: true }));

const STUDIES = `SELECT kind, sequences, sample_seed, data_sha256, settings FROM studies ORDER BY kind, finished_at`;

test('pythia eval --heads --icl: the scores of the model-level functions, once; other settings beside them', async () => {
  const db = join(dir, 'study.duckdb');
  evaluate(db, '--heads', '--icl');
  const { config, params } = loadCheckpoint(checkpoint);
  const sequences = repeatedSequences(config, 64, { sequences: 4, length: 384, seed: 1 });
  assert.equal(sequences.length, 31, 'both copies shorter than the 64-token context');
  const studies = await query(db, STUDIES);
  assert.deepEqual(
    studies.map((s) => ({ ...s, settings: JSON.parse(s.settings as string) })),
    [
      {
        kind: 'heads',
        sequences: 4,
        sample_seed: 1,
        data_sha256: null,
        settings: { context: 64, length: 31, tokenLow: 100, tokenHigh: config.vocabSize },
      },
      {
        kind: 'icl',
        sequences: 4,
        sample_seed: 1,
        data_sha256: null,
        settings: {
          context: 64,
          length: 31,
          tokenLow: 100,
          tokenHigh: config.vocabSize,
          earlyPosition: 2,
          latePosition: 16,
          text: 'repeated-random',
          textRows: 4,
        },
      },
    ],
  );

  const runner = new ActivationRunner(config, params, { threads: 1 });
  const expected = await headScores(runner, sequences.rows);
  await runner.release();
  const stored = await query(
    db,
    'SELECT model, step, layer, head, previous_token, duplicate_token, induction FROM head_scores ORDER BY layer, head',
  );
  assert.deepEqual(
    stored,
    expected.map((s) => ({
      model: 'tiny',
      step: 4,
      layer: s.layer,
      head: s.head,
      previous_token: s.previousToken,
      duplicate_token: s.duplicateToken,
      induction: s.induction,
    })),
  );
  const scorer = await Scorer.create(config, params, { threads: 1 });
  const induction = await inductionLoss(scorer, sequences.rows);
  const icl = await iclScore(scorer, sequences.rows, iclPositions(config.maxPositions));
  scorer.release();
  assert.deepEqual(await query(db, 'SELECT * EXCLUDE (study) FROM icl_scores'), [
    {
      model: 'tiny',
      step: 4,
      induction_loss: induction,
      early_position: 2,
      late_position: 16,
      early_loss: icl.earlyLoss,
      late_loss: icl.lateLoss,
      icl_score: icl.score,
    },
  ]);

  evaluate(db, '--heads', '--icl');
  assert.equal((await query(db, STUDIES)).length, 2, 'a rerun records nothing new');
  assert.equal((await query(db, 'SELECT count(*)::INTEGER AS n FROM head_scores'))[0]!.n, 4);

  // Held-out text for the icl study: a new icl run reading it; the heads study does not read it.
  evaluate(db, '--heads', '--icl', '--held-out-data', heldOut, '--held-out-rows', '3');
  const after = await query(db, STUDIES);
  assert.equal(after.length, 3);
  const held = datasetHeldOut(heldOut, { rows: 3, length: 17 });
  const last = after.at(-1)!;
  assert.equal(last.kind, 'icl');
  assert.equal(last.data_sha256, held.sha256);
  assert.equal(JSON.parse(last.settings as string).text, 'held-out');
  assert.equal(JSON.parse(last.settings as string).textRows, 3);

  const store = await ResultsStore.open(db, { readOnly: true });
  try {
    const data = await loadReportData(store);
    assert.equal(data.studies.headScores.length, config.numLayers * config.numHeads);
    assert.deepEqual(Object.keys(data.studies.headScores[0]!), [
      'model',
      'size',
      'run',
      'step',
      'layer',
      'head',
      'previous_token',
      'duplicate_token',
      'induction',
    ]);
    // The run finished last: on held-out text.
    assert.equal(data.studies.iclScores.length, 1);
    assert.notEqual(data.studies.iclScores[0]!.early_loss, icl.earlyLoss);
    assert.deepEqual(Object.keys(data.studies.iclScores[0]!), [
      'model',
      'size',
      'run',
      'step',
      'induction_loss',
      'early_position',
      'late_position',
      'early_loss',
      'late_loss',
      'icl_score',
    ]);
  } finally {
    store.close();
  }

  // Fewer sequences: a new heads run beside the old, recorded once.
  const writable = await ResultsStore.open(db);
  try {
    const ref = { model: 'tiny', step: 4, dir: checkpoint, tokens: null };
    const model = { config, params, tokenizer: world.tokenizer };
    const settings = { ...DEFAULT_STUDY_SETTINGS, repeatedSequences: 2 };
    const context = {
      runtime: { threads: 1 },
      device: 'cpu',
      checkpointSha256: await checkpointSha256(checkpoint),
      tokenizerSha256: '',
    };
    assert.equal(await recordHeads(writable, ref, model, settings, context), true);
    assert.equal(await recordHeads(writable, ref, model, settings, context), false);
    assert.deepEqual(await writable.rows(`SELECT sequences FROM studies WHERE kind = 'heads' ORDER BY finished_at`), [
      { sequences: 4 },
      { sequences: 2 },
    ]);
  } finally {
    writable.close();
  }
});
