/**
 * Training at two intra-op threads is as reproducible as at one: two runs with the same seed give the
 * same checkpoint bytes. The shape is large enough (4096 tokens a step, width 128) that onnxruntime
 * splits the embedding gradient's scatter-add across both threads; through ScatterND with reduction
 * 'add' that lost updates and reordered sums, so the runs differed from step 2 on.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PreshuffledWriter } from '../../src/data/preshuffled.js';
import type { NeoXConfig } from '../../src/model/config.js';
import { pythiaArchitecture } from '../../src/model/presets.js';
import { PYTHIA_INIT } from '../../src/train/init.js';
import type { TrainRecipe } from '../../src/train/recipes.js';
import { type TrainOptions, train } from '../../src/train/trainer.js';

const [VOCAB, SEQ, BATCH, STEPS] = [256, 64, 64, 3];

const config: NeoXConfig = {
  ...pythiaArchitecture({ numLayers: 1, hiddenSize: 128, numHeads: 4, vocabSize: VOCAB, maxPositions: SEQ }),
  dtype: 'float32',
};
const recipe: TrainRecipe = {
  seqLength: SEQ,
  trainBatchSize: BATCH,
  microBatchSize: BATCH,
  trainIters: STEPS,
  schedule: { lr: 3e-3, minLr: 3e-4, warmup: 0, decayIters: STEPS, decayStyle: 'cosine' },
  weightDecay: 0.1,
  gradientClipping: 1.0,
  betas: [0.9, 0.95],
  eps: 1e-8,
  optimizer: 'apex',
  seed: 1234,
  init: PYTHIA_INIT,
  checkpoint: { checkpointFactor: STEPS, checkpointScale: 'linear', extraSaveIters: [0] },
};

let work: string;
let data: string;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'pythia-threads-'));
  data = join(work, 'data');
  // Tokens skewed towards small ids, so that every batch repeats rows of the embedding many times.
  const writer = PreshuffledWriter.create(data, { vocabSize: VOCAB, seqLength: SEQ });
  for (let s = 0; s < STEPS * BATCH; s++)
    writer.addSample(Array.from({ length: SEQ + 1 }, (_, t) => ((s * 131 + t * 17) % VOCAB) % (1 + ((s + t) % 64))));
  await writer.finish();
});

after(() => rmSync(work, { recursive: true, force: true }));

function options(out: string): TrainOptions {
  return {
    name: 'wide',
    config,
    recipe,
    data: { prefix: data, preshuffled: true },
    outDir: out,
    evalIters: 0,
    threads: 2,
  };
}

test('two training runs at 2 threads give identical checkpoint bytes', async () => {
  const a = await train(options(join(work, 'a')));
  const b = await train(options(join(work, 'b')));
  assert.deepEqual(a.checkpoints, [0, STEPS]);
  const dir = (modelDir: string) => join(modelDir, `step${STEPS}`);
  const files = readdirSync(dir(a.modelDir)).sort();
  assert.deepEqual(readdirSync(dir(b.modelDir)).sort(), files);
  for (const f of files) {
    const same = readFileSync(join(dir(a.modelDir), f)).equals(readFileSync(join(dir(b.modelDir), f)));
    assert.ok(same, `step${STEPS}/${f} differs between the two runs`);
  }
});
