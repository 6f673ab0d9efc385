import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PreshuffledWriter } from '../../src/data/preshuffled.js';
import { pythiaArchitecture } from '../../src/model/presets.js';
import { PYTHIA_INIT } from '../../src/train/init.js';
import type { TrainRecipe } from '../../src/train/recipes.js';
import { loadResumePoint, readLog, type TrainerState, train } from '../../src/train/trainer.js';
import { pronounCorpus, sampleAt } from './support.js';

test('an intervention run continues the same order from step N with pronouns swapped, into its own folder', async () => {
  const work = mkdtempSync(join(tmpdir(), 'pythia-intervention-run-'));
  try {
    const text = 'he saw his dog and gave him food . she saw her cat and gave her milk . the dog ate .\n';
    const { tokenizerPath, tokenizer, stream } = await pronounCorpus(work, text);
    const seq = 16;
    const writer = PreshuffledWriter.create(join(work, 'data'), { vocabSize: tokenizer.vocabSize, seqLength: seq });
    for (let s = 0; s < 8 * 4; s++) writer.addSample(sampleAt(stream, s, seq));
    await writer.finish();

    const config = {
      ...pythiaArchitecture({ numLayers: 1, hiddenSize: 32, numHeads: 2, vocabSize: 384, maxPositions: seq }),
      dtype: 'float32' as const,
    };
    const recipe: TrainRecipe = {
      seqLength: seq,
      trainBatchSize: 4,
      microBatchSize: 4,
      trainIters: 8,
      schedule: { lr: 1e-3, minLr: 1e-4, warmup: 0, decayIters: 8, decayStyle: 'cosine' },
      weightDecay: 0.1,
      gradientClipping: 1,
      betas: [0.9, 0.95],
      eps: 1e-8,
      optimizer: 'apex',
      seed: 1,
      init: PYTHIA_INIT,
      checkpoint: { checkpointFactor: 4, checkpointScale: 'linear', extraSaveIters: [0] },
    };
    const data = { prefix: join(work, 'data'), preshuffled: true };
    const base = await train({
      name: 'm',
      config,
      recipe,
      data,
      outDir: join(work, 'base'),
      tokenizerPath,
      threads: 1,
    });
    const swapped = await train({
      name: 'm',
      config,
      recipe,
      data,
      outDir: join(work, 'swap'),
      tokenizerPath,
      threads: 1,
      resume: loadResumePoint(join(base.modelDir, 'step4')),
      intervention: 'pronoun-swap',
    });
    assert.deepEqual(swapped.checkpoints, [8]);
    const state = JSON.parse(
      readFileSync(join(swapped.modelDir, 'step8', 'trainer_state.json'), 'utf8'),
    ) as TrainerState;
    assert.deepEqual(state.intervention, { kind: 'pronoun-swap', fromStep: 4 });
    // Steps 5..8 trained on the swapped batches: every batch here holds a pronoun, so each hash differs.
    const baseLog = readLog(base.logPath).filter((e) => e.step > 4);
    const swapLog = readLog(swapped.logPath);
    assert.deepEqual(
      swapLog.map((e) => e.step),
      [5, 6, 7, 8],
    );
    swapLog.forEach((e, i) => {
      assert.notEqual(e.batch_sha256, baseLog[i]!.batch_sha256, `step ${e.step}`);
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
