/** Index maps against GPT-NeoX v1.0 itself; see index-maps-golden.ts for where the numbers came from. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  buildIndexMaps,
  indexMapFiles,
  numEpochs,
  roundHalfEven,
  splitDocuments,
  trainNumSamples,
} from '../../src/data/index-maps.js';
import { IndexedDataset, IndexedDatasetWriter } from '../../src/data/indexed-dataset.js';
import { RandomState } from '../../src/data/random-state.js';
import { GPT2SampleOrder } from '../../src/data/sample-order.js';
import { PATHS, SIZES, SPLIT_TRAIN, SPLIT_VALID } from './index-maps-golden.js';

const dir = mkdtempSync(join(tmpdir(), 'index-maps-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function writeCorpus(): Promise<IndexedDataset> {
  const prefix = join(dir, 'corpus');
  const w = IndexedDatasetWriter.create(prefix, { vocabSize: 50277 });
  SIZES.forEach((size, d) => {
    w.add(Array.from({ length: size }, (_, p) => (1000 * d + p) % 50000));
  });
  await w.finish();
  return IndexedDataset.open(prefix);
}

test('the 5-document golden vectors of the notes (sizes 3,5,2,7,4; L=4; seed 1234)', () => {
  const sizes = Int32Array.from([3, 5, 2, 7, 4]);
  const cases: [number, number, number[], number[]][] = [
    [3, 1, [4, 0, 1, 2, 3], [3, 2, 1, 0, 4]],
    [6, 2, [2, 2, 4, 1, 0, 3, 4, 0, 1, 3], [7, 3, 5, 1, 4, 8, 0, 2, 6, 9]],
    [12, 3, [3, 1, 0, 2, 4, 2, 0, 2, 1, 4, 3, 4, 0, 1, 3], [9, 7, 4, 3, 11, 2, 13, 1, 12, 5, 0, 8, 14, 6, 10]],
  ];
  for (const [numSamples, epochs, docIdx, shuffleIdx] of cases) {
    const maps = buildIndexMaps({ sizes, numSamples, seqLength: 4, seed: 1234 });
    assert.equal(maps.numEpochs, epochs);
    assert.deepEqual(Array.from(maps.docIdx), docIdx);
    assert.deepEqual(Array.from(maps.shuffleIdx), shuffleIdx);
    if (numSamples === 3) assert.deepEqual(Array.from(maps.sampleIdx), [0, 0, 1, 0, 2, 1, 3, 0, 4, 2, 4, 6]);
  }
});

test('Pythia mode (all documents, train_0): doc_idx, sample_idx, shuffle_idx and samples equal GPT-NeoX', async () => {
  const sizes = Int32Array.from(SIZES);
  const maps = buildIndexMaps({ sizes, numSamples: 100, seqLength: 16, seed: 1234 });
  assert.equal(maps.numEpochs, 3);
  assert.equal(maps.tokensPerEpoch, 632);
  assert.deepEqual(Array.from(maps.docIdx), PATHS.docIdx);
  assert.deepEqual(Array.from(maps.sampleIdx), PATHS.sampleIdx);
  assert.deepEqual(Array.from(maps.shuffleIdx), PATHS.shuffleIdx);
  const ds = await writeCorpus();
  const order = new GPT2SampleOrder(ds, maps, 16);
  assert.equal(order.length, PATHS.length);
  for (const [k, tokens] of Object.entries(PATHS.samples))
    assert.deepEqual(Array.from(order.sample(Number(k))), tokens, `sample ${k}`);
  // Step 1 with batch 3 is samples 3, 4, 5, back to back.
  const batch = order.batchTokens(1, 3);
  assert.equal(batch.length, 3 * 17);
  assert.deepEqual(Array.from(batch.subarray(17, 34)), Array.from(order.sample(4)));
  assert.throws(() => order.batchTokens(39, 3), {
    name: 'DataError',
    message: /step 39 is past the end: 117 samples make 39 steps of 3/,
  });
  ds.close();
});

test('split mode (train and valid ranges of "7,2,1"): maps over absolute document indices equal GPT-NeoX', async () => {
  const sizes = Int32Array.from(SIZES);
  const [, trainEnd, validEnd] = splitDocuments('7,2,1', 40);
  assert.deepEqual(splitDocuments('7,2,1', 40), [0, 28, 36, 40]);
  const ds = await writeCorpus();
  const cases = [
    { documents: { start: 0, stop: trainEnd }, numSamples: 60, golden: SPLIT_TRAIN },
    { documents: { start: trainEnd, stop: validEnd }, numSamples: 20, golden: SPLIT_VALID },
  ];
  for (const { documents, numSamples, golden } of cases) {
    const maps = buildIndexMaps({ sizes, documents, numSamples, seqLength: 16, seed: 99 });
    assert.deepEqual(Array.from(maps.docIdx), golden.docIdx);
    assert.deepEqual(Array.from(maps.sampleIdx), golden.sampleIdx);
    assert.deepEqual(Array.from(maps.shuffleIdx), golden.shuffleIdx);
    const order = new GPT2SampleOrder(ds, maps, 16);
    assert.equal(order.length, golden.length);
    for (const [k, tokens] of Object.entries(golden.samples))
      assert.deepEqual(Array.from(order.sample(Number(k))), tokens);
  }
  ds.close();
});

test('split weights: Python float parsing, half-to-even rounding and the diff correction', () => {
  // get_train_valid_test_split_ of v1.0, run with the harness above.
  assert.deepEqual(splitDocuments('969, 30, 1', 1000), [0, 969, 999, 1000]);
  assert.deepEqual(splitDocuments('969, 30, 1', 101), [0, 98, 101, 101]);
  assert.deepEqual(splitDocuments('1,1', 5), [0, 3, 5, 5]);
  assert.deepEqual(splitDocuments('1/2', 7), [0, 2, 7, 7]);
  assert.deepEqual(splitDocuments('100', 9), [0, 9, 9, 9]);
  assert.deepEqual(splitDocuments('1,1,1,5', 10), [0, 4, 7, 10]);
  assert.throws(() => splitDocuments('9x,1', 10), { name: 'ConfigError' });
  assert.throws(() => splitDocuments('0,0', 10), { name: 'ConfigError' });
  // Python: round(0.5) = 0, round(1.5) = 2, round(2.5) = 2, round(-0.5) = -0
  assert.deepEqual([0.5, 1.5, 2.5, 3.5, 2.4999, 2.5001].map(roundHalfEven), [0, 2, 2, 4, 2, 3]);
});

test('sample counts and epochs as GPT-NeoX computes them', () => {
  // math.ceil(143000 * 1024 * 1.0 * 1.005) in Python float64 = 147164160
  assert.equal(trainNumSamples(143000, 1024, 'paths'), 147164160);
  assert.equal(trainNumSamples(143000, 1024, 'split'), 146432000);
  assert.equal(trainNumSamples(10, 4, 'paths'), 41); // ceil(40.199999999999996)
  assert.equal(numEpochs(632, 16, 100), 3);
  assert.equal(numEpochs(632, 16, 39), 1); // (632 - 1) // 16 = 39
  assert.equal(numEpochs(632, 16, 40), 2);
  assert.throws(() => numEpochs(1, 16, 4), { name: 'DataError' });
  // Against GPT-NeoX's own loop (`_num_epochs`, transliterated), boundaries included.
  const loop = (tokens: number, seq: number, samples: number) => {
    let epochs = 0;
    let total = 0;
    for (;;) {
      epochs += 1;
      total += tokens;
      if (Math.floor((total - 1) / seq) >= samples) return epochs;
    }
  };
  const rs = new RandomState(11);
  for (let trial = 0; trial < 2000; trial++) {
    const tokens = 2 + rs.randint(0, 5000);
    const seq = 2 + rs.randint(0, 64);
    const samples = 1 + rs.randint(0, 2000);
    for (const n of [samples, Math.floor((tokens - 1) / seq), Math.floor((tokens - 1) / seq) + 1].filter(
      (n) => n >= 1,
    )) {
      assert.equal(numEpochs(tokens, seq, n), loop(tokens, seq, n), `T ${tokens} L ${seq} N ${n}`);
    }
  }
});

test('cache file names are those GPT-NeoX writes', () => {
  // The names v1.0 wrote in the harness run above.
  const files = indexMapFiles('/d/corpus', 'train_0', 100, 16, 1234);
  assert.equal(files.docIdx, '/d/corpus_train_0_indexmap_100ns_16sl_1234s_doc_idx.npy');
  assert.equal(files.sampleIdx, '/d/corpus_train_0_indexmap_100ns_16sl_1234s_sample_idx.npy');
  assert.equal(files.shuffleIdx, '/d/corpus_train_0_indexmap_100ns_16sl_1234s_shuffle_idx.npy');
  assert.equal(
    indexMapFiles('/d/corpus', 'valid', 20, 16, 99).docIdx,
    '/d/corpus_valid_indexmap_20ns_16sl_99s_doc_idx.npy',
  );
});
