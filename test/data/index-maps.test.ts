/**
 * Index maps against GPT-NeoX v1.0 itself.
 *
 * Where the expected values came from: the real v1.0 sources (`git show v1.0:megatron/data/
 * gpt2_dataset.py`, `indexed_dataset.py`, and `build_train_valid_test_datasets` /
 * `get_train_valid_test_split_` from `data_utils.py`), run under python3 with numpy 2.4.6 and
 * torch/megatron stubbed out (helpers.build_sample_idx replaced by v1.0's own commented-out Python
 * `_build_sample_idx`, the same algorithm). The corpus: 40 documents with sizes
 * `np.random.RandomState(7).randint(1, 30, size=40)` and document 11 emptied (size 0), token p of
 * document d = (1000·d + p) % 50000, written with v1.0's MMapIndexedDatasetBuilder (uint16).
 * PATHS: `GPT2Dataset('train_0', …, np.arange(40), ds, num_samples=100, seq_length=16, seed=1234)`.
 * SPLIT_*: `build_train_valid_test_datasets(prefix, …, '7,2,1', [60, 20, 5], 16, seed=99, …)`.
 * The 5-document vectors are those of the notes (gpt-neox-data-and-numerics.md A3.5), re-run
 * with the same harness.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { IndexedDataset, IndexedDatasetWriter } from '../../src/data/indexed-dataset.js';
import {
  buildIndexMaps,
  indexMapFiles,
  numEpochs,
  roundHalfEven,
  splitDocuments,
  trainNumSamples,
} from '../../src/data/index-maps.js';
import { GPT2SampleOrder } from '../../src/data/sample-order.js';

const SIZES = [16, 5, 26, 23, 4, 20, 24, 8, 29, 26, 15, 0, 9, 26, 15, 11, 27, 9, 8, 7, 5, 17, 8, 13, 1, 12, 24, 27, 7, 20, 29, 13, 6, 25, 25, 24, 22, 17, 28, 1];
const PATHS = {
  docIdx: [11, 14, 8, 7, 24, 6, 27, 27, 30, 18, 22, 8, 6, 32, 9, 23, 28, 29, 17, 34, 38, 15, 2, 1, 20, 19, 9, 26, 35, 13, 0, 39, 17, 36, 17, 23, 33, 30, 4, 11, 20, 31, 2, 25, 39, 24, 4, 37, 10, 21, 33, 12, 26, 22, 5, 8, 36, 7, 14, 32, 16, 15, 38, 21, 18, 32, 19, 4, 34, 16, 1, 16, 5, 31, 22, 5, 13, 28, 6, 20, 31, 14, 1, 10, 25, 12, 19, 2, 3, 21, 35, 0, 11, 27, 37, 34, 37, 35, 10, 39, 33, 0, 29, 12, 18, 29, 28, 3, 30, 26, 25, 23, 9, 15, 24, 36, 13, 38, 3, 7],
  sampleIdx: [0, 0, 2, 1, 2, 17, 3, 4, 5, 11, 6, 3, 6, 19, 7, 8, 7, 24, 8, 13, 9, 0, 11, 0, 11, 16, 12, 3, 12, 19, 14, 5, 14, 21, 15, 11, 17, 7, 18, 3, 19, 10, 20, 1, 20, 17, 21, 5, 22, 10, 23, 0, 25, 6, 26, 15, 27, 5, 27, 21, 28, 13, 29, 5, 29, 21, 30, 11, 33, 1, 33, 17, 35, 2, 36, 5, 36, 21, 37, 12, 37, 28, 41, 6, 42, 9, 42, 25, 46, 1, 47, 13, 48, 12, 49, 13, 50, 12, 51, 3, 52, 10, 53, 2, 54, 10, 55, 6, 55, 22, 56, 9, 57, 3, 58, 11, 60, 6, 60, 22, 62, 0, 62, 16, 63, 4, 64, 3, 66, 5, 68, 10, 69, 1, 69, 17, 71, 1, 71, 17, 72, 6, 73, 2, 74, 5, 75, 13, 76, 9, 76, 25, 78, 8, 79, 0, 80, 11, 81, 14, 83, 10, 84, 11, 86, 6, 87, 15, 88, 5, 88, 21, 89, 14, 90, 13, 91, 5, 93, 5, 93, 21, 94, 10, 95, 9, 96, 0, 96, 16, 97, 15, 98, 7, 100, 7, 100, 23, 101, 14, 102, 14, 104, 1, 105, 9, 106, 5, 107, 14, 108, 7, 108, 23, 109, 10, 110, 2, 111, 6, 112, 9, 112, 25, 115, 3, 115, 19, 116, 13, 117, 3, 117, 19, 118, 7, 119, 0],
  shuffleIdx: [107, 53, 6, 99, 54, 44, 31, 77, 5, 70, 48, 113, 40, 32, 59, 7, 29, 65, 91, 63, 74, 9, 92, 13, 104, 0, 94, 60, 3, 10, 115, 52, 4, 14, 103, 110, 78, 105, 51, 66, 26, 93, 106, 82, 43, 100, 97, 71, 68, 73, 50, 23, 34, 37, 101, 85, 95, 58, 39, 112, 116, 41, 19, 45, 22, 21, 72, 47, 96, 12, 24, 56, 25, 38, 30, 17, 86, 11, 1, 28, 90, 109, 102, 27, 89, 108, 62, 49, 111, 83, 61, 64, 16, 20, 15, 75, 8, 80, 81, 69, 76, 18, 35, 84, 87, 117, 42, 33, 88, 36, 55, 57, 98, 46, 67, 79, 114, 2],
  length: 117,
  samples: {
    0: [26010, 26011, 26012, 26013, 26014, 26015, 26016, 26017, 26018, 26019, 26020, 26021, 26022, 26023, 25000, 25001, 25002],
    1: [8006, 8007, 8008, 8009, 8010, 8011, 8012, 8013, 8014, 8015, 8016, 8017, 8018, 8019, 8020, 8021, 8022],
    2: [27019, 27020, 27021, 27022, 27023, 27024, 27025, 27026, 27000, 27001, 27002, 27003, 27004, 27005, 27006, 27007, 27008],
    116: [13013, 13014, 13015, 13016, 13017, 13018, 13019, 13020, 13021, 13022, 13023, 13024, 13025, 38000, 38001, 38002, 38003],
  } as Record<number, number[]>,
};
const SPLIT_TRAIN = {
  docIdx: [15, 14, 20, 25, 4, 10, 7, 6, 14, 2, 0, 4, 11, 10, 21, 22, 17, 6, 16, 25, 16, 18, 0, 26, 5, 18, 23, 8, 24, 3, 15, 13, 14, 5, 3, 1, 0, 11, 19, 7, 22, 10, 5, 26, 22, 19, 23, 13, 6, 21, 4, 9, 17, 16, 8, 18, 9, 27, 19, 2, 15, 11, 21, 25, 20, 24, 12, 8, 2, 3, 20, 9, 27, 26, 23, 27, 24, 13, 12, 17, 12, 1, 7, 1],
  sampleIdx: [0, 0, 1, 5, 3, 1, 5, 1, 6, 2, 7, 10, 8, 2, 9, 3, 9, 19, 10, 9, 13, 5, 14, 6, 15, 5, 17, 4, 17, 20, 18, 12, 19, 1, 20, 5, 20, 21, 22, 2, 23, 2, 23, 18, 24, 10, 25, 6, 27, 1, 27, 17, 29, 3, 29, 19, 31, 1, 31, 17, 32, 7, 33, 8, 34, 4, 34, 20, 36, 8, 39, 1, 41, 1, 42, 2, 42, 18, 43, 14, 44, 6, 46, 7, 47, 10, 48, 0, 48, 16, 49, 8, 51, 3, 51, 19, 53, 0, 53, 16, 54, 5, 54, 21, 56, 0, 56, 16, 57, 6, 57, 22, 59, 4, 59, 20, 60, 10, 62, 15, 64, 2, 67, 3, 67, 19, 68, 6, 68, 22, 69, 12, 71, 0, 71, 16, 72, 6, 72, 22, 73, 11, 74, 3, 75, 6, 75, 22, 77, 10, 78, 0, 79, 7, 82, 0],
  shuffleIdx: [58, 8, 56, 53, 61, 21, 68, 47, 69, 9, 16, 4, 76, 19, 12, 24, 20, 67, 50, 44, 73, 1, 6, 38, 52, 15, 65, 30, 64, 2, 29, 43, 46, 18, 33, 57, 22, 26, 74, 10, 25, 13, 17, 49, 36, 51, 60, 71, 0, 27, 40, 66, 35, 34, 14, 48, 55, 39, 75, 5, 72, 70, 45, 28, 7, 3, 32, 37, 42, 23, 59, 54, 41, 11, 31, 62, 63],
  length: 76,
  samples: {
    0: [15010, 21000, 21001, 21002, 21003, 21004, 21005, 21006, 21007, 21008, 21009, 21010, 21011, 21012, 21013, 21014, 21015],
    5: [26018, 26019, 26020, 26021, 26022, 26023, 5000, 5001, 5002, 5003, 5004, 5005, 5006, 5007, 5008, 5009, 5010],
  } as Record<number, number[]>,
};
const SPLIT_VALID = {
  docIdx: [32, 31, 30, 31, 35, 34, 32, 28, 28, 30, 34, 33, 34, 35, 35, 29, 33, 32, 30, 33, 29, 28, 31, 29],
  sampleIdx: [0, 0, 1, 10, 2, 13, 3, 0, 4, 3, 4, 19, 5, 11, 6, 2, 8, 5, 9, 14, 10, 1, 10, 17, 11, 8, 11, 24, 12, 15, 13, 6, 13, 22, 14, 14, 15, 6, 16, 2, 16, 18, 18, 3, 18, 19, 19, 6, 19, 22, 20, 13, 22, 2, 23, 5],
  shuffleIdx: [17, 11, 13, 22, 10, 2, 6, 24, 3, 16, 19, 0, 23, 1, 18, 9, 26, 4, 14, 5, 21, 15, 7, 20, 25, 8, 12],
  length: 26,
  samples: {
    0: [35014, 35015, 35016, 35017, 35018, 35019, 35020, 35021, 35022, 35023, 29000, 29001, 29002, 29003, 29004, 29005, 29006],
    1: [34017, 34018, 34019, 34020, 34021, 34022, 34023, 34024, 33000, 33001, 33002, 33003, 33004, 33005, 33006, 33007, 33008],
  } as Record<number, number[]>,
};

const dir = mkdtempSync(join(tmpdir(), 'index-maps-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function writeCorpus(): Promise<IndexedDataset> {
  const prefix = join(dir, 'corpus');
  const w = IndexedDatasetWriter.create(prefix, { vocabSize: 50277 });
  SIZES.forEach((size, d) => w.add(Array.from({ length: size }, (_, p) => (1000 * d + p) % 50000)));
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
  for (const [k, tokens] of Object.entries(PATHS.samples)) assert.deepEqual(Array.from(order.sample(Number(k))), tokens, `sample ${k}`);
  // Step 1 with batch 3 is samples 3, 4, 5, back to back.
  const batch = order.batchTokens(1, 3);
  assert.equal(batch.length, 3 * 17);
  assert.deepEqual(Array.from(batch.subarray(17, 34)), Array.from(order.sample(4)));
  assert.throws(() => order.batchTokens(39, 3), { name: 'DataError', message: /step 39 is past the end: 117 samples make 39 steps of 3/ });
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
    for (const [k, tokens] of Object.entries(golden.samples)) assert.deepEqual(Array.from(order.sample(Number(k))), tokens);
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
});

test('cache file names are those GPT-NeoX writes', () => {
  // The names v1.0 wrote in the harness run above.
  const files = indexMapFiles('/d/corpus', 'train_0', 100, 16, 1234);
  assert.equal(files.docIdx, '/d/corpus_train_0_indexmap_100ns_16sl_1234s_doc_idx.npy');
  assert.equal(files.sampleIdx, '/d/corpus_train_0_indexmap_100ns_16sl_1234s_sample_idx.npy');
  assert.equal(files.shuffleIdx, '/d/corpus_train_0_indexmap_100ns_16sl_1234s_shuffle_idx.npy');
  assert.equal(indexMapFiles('/d/corpus', 'valid', 20, 16, 99).docIdx, '/d/corpus_valid_indexmap_20ns_16sl_99s_doc_idx.npy');
});
