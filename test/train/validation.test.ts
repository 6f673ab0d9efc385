import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { openTrainingOrder } from '../../src/data/batches.js';
import { buildIndexMaps, indexMapFiles } from '../../src/data/index-maps.js';
import { IndexedDatasetWriter } from '../../src/data/indexed-dataset.js';
import { openValidation, type ValidationBatches } from '../../src/train/validation.js';
import { Prng } from '../../src/util/prng.js';

const work = mkdtempSync(join(tmpdir(), 'pythia-validation-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** 100 documents of seeded lengths; every token of document d is d, so a token says which document it came from. */
async function writeDocs(prefix: string): Promise<number[]> {
  const writer = IndexedDatasetWriter.create(prefix, { vocabSize: 128 });
  const rng = new Prng(5);
  const sizes: number[] = [];
  for (let d = 0; d < 100; d++) {
    sizes.push(3 + rng.int(12));
    writer.add(new Array<number>(sizes[d]!).fill(d));
  }
  await writer.finish();
  return sizes;
}

test('with --split, validation batches come from GPT-NeoX\'s "valid" dataset, one window per evaluation', async () => {
  const prefix = join(work, 'split', 'docs');
  const sizes = await writeDocs(prefix);
  const [B, L, T, E, I] = [2, 8, 6, 3, 2];
  const split = '8,2'; // documents [0, 80) train, [80, 100) validate
  const order = await openTrainingOrder({ data: prefix, batchSize: B, seqLength: L, seed: 1234, trainIters: T, split });
  const opened = await openValidation({
    data: { prefix, split, preshuffled: false },
    train: order.source,
    batchSize: B,
    seqLength: L,
    seed: 1234,
    trainIters: T,
    evalIters: E,
    evalInterval: I,
  });
  assert.notEqual(typeof opened, 'string');
  const valid = opened as ValidationBatches;
  try {
    // GPT-NeoX sizes it for (train_iters // eval_interval + 1) * eval_iters batches and names it "valid".
    const numSamples = (Math.floor(T / I) + 1) * E * B;
    assert.ok(existsSync(indexMapFiles(prefix, 'valid', numSamples, L, 1234).shuffleIdx));
    // The same samples from the index maps built directly, read by the closed form stream[i*L, i*L + L + 1).
    const maps = buildIndexMaps({
      sizes: Int32Array.from(sizes),
      documents: { start: 80, stop: 100 },
      numSamples,
      seqLength: L,
      seed: 1234,
    });
    const stream = [...maps.docIdx].flatMap((d) => new Array<number>(sizes[d]!).fill(d));
    const sample = (k: number): number[] => stream.slice(maps.shuffleIdx[k]! * L, maps.shuffleIdx[k]! * L + L + 1);
    const windowOf: [number, number][] = [
      [I, 0],
      [2 * I, 1],
      [1, 0],
      [3, 1],
      [T, Math.floor(T / I)],
      [0, 0],
    ];
    for (const [step, window] of windowOf) {
      for (let j = 0; j < E; j++) {
        const tokens = [...valid.batch(step, j)];
        const expected = [0, 1].flatMap((row) => sample((window * E + j) * B + row));
        assert.deepEqual(tokens, expected, `step ${step} batch ${j}`);
        assert.ok(
          tokens.every((t) => t >= 80),
          'only validation documents',
        );
      }
    }
  } finally {
    valid.close();
    order.source.close();
  }
});

test('without --split, validation is the batches held out after the last training batch', async () => {
  const prefix = join(work, 'held-out', 'docs');
  await writeDocs(prefix);
  const order = await openTrainingOrder({ data: prefix, batchSize: 2, seqLength: 8, seed: 1234, trainIters: 4 });
  try {
    const opened = await openValidation({
      data: { prefix, preshuffled: false },
      train: order.source,
      batchSize: 2,
      seqLength: 8,
      seed: 1234,
      trainIters: 4,
      evalIters: 2,
    });
    const valid = opened as ValidationBatches;
    assert.deepEqual(valid.batch(3, 1), order.source.batchTokens(5, 2));
    const none = await openValidation({
      data: { prefix, preshuffled: false },
      train: order.source,
      batchSize: 2,
      seqLength: 8,
      seed: 1234,
      trainIters: 4,
      evalIters: 10_000,
    });
    assert.match(none as string, /has no 10000 batches left after the 4 training batches/);
  } finally {
    order.source.close();
  }
});
