/**
 * Held-out token rows (src/analysis/held-out.ts) against independent truth: a trained suite's rows
 * are the validation batches its trainer evaluated (their mean loss through our forward pass is the
 * val_loss the trainer logged at the last step), a dataset's rows are its documents' tokens in
 * order (written here), the bits-per-byte factor is tokens / UTF-8 bytes / ln 2 of a known text, and
 * bad requests are refused in one line.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bitsPerByteFactor, hasOwnHeldOut, heldOutTokens, longestHeldOutRow } from '../../src/analysis/held-out.js';
import { IndexedDatasetWriter } from '../../src/data/indexed-dataset.js';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import { forward } from '../../src/model/forward.js';
import { readLog } from '../../src/train/run-folder.js';
import { ConfigError, DataError } from '../../src/util/errors.js';
import { makeWorld } from '../eval/support.js';
import { fixtureDir } from '../support/paths.js';
import { type TinySuite, trainTinySuite } from '../support/tiny-suite.js';

const dir = mkdtempSync(join(tmpdir(), 'pythia-held-out-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("a trained suite's own held-out rows", () => {
  let tiny: TinySuite;
  // Two validation batches of 4 at every evaluation.
  before(() => {
    tiny = trainTinySuite(dir, 2);
  });

  test('are the batches the trainer validated on: their mean loss is the val_loss logged at the last step', async () => {
    const last = tiny.step(4);
    const sample = tiny.seqLength + 1;
    const held = await heldOutTokens(last, { rows: 8, length: sample });
    assert.equal(held.rows, 8);
    assert.equal(held.length, sample);
    assert.match(held.description, /held-out batches after the last training batch/);
    const { config, params } = loadCheckpoint(last);
    const { loss } = await forward(
      config,
      params,
      BigInt64Array.from(held.tokens, BigInt),
      8,
      { loss: true },
      {
        threads: 1,
      },
    );
    const logged = readLog(tiny.log).find((e) => e.step === 4)!.val_loss!;
    assert.ok(Math.abs(loss! - logged) < 1e-5, `loss ${loss}, logged val_loss ${logged}`);
    // Every checkpoint of the run reads the same rows.
    assert.equal((await heldOutTokens(tiny.step(1), { rows: 8, length: sample })).sha256, held.sha256);
  });

  test('fewer rows or shorter rows are the first of those, and the sha256 is that of their int32 bytes', async () => {
    const whole = await heldOutTokens(tiny.step(4), { rows: 8, length: 65 });
    const part = await heldOutTokens(tiny.step(4), { rows: 3, length: 10 });
    assert.deepEqual(
      Array.from(part.tokens),
      [0, 1, 2].flatMap((r) => Array.from(whole.tokens.subarray(r * 65, r * 65 + 10))),
    );
    assert.equal(part.sha256, createHash('sha256').update(Buffer.from(part.tokens.buffer)).digest('hex'));
  });

  test('the longest row is a training sample, or the context + 1 for a dataset', () => {
    assert.ok(hasOwnHeldOut(tiny.step(4)));
    assert.equal(longestHeldOutRow(tiny.step(4), 128), 65);
    assert.equal(longestHeldOutRow(tiny.step(4), 32), 33);
    assert.equal(longestHeldOutRow(tiny.step(4), 128, tiny.data), 129);
  });

  test('a row longer than a training sample is refused in one line', async () => {
    await assert.rejects(
      heldOutTokens(tiny.step(4), { rows: 1, length: 66 }),
      (e: Error) =>
        e instanceof ConfigError && /length: 66 is longer than a training sample \(65 tokens\)/.test(e.message),
    );
  });

  test('a checkpoint copied without its training record has no held-out text of its own: --data is asked for', async () => {
    const bare = join(dir, 'bare');
    cpSync(tiny.step(4), bare, { recursive: true, filter: (src) => !src.endsWith('trainer_state.json') });
    assert.equal(hasOwnHeldOut(bare), false);
    const noData = (e: Error) =>
      e instanceof ConfigError && /records no training data.*--data <prefix>/.test(e.message);
    await assert.rejects(heldOutTokens(bare, { rows: 1, length: 8 }), noData);
    assert.throws(() => longestHeldOutRow(bare, 128), noData);
    // With a dataset it reads that.
    assert.equal((await heldOutTokens(bare, { rows: 2, length: 8, data: tiny.data })).rows, 2);
  });
});

describe('a dataset prefix', () => {
  const prefix = join(dir, 'docs', 'docs');
  before(async () => {
    const writer = IndexedDatasetWriter.create(prefix, { vocabSize: 100 });
    for (const doc of [
      [1, 2, 3],
      [4, 5],
      [6, 7, 8, 9, 10],
    ]) {
      writer.add(doc);
      writer.endDocument();
    }
    await writer.finish();
  });

  test("gives its documents' tokens in order, cut into rows; whole rows only", async () => {
    const held = await heldOutTokens(fixtureDir('parallel-r25'), { rows: 3, length: 3, data: prefix });
    assert.deepEqual(Array.from(held.tokens), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(held.rows, 3);
    assert.match(held.description, /the first 3 × 3 tokens of /);
    // 10 tokens make two rows of 4, not three.
    const fewer = await heldOutTokens(fixtureDir('parallel-r25'), { rows: 5, length: 4, data: prefix });
    assert.equal(fewer.rows, 2);
    assert.deepEqual(Array.from(fewer.tokens), [1, 2, 3, 4, 5, 6, 7, 8]);
  });

  test('too short for one row, or a bad request, is refused in one line', async () => {
    await assert.rejects(
      heldOutTokens(dir, { rows: 1, length: 11, data: prefix }),
      (e: Error) => e instanceof DataError && /10 tokens make no row of 11/.test(e.message),
    );
    for (const request of [
      { rows: 0, length: 4 },
      { rows: 1, length: 2.5 },
    ])
      await assert.rejects(heldOutTokens(dir, { ...request, data: prefix }), ConfigError);
  });
});

test("bits per byte: tokens / the text's UTF-8 bytes / ln 2, a special token counted as its text", async () => {
  const { tokenizer } = await makeWorld(mkdtempSync(join(dir, 'world-')));
  const text = 'Café — naïve 猫 sat on the mat.<|endoftext|>The river';
  const ids = await tokenizer.encode(text);
  assert.equal(tokenizer.decode(ids), text);
  assert.ok(ids.includes(tokenizer.eodId));
  const expected = ids.length / Buffer.byteLength(text, 'utf8') / Math.LN2;
  assert.ok(Math.abs(bitsPerByteFactor(tokenizer, Int32Array.from(ids), 1)! - expected) < 1e-12);
  // Two rows: the bytes of each.
  const second = await tokenizer.encode('The cat sat on the mat.');
  const rows = [ids.slice(0, second.length), second];
  const bytes = Buffer.byteLength(tokenizer.decode(rows[0]!), 'utf8') + Buffer.byteLength('The cat sat on the mat.');
  const factor = bitsPerByteFactor(tokenizer, Int32Array.from(rows.flat()), 2)!;
  assert.ok(Math.abs(factor - (2 * second.length) / bytes / Math.LN2) < 1e-12);
});
