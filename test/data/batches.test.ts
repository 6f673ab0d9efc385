/**
 * Training order end to end: index maps built and cached under GPT-NeoX's names, loaded back,
 * preshuffled data, and the `pythia batch` command. Expected samples are GPT-NeoX v1.0's (see
 * index-maps-golden.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  openTrainingOrder,
  PreshuffledWriter,
  parseStepRange,
  type TrainingOrderOptions,
} from '../../src/data/batches.js';
import { buildIndexMaps, indexMapFiles } from '../../src/data/index-maps.js';
import { IndexedDatasetWriter } from '../../src/data/indexed-dataset.js';
import { readNpy, writeNpy } from '../../src/formats/npy.js';
import { repoRoot } from '../support/paths.js';
import { PATHS, SIZES, SPLIT_TRAIN } from './index-maps-golden.js';

const dir = mkdtempSync(join(tmpdir(), 'batches-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function writeCorpus(name: string): Promise<string> {
  const prefix = join(dir, name);
  const w = IndexedDatasetWriter.create(prefix, { vocabSize: 50277 });
  SIZES.forEach((size, d) => {
    w.add(Array.from({ length: size }, (_, p) => (1000 * d + p) % 50000));
  });
  await w.finish();
  return prefix;
}

/** ceil(99 · 1 · 1.005) = 100 samples: the golden PATHS case (num_samples 100, L 16, seed 1234). */
const pathsOptions = (data: string): TrainingOrderOptions => ({
  data,
  batchSize: 1,
  seqLength: 16,
  seed: 1234,
  trainIters: 99,
});

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(repoRoot, 'dist/src/cli/main.js'), ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('index maps are built once, saved under GPT-NeoX names, and reloaded to the same order', async () => {
  const prefix = await writeCorpus('paths');
  const first = await openTrainingOrder(pathsOptions(prefix));
  assert.equal(first.indexMaps?.built, true);
  assert.equal(first.indexMaps?.name, 'train_0');
  assert.equal(first.indexMaps?.numSamples, 100);
  const files = indexMapFiles(prefix, 'train_0', 100, 16, 1234);
  assert.deepEqual(first.indexMaps?.files, files);
  for (const f of Object.values(files)) assert.ok(existsSync(f), f);
  const built = Array.from({ length: 117 }, (_, s) => Array.from(first.source.batchTokens(s, 1)));
  first.source.close();
  for (const [k, tokens] of Object.entries(PATHS.samples)) assert.deepEqual(built[Number(k)], tokens);

  assert.deepEqual(Array.from(readNpy(files.docIdx).data, Number), PATHS.docIdx);
  assert.deepEqual(Array.from(readNpy(files.sampleIdx).data, Number), PATHS.sampleIdx);
  assert.deepEqual(readNpy(files.sampleIdx).shape, [PATHS.sampleIdx.length / 2, 2]);
  assert.deepEqual(Array.from(readNpy(files.shuffleIdx).data, Number), PATHS.shuffleIdx);

  const again = await openTrainingOrder(pathsOptions(prefix));
  assert.equal(again.indexMaps?.built, false);
  const loaded = Array.from({ length: 117 }, (_, s) => Array.from(again.source.batchTokens(s, 1)));
  again.source.close();
  assert.deepEqual(loaded, built);
});

test('doc_idx and sample_idx files are byte-identical to those GPT-NeoX v1.0 saves', async () => {
  // Recorded from v1.0's _build_index_mappings (np.save) for the 5 documents of sizes 3,5,2,7,4,
  // num_samples 3, seq_length 4, seed 1234: 10 bytes of magic/version/length, the dict padded to
  // 117 characters and a newline, then the data.
  const prefix = join(dir, 'five');
  const w = IndexedDatasetWriter.create(prefix, { vocabSize: 1000 });
  for (const size of [3, 5, 2, 7, 4]) w.add(new Array(size).fill(7));
  await w.finish();
  const order = await openTrainingOrder({ data: prefix, batchSize: 1, seqLength: 4, seed: 1234, trainIters: 2 }); // ceil(2·1.005) = 3
  order.source.close();
  const npy = (dict: string, data: string) =>
    Buffer.concat([
      Buffer.from('934e554d505901007600', 'hex'),
      Buffer.from(`${dict.padEnd(117)}\n`, 'latin1'),
      Buffer.from(data, 'hex'),
    ]);
  const files = indexMapFiles(prefix, 'train_0', 3, 4, 1234);
  assert.deepEqual(
    readFileSync(files.docIdx),
    npy("{'descr': '<i4', 'fortran_order': False, 'shape': (5,), }", '0400000000000000010000000200000003000000'),
  );
  assert.deepEqual(
    readFileSync(files.sampleIdx),
    npy(
      "{'descr': '<i4', 'fortran_order': False, 'shape': (6, 2), }",
      '000000000000000001000000000000000200000001000000030000000000000004000000020000000400000006000000',
    ),
  );
  // GPT-NeoX saves shuffle_idx as '<u4' here ([3, 2, 1, 0, 4]); ours holds the same values as '<i8'.
  assert.deepEqual(Array.from(readNpy(files.shuffleIdx).data, Number), [3, 2, 1, 0, 4]);
});

test('cached maps are used as found, and maps of other data are refused in one line', async () => {
  const prefix = await writeCorpus('cached');
  const files = indexMapFiles(prefix, 'train_0', 100, 16, 1234);
  const maps = buildIndexMaps({ sizes: Int32Array.from(SIZES), numSamples: 100, seqLength: 16, seed: 1234 });
  const reversed = BigInt64Array.from(Array.from(maps.shuffleIdx).reverse(), BigInt);
  await writeNpy(files.docIdx, { shape: [maps.docIdx.length], data: maps.docIdx });
  await writeNpy(files.sampleIdx, { shape: [maps.sampleIdx.length / 2, 2], data: maps.sampleIdx });
  await writeNpy(files.shuffleIdx, { shape: [reversed.length], data: reversed });
  const order = await openTrainingOrder(pathsOptions(prefix));
  assert.equal(order.indexMaps?.built, false);
  // Reversed, dataset index 1 is the golden shuffle_idx[116]: the golden sample 116.
  assert.deepEqual(Array.from(order.source.batchTokens(1, 1)), PATHS.samples[116]);
  order.source.close();

  const refused = async (fragment: RegExp) => {
    const order = await openTrainingOrder(pathsOptions(prefix)).catch((e: Error) => e);
    const error =
      order instanceof Error
        ? order
        : (() => {
            try {
              order.source.batchTokens(0, 1);
              return new Error('no error');
            } catch (e) {
              return e as Error;
            } finally {
              order.source.close();
            }
          })();
    assert.equal(error.name, 'FormatError', error.message);
    assert.match(error.message, fragment);
    assert.ok(!error.message.includes('\n'));
  };
  await writeNpy(files.docIdx, { shape: [3], data: Int32Array.from([0, 1, 2]) });
  await refused(/doc_idx\.npy: 3 entries are not whole epochs of 40 documents/);
  // Maps built for seq_length 8 saved under the seq_length 16 names: shapes fit, samples do not.
  const other = buildIndexMaps({ sizes: Int32Array.from(SIZES), numSamples: 100, seqLength: 8, seed: 1234 });
  await writeNpy(files.docIdx, { shape: [other.docIdx.length], data: other.docIdx });
  await writeNpy(files.sampleIdx, { shape: [other.sampleIdx.length / 2, 2], data: other.sampleIdx });
  await writeNpy(files.shuffleIdx, {
    shape: [other.shuffleIdx.length],
    data: BigInt64Array.from(other.shuffleIdx, BigInt),
  });
  await refused(/does not have 17 tokens: the index maps were not built from .*cached with seq_length 16/);
  await writeNpy(files.shuffleIdx, { shape: [3], data: BigInt64Array.from([0n, 1n, 2n]) });
  await refused(/shuffle_idx\.npy: 3 entries, but sample_idx has/);
});

test('with a split, training uses the first document range and GPT-NeoX\'s "train" maps', async () => {
  const prefix = await writeCorpus('split');
  // Split mode asks for train_iters · batch samples exactly: 60 · 1.
  const order = await openTrainingOrder({
    data: prefix,
    batchSize: 1,
    seqLength: 16,
    seed: 99,
    trainIters: 60,
    split: '7,2,1',
  });
  assert.equal(order.indexMaps?.name, 'train');
  assert.equal(order.indexMaps?.numSamples, 60);
  assert.ok(existsSync(indexMapFiles(prefix, 'train', 60, 16, 99).shuffleIdx));
  for (const [k, tokens] of Object.entries(SPLIT_TRAIN.samples))
    assert.deepEqual(Array.from(order.source.batchTokens(Number(k), 1)), tokens);
  assert.equal(order.source.length, SPLIT_TRAIN.length);
  order.source.close();
});

test('a preshuffled dataset is read in place, step by step', async () => {
  const prefix = join(dir, 'pre');
  const w = PreshuffledWriter.create(prefix, { vocabSize: 50277, seqLength: 4 });
  for (let r = 0; r < 6; r++) w.addSample([r, r, r, r, r]);
  await w.finish();
  const order = await openTrainingOrder({
    data: prefix,
    batchSize: 2,
    seqLength: 4,
    seed: 1234,
    trainIters: 143000,
    preshuffled: true,
  });
  assert.deepEqual(Array.from(order.source.batchTokens(2, 2)), [4, 4, 4, 4, 4, 5, 5, 5, 5, 5]);
  assert.equal(order.indexMaps, undefined);
  order.source.close();
  await assert.rejects(
    openTrainingOrder({
      data: prefix,
      batchSize: 2,
      seqLength: 4,
      seed: 1234,
      trainIters: 1,
      preshuffled: true,
      split: '1,1',
    }),
    {
      name: 'ConfigError',
    },
  );
});

test('step ranges parse as A up to B', () => {
  assert.deepEqual(parseStepRange('3:7'), { start: 3, end: 7 });
  assert.throws(() => parseStepRange('7:3'), { name: 'ConfigError' });
  assert.throws(() => parseStepRange('x'), { name: 'ConfigError' });
});

test('pythia batch: --json, plain ids, decoded text, --steps to .npy, and one-line errors', async () => {
  const prefix = await writeCorpus('cli');
  const common = ['--data', prefix, '--batch-size', '1', '--seq-len', '16', '--train-iters', '99'];
  const json = cli(['batch', ...common, '--step', '2', '--json']);
  assert.equal(json.status, 0, json.stderr);
  assert.deepEqual(JSON.parse(json.stdout), [PATHS.samples[2]]);
  assert.match(json.stderr, /index maps saved as .*cli_train_0_indexmap_100ns_16sl_1234s_\*_idx\.npy/);

  const plain = cli(['batch', ...common, '--step', '116']);
  assert.equal(plain.status, 0, plain.stderr);
  assert.equal(plain.stdout, `${PATHS.samples[116]!.join(' ')}\n`);

  const out = join(dir, 'steps.npy');
  const range = cli(['batch', ...common, '--steps', '0:3', '--out', out]);
  assert.equal(range.status, 0, range.stderr);
  const saved = readNpy(out);
  assert.equal(saved.dtype, '<u2');
  assert.deepEqual(saved.shape, [3, 17]);
  assert.deepEqual(
    Array.from(saved.data, Number),
    [0, 1, 2].flatMap((k) => PATHS.samples[k]!),
  );

  const past = cli(['batch', ...common, '--step', '117']);
  assert.equal(past.status, 1);
  assert.equal(past.stderr, 'pythia: step 117 is past the end: 117 samples make 117 steps of 1 (steps 0 to 116)\n');
  const missing = cli(['batch', '--data', join(dir, 'nothing'), '--step', '0']);
  assert.equal(missing.status, 1);
  assert.equal(missing.stderr.trim().split('\n').length, 1);
  assert.match(missing.stderr, /^pythia: .*nothing\.idx/);
  const noOut = cli(['batch', ...common, '--steps', '0:2']);
  assert.equal(noOut.status, 1);
  assert.match(noOut.stderr, /^pythia: --steps writes a \.npy file/);

  // Decoding: a word-level vocabulary where id i is "w<i>" (ids 0 and 1 are GPT-NeoX's specials).
  const pre = join(dir, 'words');
  const w = PreshuffledWriter.create(pre, { vocabSize: 100, seqLength: 3 });
  w.addSample([2, 3, 4, 0]);
  w.addSample([5, 6, 7, 8]);
  await w.finish();
  const vocab: Record<string, number> = { '<|endoftext|>': 0, '<|padding|>': 1 };
  for (let i = 2; i < 10; i++) vocab[`w${i}`] = i;
  const tokenizer = join(dir, 'words.json');
  writeFileSync(
    tokenizer,
    JSON.stringify({
      version: '1.0',
      truncation: null,
      padding: null,
      normalizer: null,
      post_processor: null,
      decoder: null,
      added_tokens: [0, 1].map((id) => ({
        id,
        content: id === 0 ? '<|endoftext|>' : '<|padding|>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      })),
      pre_tokenizer: { type: 'Whitespace' },
      model: { type: 'WordLevel', vocab, unk_token: '<|padding|>' },
    }),
  );
  const text = cli([
    'batch',
    '--data',
    pre,
    '--preshuffled',
    '--seq-len',
    '3',
    '--batch-size',
    '2',
    '--step',
    '0',
    '--tokenizer',
    tokenizer,
    '--json',
  ]);
  assert.equal(text.status, 0, text.stderr);
  assert.deepEqual(JSON.parse(text.stdout), ['w2 w3 w4 <|endoftext|>', 'w5 w6 w7 w8']);
});

test('cached maps record what they were built from; maps of data tokenized again, or of an unfinished build, are rebuilt', async () => {
  const prefix = await writeCorpus('stale');
  const files = indexMapFiles(prefix, 'train_0', 100, 16, 1234);
  const first = await openTrainingOrder(pathsOptions(prefix));
  first.source.close();
  const record = JSON.parse(readFileSync(files.inputs, 'utf8')) as { complete: boolean; sizesSha256: string };
  assert.equal(record.complete, true);
  assert.match(record.sizesSha256, /^[0-9a-f]{64}$/);

  // Tokenized again: as many documents (the cached maps' shapes still fit), each one token longer.
  const sizes = SIZES.map((s) => s + 1);
  const rewrite = async (path: string): Promise<void> => {
    const w = IndexedDatasetWriter.create(path, { vocabSize: 50277 });
    sizes.forEach((size, d) => {
      w.add(Array.from({ length: size }, (_, p) => (7 * d + p) % 50000));
    });
    await w.finish();
  };
  await rewrite(prefix);
  await rewrite(join(dir, 'fresh'));
  const again = await openTrainingOrder(pathsOptions(prefix));
  const fresh = await openTrainingOrder(pathsOptions(join(dir, 'fresh')));
  assert.equal(again.indexMaps?.built, true, 'the stale maps were rebuilt');
  for (let s = 0; s < 99; s += 7)
    assert.deepEqual(again.source.batchTokens(s, 1), fresh.source.batchTokens(s, 1), `sample ${s}`);
  again.source.close();
  fresh.source.close();

  // A build killed before its record said "complete".
  writeFileSync(
    files.inputs,
    JSON.stringify({ ...JSON.parse(readFileSync(files.inputs, 'utf8')), complete: false }, null, 2),
  );
  const unfinished = await openTrainingOrder(pathsOptions(prefix));
  assert.equal(unfinished.indexMaps?.built, true);
  unfinished.source.close();
  const settled = await openTrainingOrder(pathsOptions(prefix));
  assert.equal(settled.indexMaps?.built, false, 'and reused once complete');
  settled.source.close();
});
