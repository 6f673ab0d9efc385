import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { bestFittingDtype, IndexedDataset, IndexedDatasetWriter } from '../../src/data/indexed-dataset.js';
import { RandomState } from '../../src/data/random-state.js';

const dir = mkdtempSync(join(tmpdir(), 'indexed-dataset-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function write(name: string, docs: number[][], vocabSize: number): Promise<string> {
  const prefix = join(dir, name);
  const w = IndexedDatasetWriter.create(prefix, { vocabSize });
  for (const d of docs) w.add(d);
  await w.finish();
  return prefix;
}

const hex = (path: string) => readFileSync(path).toString('hex');

/** Expects a one-line error of the given class mentioning `fragment`. */
function assertOneLine(fn: () => unknown, name: string, fragment: RegExp): void {
  assert.throws(fn, (e: Error) => {
    assert.equal(e.name, name);
    assert.match(e.message, fragment);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    return true;
  });
}

test('writer output is byte-identical to GPT-NeoX MMapIndexedDataset (uint16 and int32)', async () => {
  // Expected bytes: a numpy transliteration of GPT-NeoX v1.0 `MMapIndexedDataset.Index.writer().write`
  // (header, int32 sizes, cumsum pointers × itemsize as int64, doc_idx [0..N] as int64) and of
  // `add_item` (`np.array(tokens, dtype).tobytes()`), run with numpy 2.4.6.
  const small = await write('u16', [[5, 6, 7], [65535], [0, 1]], 50277);
  assert.equal(
    hex(`${small}.idx`),
    '4d4d49444944580000010000000000000008030000000000000004000000000000000300000001000000020000000000000000000000060000000000000008000000000000000000000000000000010000000000000002000000000000000300000000000000',
  );
  assert.equal(hex(`${small}.bin`), '050006000700ffff00000100');
  const wide = await write('i32', [[70000, -1], [2 ** 31 - 1]], 70000);
  assert.equal(
    hex(`${wide}.idx`),
    '4d4d4944494458000001000000000000000402000000000000000300000000000000020000000100000000000000000000000800000000000000000000000000000001000000000000000200000000000000',
  );
  assert.equal(hex(`${wide}.bin`), '70110100ffffffffffffff7f');
});

test('dtype follows GPT-NeoX best_fitting_dtype: uint16 below 65500 tokens, else int32', () => {
  assert.equal(bestFittingDtype(50277), 'uint16');
  assert.equal(bestFittingDtype(65499), 'uint16');
  assert.equal(bestFittingDtype(65500), 'int32');
});

test('round trip: documents, parts of documents, runs of items, sizes and doc_idx', async () => {
  const rs = new RandomState(3);
  const docs = Array.from({ length: 300 }, () => Array.from({ length: rs.randint(0, 40) }, () => rs.randint(0, 50277)));
  const prefix = await write('roundtrip', docs, 50277);
  const ds = IndexedDataset.open(`${prefix}.bin`);
  try {
    assert.equal(ds.length, 300);
    assert.equal(ds.dtype, 'uint16');
    assert.deepEqual(
      Array.from(ds.sizes),
      docs.map((d) => d.length),
    );
    assert.deepEqual(
      Array.from(ds.docIdx, Number),
      Array.from({ length: 301 }, (_, i) => i),
    );
    assert.equal(
      ds.totalTokens,
      docs.reduce((s, d) => s + d.length, 0),
    );
    for (let i = 0; i < docs.length; i++) assert.deepEqual(Array.from(ds.document(i)), docs[i]);
    const long = docs.findIndex((d) => d.length > 20);
    assert.deepEqual(Array.from(ds.read(long, 5, 10)), docs[long]!.slice(5, 15));
    const run = ds.readItems(10, 7);
    assert.deepEqual(Array.from(run.tokens), docs.slice(10, 17).flat());
    assert.deepEqual(
      Array.from(run.sizes),
      docs.slice(10, 17).map((d) => d.length),
    );
    assert.throws(() => ds.read(long, 5, docs[long]!.length), { name: 'DataError' });
    assert.throws(() => ds.document(300), { name: 'DataError' });
  } finally {
    ds.close();
  }
});

test('the .bin is read with positioned reads of the needed bytes only', async () => {
  const prefix = await write(
    'sparse',
    [
      [1, 2, 3],
      [4, 5, 6],
    ],
    100,
  );
  // Overwrite the first document's bytes on disk: reading the second must not touch them.
  const bin = readFileSync(`${prefix}.bin`);
  bin.fill(0xff, 0, 6);
  writeFileSync(`${prefix}.bin`, bin);
  const ds = IndexedDataset.open(prefix);
  assert.deepEqual(Array.from(ds.document(1)), [4, 5, 6]);
  assert.deepEqual(Array.from(ds.document(0)), [65535, 65535, 65535]);
  ds.close();
});

test('a .bin in Pythia-style shards reads as the whole file', async () => {
  const docs = [[1, 2, 3, 4], [5, 6], [7, 8, 9], [10]];
  const prefix = await write('document', docs, 100);
  const bin = readFileSync(`${prefix}.bin`);
  rmSync(`${prefix}.bin`);
  // Shard boundaries at odd byte offsets, cutting tokens in half, as byte-range shards may.
  writeFileSync(`${prefix}-00000-of-00002.bin`, bin.subarray(0, 7));
  writeFileSync(`${prefix}-00001-of-00002.bin`, bin.subarray(7, 13));
  writeFileSync(`${prefix}-00002-of-00002.bin`, bin.subarray(13));
  const ds = IndexedDataset.open(prefix);
  for (let i = 0; i < docs.length; i++) assert.deepEqual(Array.from(ds.document(i)), docs[i]);
  ds.close();
  rmSync(`${prefix}-00001-of-00002.bin`);
  assertOneLine(() => IndexedDataset.open(prefix), 'FormatError', /shard 00001 of 00002 is missing/);
});

test('abort and failed writes leave no files behind', async () => {
  const sub = join(dir, 'aborted');
  const w = IndexedDatasetWriter.create(join(sub, 'data'), { vocabSize: 100 });
  w.add([1, 2, 3]);
  w.abort();
  assert.deepEqual(readdirSync(sub), []);
  const bad = IndexedDatasetWriter.create(join(sub, 'data'), { vocabSize: 100 });
  assert.throws(() => bad.add([1, 70000]), { name: 'DataError', message: /70000 does not fit uint16/ });
  bad.abort();
  assert.deepEqual(readdirSync(sub), []);
});

test('bad files get one-line FormatErrors', async () => {
  const good = await write(
    'good',
    [
      [1, 2, 3],
      [4, 5],
    ],
    100,
  );
  const goodIdx = readFileSync(`${good}.idx`);
  const goodBin = readFileSync(`${good}.bin`);
  const variant = (name: string, idx: Uint8Array, bin: Uint8Array = goodBin) => {
    const prefix = join(dir, name);
    writeFileSync(`${prefix}.idx`, idx);
    writeFileSync(`${prefix}.bin`, bin);
    return prefix;
  };
  const patched = (offset: number, bytes: number[]) => {
    const copy = Buffer.from(goodIdx);
    copy.set(bytes, offset);
    return copy;
  };
  assertOneLine(() => IndexedDataset.open(variant('magic', patched(0, [0x54, 0x4e, 0x54]))), 'FormatError', /magic/);
  assertOneLine(
    () => IndexedDataset.open(variant('version', patched(9, [2]))),
    'FormatError',
    /version is 2, expected 1/,
  );
  assertOneLine(() => IndexedDataset.open(variant('dtype', patched(17, [9]))), 'FormatError', /dtype code is 9/);
  assertOneLine(
    () => IndexedDataset.open(variant('header', goodIdx.subarray(0, 20))),
    'FormatError',
    /truncated: 20 bytes/,
  );
  assertOneLine(
    () => IndexedDataset.open(variant('body', goodIdx.subarray(0, goodIdx.length - 8))),
    'FormatError',
    /truncated/,
  );
  assertOneLine(
    () => IndexedDataset.open(variant('short', goodIdx, goodBin.subarray(0, 8))),
    'FormatError',
    /shorter than the index says/,
  );
  // pointers[1] at byte 34 + 4·2 + 8: claim 2 instead of 6.
  assertOneLine(
    () => IndexedDataset.open(variant('pointers', patched(34 + 8 + 8, [2]))),
    'FormatError',
    /pointers\[1\] is 2, expected 6/,
  );
  const trailing = variant('trailing', Buffer.concat([goodIdx, Buffer.alloc(3)]));
  assertOneLine(() => IndexedDataset.open(trailing), 'FormatError', /3 bytes past the end/);
  const missingBin = join(dir, 'nobin');
  writeFileSync(`${missingBin}.idx`, goodIdx);
  assertOneLine(() => IndexedDataset.open(missingBin), 'FormatError', /nobin\.bin: no such file/);
});

test('a .bin truncated after opening is caught on read', async () => {
  const prefix = await write(
    'later',
    [
      [1, 2, 3],
      [4, 5],
    ],
    100,
  );
  const ds = IndexedDataset.open(prefix);
  truncateSync(`${prefix}.bin`, 4);
  assert.throws(
    () => ds.document(1),
    (e: Error) => /shrank|past the end|shorter/.test(e.message),
  );
  ds.close();
  assert.equal(statSync(`${prefix}.idx`).size, 34 + 12 * 2 + 8 * 3);
});
