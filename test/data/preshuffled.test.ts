import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { IndexedDatasetWriter } from '../../src/data/indexed-dataset.js';
import { PreshuffledDataset, PreshuffledWriter } from '../../src/data/preshuffled.js';

const dir = mkdtempSync(join(tmpdir(), 'preshuffled-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SEQ = 8;
const BATCH = 4;
const STEPS = 3;
/** Token t of row r: distinct everywhere, so any misplaced row or token shows. */
const token = (row: number, t: number) => 100 * row + t;
const row = (r: number) => Array.from({ length: SEQ + 1 }, (_, t) => token(r, t));

async function writeSteps(name: string): Promise<string> {
  const prefix = join(dir, name);
  const w = PreshuffledWriter.create(prefix, { vocabSize: 50277, seqLength: SEQ });
  for (let s = 0; s < STEPS; s++) {
    const batch = new Int32Array(BATCH * (SEQ + 1));
    for (let j = 0; j < BATCH; j++) batch.set(row(s * BATCH + j), j * (SEQ + 1));
    w.addBatch(batch);
  }
  await w.finish();
  return prefix;
}

test('step s is items [s·B, (s+1)·B), whole rows in training order', async () => {
  const ds = PreshuffledDataset.open(await writeSteps('order'), { seqLength: SEQ });
  assert.equal(ds.length, STEPS * BATCH);
  assert.equal(ds.dtype, 'uint16');
  for (let s = 0; s < STEPS; s++) {
    const expected = Array.from({ length: BATCH }, (_, j) => row(s * BATCH + j)).flat();
    assert.deepEqual(Array.from(ds.batchTokens(s, BATCH)), expected, `step ${s}`);
  }
  assert.deepEqual(Array.from(ds.sample(5)), row(5));
  // Other batch sizes slice the same sequence differently: step 1 of batch 6 is rows 6..11.
  assert.deepEqual(Array.from(ds.batchTokens(1, 6)), [6, 7, 8, 9, 10, 11].flatMap(row));
  assert.throws(() => ds.batchTokens(STEPS, BATCH), {
    name: 'DataError',
    message: /step 3 is past the end: 12 samples make 3 steps of 4/,
  });
  ds.close();
});

test("the bytes are what Pythia's batch viewer slices: rows of seq+1 uint16 back to back", async () => {
  const prefix = await writeSteps('bytes');
  // batch_viewer: dataset[start*B:(end+1)*B] reads the .bin from pointers[start*B] as one block and
  // reshapes to (-1, 2049); here (-1, 9). So the .bin must be the rows' uint16 values in order.
  const bin = readFileSync(`${prefix}.bin`);
  const values = new Uint16Array(bin.buffer, bin.byteOffset, bin.length / 2);
  assert.deepEqual(Array.from(values), Array.from({ length: STEPS * BATCH }, (_, r) => row(r)).flat());
});

test('items of the wrong length are refused when written and when read', async () => {
  const w = PreshuffledWriter.create(join(dir, 'short'), { vocabSize: 100, seqLength: SEQ });
  assert.throws(() => w.addSample([1, 2, 3]), { name: 'DataError', message: /has 3 tokens, expected 9/ });
  assert.throws(() => w.addBatch(new Int32Array(10)), { name: 'DataError' });
  w.abort();
  const prefix = join(dir, 'ragged');
  const raw = IndexedDatasetWriter.create(prefix, { vocabSize: 100 });
  raw.add(row(0));
  raw.add([1, 2]);
  await raw.finish();
  const ds = PreshuffledDataset.open(prefix, { seqLength: SEQ });
  assert.deepEqual(Array.from(ds.sample(0)), row(0));
  assert.throws(() => ds.sample(1), { name: 'FormatError', message: /item 1 has 2 tokens/ });
  assert.throws(() => ds.batchTokens(0, 2), { name: 'FormatError', message: /item 1 has 2 tokens/ });
  ds.close();
});

test("a sharded preshuffled .bin (Pythia's download) reads like the merged file", async () => {
  const prefix = await writeSteps('document');
  const bin = readFileSync(`${prefix}.bin`);
  rmSync(`${prefix}.bin`);
  writeFileSync(`${prefix}-00000-of-00001.bin`, bin.subarray(0, 100));
  writeFileSync(`${prefix}-00001-of-00001.bin`, bin.subarray(100));
  const ds = PreshuffledDataset.open(prefix, { seqLength: SEQ });
  assert.deepEqual(Array.from(ds.batchTokens(2, BATCH)), [8, 9, 10, 11].flatMap(row));
  ds.close();
});
