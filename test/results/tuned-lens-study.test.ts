/**
 * The tuned-lens study at a suite checkpoint with held-out rows from a tokenized dataset: one
 * lens_layers row per layer (lens 'tuned') on the rows the logit lens reads, below the logit lens
 * at every layer but the last, with bits per byte from the tokenizer; identified by the held-out
 * rows and every training setting; the lens saved under <suite>/lenses/ and reused by a run with
 * the same training, trained anew with other settings; the report's tunedLensLayers query.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bitsPerByteFactor } from '../../src/analysis/held-out.js';
import { IndexedDatasetWriter } from '../../src/data/indexed-dataset.js';
import { checkpointRef } from '../../src/eval/checkpoints.js';
import { ActivationRunner } from '../../src/model/activations.js';
import { logitLens } from '../../src/model/logit-lens.js';
import { TUNED_LENS_DEFAULTS } from '../../src/model/tuned-lens.js';
import { loadReportData } from '../../src/report/data.js';
import { checkpointSha256 } from '../../src/results/identity.js';
import { ResultsStore } from '../../src/results/store.js';
import { DEFAULT_STUDY_SETTINGS, type StudySettings } from '../../src/results/studies.js';
import { recordTunedLens, rowIds, tunedLensRows } from '../../src/results/tuned-lens-study.js';
import { type EvalWorld, makeWorld, writeCheckpoint } from '../eval/support.js';
import { Rng } from '../support/random.js';
import { LENS_LAYER_COLUMNS } from './support.js';

describe('the tuned-lens study', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pythia-tuned-lens-study-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const checkpoint = join(dir, 'suite/nano/step8');
  const lensDir = join(dir, 'suite/lenses/nano/step8');
  const data = join(dir, 'data/held-out');
  let world: EvalWorld;
  let model: { config: EvalWorld['config']; params: Map<string, Float32Array>; tokenizer: EvalWorld['tokenizer'] };
  let context: Parameters<typeof recordTunedLens>[4];
  const settings: StudySettings = {
    ...DEFAULT_STUDY_SETTINGS,
    heldOutRows: 4,
    heldOutLength: 24,
    heldOutData: data,
    tunedLensSteps: 20,
    tunedLensTokensPerStep: 96,
  };

  before(async () => {
    world = await makeWorld(dir, 32);
    const params = await writeCheckpoint(world, checkpoint, 5);
    model = { config: world.config, params, tokenizer: world.tokenizer };
    const writer = IndexedDatasetWriter.create(data, { vocabSize: world.config.vocabSize });
    const rng = new Rng(11);
    for (let d = 0; d < 10; d++) writer.add(Array.from(rng.ints(60, 0, world.tokenizer.vocabSize), Number));
    await writer.finish();
    context = {
      runtime: { threads: 1 },
      device: 'cpu',
      checkpointSha256: await checkpointSha256(checkpoint),
      tokenizerSha256: 'tokenizer',
    };
  });

  async function record(db: string, s: StudySettings): Promise<{ recorded: boolean; store: ResultsStore }> {
    const store = await ResultsStore.open(db);
    return { recorded: await recordTunedLens(store, checkpointRef(checkpoint), model, s, context), store };
  }

  test('writes each layer below the logit lens on its rows, saves the lens, skips a rerun', async () => {
    const { recorded, store } = await record(join(dir, 'a.duckdb'), settings);
    try {
      assert.equal(recorded, true);
      const rows = await store.rows('SELECT * FROM lens_layers ORDER BY layer');
      assert.equal(rows.length, world.config.numLayers + 1);
      assert.ok(rows.every((r) => r.lens === 'tuned' && r.model === 'nano' && r.step === 8));

      const lensRows = await tunedLensRows(checkpoint, {
        evalRows: 4,
        length: 24,
        data,
        training: { ...TUNED_LENS_DEFAULTS, steps: 20, tokensPerStep: 96 },
      });
      assert.equal(lensRows.training.rows, 600 / 24 - 4);
      const runner = new ActivationRunner(world.config, model.params, { threads: 1 });
      const logit = await logitLens(runner, model.params, rowIds(lensRows.evaluation), 4);
      await runner.release();
      const bpb = bitsPerByteFactor(world.tokenizer, lensRows.evaluation.tokens, 4)!;
      assert.ok(bpb > 0);
      for (const r of rows) {
        const l = r.layer as number;
        if (l < world.config.numLayers)
          assert.ok((r.kl as number) < logit[l]!.kl, `layer ${l}: ${r.kl} vs ${logit[l]!.kl}`);
        else assert.equal(r.kl, 0);
        assert.ok(Math.abs((r.kl_bpb as number) - (r.kl as number) * bpb) < 1e-12);
        assert.ok(Math.abs((r.ce_bpb as number) - (r.ce as number) * bpb) < 1e-12);
      }
      const [study] = await store.rows('SELECT kind, data_sha256, device, settings FROM studies');
      assert.equal(study!.kind, 'tuned_lens');
      assert.equal(study!.data_sha256, lensRows.sha256);
      assert.deepEqual(JSON.parse(study!.settings as string), {
        heldOutRows: 4,
        heldOutLength: 24,
        trainRows: 21,
        steps: 20,
        lr: 1,
        tokensPerStep: 96,
        momentum: 0.9,
        weightDecay: 0.001,
        clipNorm: 1,
        seed: 42,
      });
      const saved = JSON.parse(readFileSync(join(lensDir, 'config.json'), 'utf8'));
      assert.equal(saved.training.steps, 20);
      assert.equal(saved.training.heldOutSha256, lensRows.sha256);
      assert.equal(saved.training.checkpointSha256, context.checkpointSha256);

      assert.equal(await recordTunedLens(store, checkpointRef(checkpoint), model, settings, context), false);
      assert.equal((await store.rows('SELECT count(*)::INTEGER AS n FROM lens_layers'))[0]!.n, rows.length);
      const report = await loadReportData(store);
      assert.deepEqual(
        report.studies.tunedLensLayers.map((r) => [r.model, r.size, r.run, r.step, r.layer, r.kl]),
        rows.map((r) => ['nano', 'nano', 'baseline', 8, r.layer, r.kl]),
      );
      assert.deepEqual(Object.keys(report.studies.tunedLensLayers[0]!), LENS_LAYER_COLUMNS);
    } finally {
      store.close();
    }
  });

  test('another run with the same training reuses the saved lens; other settings train anew', async () => {
    const config = join(lensDir, 'config.json');
    const before = { text: readFileSync(config, 'utf8'), mtime: statSync(config).mtimeMs };
    const first = await record(join(dir, 'a.duckdb'), settings);
    const kept = await first.store.rows('SELECT layer, kl FROM lens_layers ORDER BY layer');
    first.store.close();
    const again = await record(join(dir, 'b.duckdb'), settings);
    try {
      assert.equal(again.recorded, true);
      assert.deepEqual(await again.store.rows('SELECT layer, kl FROM lens_layers ORDER BY layer'), kept);
      assert.equal(readFileSync(config, 'utf8'), before.text);
      assert.equal(statSync(config).mtimeMs, before.mtime);
    } finally {
      again.store.close();
    }
    const other = await record(join(dir, 'b.duckdb'), { ...settings, tunedLensSteps: 5 });
    try {
      assert.equal(other.recorded, true);
      assert.equal((await other.store.rows('SELECT count(DISTINCT study)::INTEGER AS n FROM lens_layers'))[0]!.n, 2);
      assert.equal(JSON.parse(readFileSync(config, 'utf8')).training.steps, 5);
    } finally {
      other.store.close();
    }
  });
});
