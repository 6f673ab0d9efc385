/**
 * Five optimizer steps of test/fixtures/hf-gptneox/parallel-r25 from its model/, on the batches in
 * train.safetensors (written as a preshuffled dataset, seq-length = width − 1) with that case's
 * recipe (torch AdamW, lr 1e-3 constant, wd 0.01, clip 1.0), checked against the fixture's losses,
 * gradient norms and final weights within the fixture README's tolerances.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PreshuffledWriter } from '../../src/data/preshuffled.js';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import type { ExecutionProvider } from '../../src/runtime/session.js';
import { PYTHIA_INIT } from '../../src/train/init.js';
import type { TrainRecipe } from '../../src/train/recipes.js';
import { readLog, train } from '../../src/train/trainer.js';
import { relativeL2 } from './check.js';
import { fixtureDir } from './paths.js';

export async function checkFixtureTraining(device: ExecutionProvider): Promise<void> {
  const dir = fixtureDir('parallel-r25');
  const trainJson = JSON.parse(readFileSync(join(dir, 'train.json'), 'utf8')) as {
    steps: number;
    lr: number;
    betas: [number, number];
    eps: number;
    weight_decay: number;
    grad_clip_global_norm: number;
    losses: number[];
    grad_norms_before_clip: number[];
  };
  const work = mkdtempSync(join(tmpdir(), 'pythia-fixture-train-'));
  try {
    const batches = openSafetensors(join(dir, 'train.safetensors'));
    const first = batches.list().find((t) => t.name === 'batch.0')!;
    const [batch, width] = first.shape as [number, number];
    const model = loadCheckpoint(join(dir, 'model'));
    const writer = PreshuffledWriter.create(join(work, 'data'), {
      vocabSize: model.config.vocabSize,
      seqLength: width - 1,
    });
    for (let s = 0; s < trainJson.steps; s++) {
      const raw = batches.readRaw(`batch.${s}`);
      writer.addBatch(Int32Array.from(new BigInt64Array(raw.data.buffer, 0, batch * width), Number));
    }
    await writer.finish();

    const recipe: TrainRecipe = {
      seqLength: width - 1,
      trainBatchSize: batch,
      microBatchSize: batch,
      trainIters: trainJson.steps,
      schedule: { lr: trainJson.lr, minLr: 0, warmup: 0, decayIters: trainJson.steps, decayStyle: 'constant' },
      weightDecay: trainJson.weight_decay,
      gradientClipping: trainJson.grad_clip_global_norm,
      betas: trainJson.betas,
      eps: trainJson.eps,
      optimizer: 'torch',
      seed: 1,
      init: PYTHIA_INIT,
      checkpoint: { checkpointScale: 'linear', extraSaveIters: [] },
    };
    const result = await train({
      name: 'parallel-r25',
      config: model.config,
      recipe,
      data: { prefix: join(work, 'data'), preshuffled: true },
      outDir: join(work, 'run'),
      initFrom: join(dir, 'model'),
      device,
    });
    assert.deepEqual(result.checkpoints, [trainJson.steps]);

    const log = readLog(result.logPath).filter((e) => e.loss !== undefined);
    assert.equal(log.length, trainJson.steps);
    log.forEach((e, i) => {
      assert.ok(
        Math.abs(e.loss! - trainJson.losses[i]!) <= 1e-5,
        `step ${i + 1} loss ${e.loss} vs ${trainJson.losses[i]}`,
      );
      const g = trainJson.grad_norms_before_clip[i]!;
      assert.ok(Math.abs(e.grad_norm! - g) / g <= 1e-4, `step ${i + 1} grad norm ${e.grad_norm} vs ${g}`);
    });

    const final = loadCheckpoint(join(result.modelDir, `step${trainJson.steps}`)).params;
    let checked = 0;
    for (const info of batches.list()) {
      if (!info.name.startsWith('final.')) continue;
      // transformers 5 names the head lm_head in its state dict; checkpoints call it embed_out.
      const hfName = info.name.slice('final.'.length);
      const name = hfName === 'lm_head.weight' ? 'embed_out.weight' : hfName;
      const err = relativeL2(final.get(name)!, batches.readFloat32(info.name));
      assert.ok(err <= 1e-4, `${name}: relative L2 error ${err}`);
      checked++;
    }
    assert.equal(checked, final.size);
    batches.close();
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
