/** Shared set-up of the export tests: a BPE tokenizer trained on the synthetic corpus, a tiny trained model, comparisons. */
import { join } from 'node:path';
import { trainBpe, writeTokenizerJson } from '../../src/data/bpe-trainer.js';
import { PreshuffledWriter } from '../../src/data/preshuffled.js';
import type { NeoXConfig } from '../../src/model/config.js';
import { pythiaArchitecture } from '../../src/model/presets.js';
import { DEFAULT_OPTIONS, generateCorpus } from '../../src/synth/corpus.js';
import { scaledCheckpointSchedule } from '../../src/train/checkpoint-schedule.js';
import { PYTHIA_INIT } from '../../src/train/init.js';
import { train } from '../../src/train/trainer.js';

/** Largest |a − b| over the largest |b|: the fixtures' "relative to max |logit|" measure. */
export function maxRelativeDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`${actual.length} values, expected ${expected.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return diff / scale;
}

/** A byte-level BPE tokenizer of at most `vocabSize` tokens, trained on a small synthetic corpus. */
export async function trainedTokenizer(path: string, vocabSize: number): Promise<string> {
  const corpus = generateCorpus({ ...DEFAULT_OPTIONS, seed: 7, tokens: 20_000 });
  await writeTokenizerJson(
    path,
    await trainBpe(
      corpus.documents.map((d) => d.text),
      { vocabSize },
    ),
  );
  return path;
}

/**
 * A 2-layer model trained for 12 steps on counting patterns (vocabulary 64): a checkpoint with
 * confident predictions, unlike the fixtures' random weights. Returns the step-12 folder.
 */
export async function trainedCheckpoint(work: string): Promise<string> {
  const config: NeoXConfig = {
    ...pythiaArchitecture({ numLayers: 2, hiddenSize: 32, numHeads: 2, vocabSize: 64, maxPositions: 48 }),
    dtype: 'float32',
  };
  const data = join(work, 'counting');
  const writer = PreshuffledWriter.create(data, { vocabSize: 64, seqLength: 16 });
  for (let s = 0; s < 14 * 8; s++)
    writer.addSample(Array.from({ length: 17 }, (_, t) => (s * 7 + t * (1 + (s % 3))) % 64));
  await writer.finish();
  const result = await train({
    name: 'counting',
    config,
    recipe: {
      seqLength: 16,
      trainBatchSize: 8,
      microBatchSize: 8,
      trainIters: 12,
      schedule: { lr: 3e-3, minLr: 3e-4, decayIters: 12, decayStyle: 'cosine', warmup: 0.1 },
      weightDecay: 0.1,
      gradientClipping: 1.0,
      betas: [0.9, 0.95],
      eps: 1e-8,
      optimizer: 'apex',
      seed: 1234,
      init: PYTHIA_INIT,
      checkpoint: scaledCheckpointSchedule(12, 1),
    },
    data: { prefix: data, preshuffled: true },
    outDir: join(work, 'run'),
    evalIters: 1,
    threads: 1,
  });
  return join(result.modelDir, 'step12');
}
