import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { CompressStream, compress } from 'zstd-napi';
import { readCorpus, readDocuments, readRecords, type CorpusStats } from '../../src/data/corpus.js';
import { DataError, FormatError } from '../../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'pythia-corpus-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string | Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

test('.txt: documents are blocks separated by blank (or all-white) lines; CRLF counts as a newline', async () => {
  const path = file('blocks.txt', '\uFEFFfirst line\nsecond line\n\n\n  \nnext doc\r\nstill next\r\n\r\n\tindented last');
  const records = await collect(readRecords(path));
  assert.deepEqual(records.map((r) => [r.text, r.line]), [
    ['first line\nsecond line', 1],
    ['next doc\nstill next', 6],
    ['\tindented last', 9],
  ]);
});

test('.txt with txtMode file: the whole file, byte for byte, is one document', async () => {
  const text = '\nkeeps\n\nblank lines\r\nand ends without newline';
  assert.deepEqual(await collect(readDocuments(file('whole.txt', text), { txtMode: 'file' })), [text]);
  assert.deepEqual(await collect(readDocuments(file('empty.txt', ''), { txtMode: 'file' })), []);
});

test('.jsonl: the text field is configurable, other fields are kept, blank lines skipped', async () => {
  const path = file('docs.jsonl', [
    JSON.stringify({ text: 'alpha', meta: { pile_set_name: 'Pile-CC' } }),
    '',
    JSON.stringify({ text: 'beta\nwith newline', body: 'other' }),
    JSON.stringify({ text: 'Unicode: 日本語 🎉' }),
  ].join('\n') + '\n');
  const records = await collect(readRecords(path));
  assert.deepEqual(records.map((r) => [r.text, r.line]), [['alpha', 1], ['beta\nwith newline', 3], ['Unicode: 日本語 🎉', 4]]);
  assert.deepEqual(records[0]!.json, { text: 'alpha', meta: { pile_set_name: 'Pile-CC' } });
  const bodyPath = file('body.jsonl', JSON.stringify({ body: 'in body' }) + '\n');
  assert.deepEqual(await collect(readDocuments(bodyPath, { textField: 'body' })), ['in body']);
});

test('.jsonl: an invalid line is a one-line DataError naming file and line, or skipped and counted', async () => {
  const path = file('bad.jsonl', ['{"text": "ok"}', '{"text": "cut', '[1, 2]', '{"title": "no text"}', '{"text": 5}', '{"text": "fine"}'].join('\n'));
  await assert.rejects(collect(readDocuments(path)), (e: Error) => e instanceof DataError && e.message.startsWith(`${path}:2: invalid JSON`) && !e.message.includes('\n'));
  const stats: CorpusStats = { documents: 0, invalidLines: 0 };
  assert.deepEqual(await collect(readDocuments(path, { skipInvalid: true, stats })), ['ok', 'fine']);
  assert.deepEqual(stats, { documents: 2, invalidLines: 4 });
  const missing = file('missing.jsonl', '{"title": "x"}\n');
  await assert.rejects(collect(readDocuments(missing)), { name: 'DataError', message: `${missing}:1: field "text" is missing` });
});

test('invalid UTF-8 is a DataError with the line, not replacement characters', async () => {
  const path = file('latin1.txt', Buffer.concat([Buffer.from('fine\n\ncaf'), Buffer.from([0xe9]), Buffer.from('\n')]));
  await assert.rejects(collect(readDocuments(path)), { name: 'DataError', message: `${path}:3: invalid UTF-8` });
});

test('.jsonl.zst (the Pile format) decodes, including a long-window frame', async () => {
  const lines = Array.from({ length: 2000 }, (_, i) => JSON.stringify({ text: `document ${i} ` + 'x'.repeat(i % 97) }));
  const raw = Buffer.from(lines.join('\n') + '\n');
  const simple = file('simple.jsonl.zst', compress(raw));
  const docs = await collect(readDocuments(simple));
  assert.equal(docs.length, 2000);
  assert.equal(docs[1999], 'document 1999 ' + 'x'.repeat(1999 % 97));
  // A streamed frame (no content size) with a 2^28-byte window: past zstd's default decoder limit of 2^27.
  const chunks: Buffer[] = [];
  for await (const c of Readable.from([raw]).pipe(new CompressStream({ windowLog: 28, enableLongDistanceMatching: true }))) chunks.push(c as Buffer);
  const long = file('long.jsonl.zst', Buffer.concat(chunks));
  assert.deepEqual(await collect(readDocuments(long)), docs);
  const txt = file('blocks.txt.zst', compress(Buffer.from('one\n\ntwo\n')));
  assert.deepEqual(await collect(readDocuments(txt)), ['one', 'two']);
});

test('a truncated or corrupt .zst is a one-line FormatError', async () => {
  const whole = compress(Buffer.from(JSON.stringify({ text: 'y'.repeat(100000) }) + '\n'));
  const cut = file('cut.jsonl.zst', whole.subarray(0, whole.length - 20));
  await assert.rejects(collect(readDocuments(cut)), (e: Error) => e instanceof FormatError && e.message.startsWith(cut) && !e.message.includes('\n'));
  const junk = file('junk.jsonl.zst', Buffer.from('this is not zstd at all'));
  await assert.rejects(collect(readDocuments(junk)), FormatError);
});

test('reading streams: stopping after the first document reads a small part of a large file', async () => {
  const line = JSON.stringify({ text: 'z'.repeat(1000) }) + '\n';
  const path = file('large.jsonl', line.repeat(20000)); // ~20 MB
  let bytes = 0;
  for await (const doc of readDocuments(path, { onBytes: (n) => (bytes += n) })) {
    assert.equal(doc.length, 1000);
    break;
  }
  assert.ok(bytes > 0 && bytes < statSync(path).size / 4, `read ${bytes} bytes`);
});

test('several files read in order; an unknown extension is refused before any reading', async () => {
  const a = file('a.txt', 'A1\n\nA2\n');
  const b = file('b.jsonl', '{"text":"B1"}\n');
  assert.deepEqual((await collect(readCorpus([a, b]))).map((r) => r.text), ['A1', 'A2', 'B1']);
  await assert.rejects(collect(readCorpus([a, join(dir, 'c.csv')])), (e: Error) => e instanceof FormatError && /\.jsonl\.zst/.test(e.message));
});
