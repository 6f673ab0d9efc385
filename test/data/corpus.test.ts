import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type CorpusStats, readCorpus, readDocuments, readRecords } from '../../src/data/corpus.js';
import { defaultZstdDecoder, type ZstdDecoder } from '../../src/data/zstd.js';
import { DataError, FormatError } from '../../src/util/errors.js';
import { repoRoot } from '../support/paths.js';
import { rawZstdFrame } from '../support/zstd.js';

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
  const path = file(
    'blocks.txt',
    '\uFEFFfirst line\nsecond line\n\n\n  \nnext doc\r\nstill next\r\n\r\n\tindented last',
  );
  const records = await collect(readRecords(path));
  assert.deepEqual(
    records.map((r) => [r.text, r.line]),
    [
      ['first line\nsecond line', 1],
      ['next doc\nstill next', 6],
      ['\tindented last', 9],
    ],
  );
});

test('.txt with txtMode file: the whole file, byte for byte, is one document', async () => {
  const text = '\nkeeps\n\nblank lines\r\nand ends without newline';
  assert.deepEqual(await collect(readDocuments(file('whole.txt', text), { txtMode: 'file' })), [text]);
  assert.deepEqual(await collect(readDocuments(file('empty.txt', ''), { txtMode: 'file' })), []);
});

test('.jsonl: the text field is configurable, other fields are kept, blank lines skipped', async () => {
  const path = file(
    'docs.jsonl',
    `${[
      JSON.stringify({ text: 'alpha', meta: { pile_set_name: 'Pile-CC' } }),
      '',
      JSON.stringify({ text: 'beta\nwith newline', body: 'other' }),
      JSON.stringify({ text: 'Unicode: 日本語 🎉' }),
    ].join('\n')}\n`,
  );
  const records = await collect(readRecords(path));
  assert.deepEqual(
    records.map((r) => [r.text, r.line]),
    [
      ['alpha', 1],
      ['beta\nwith newline', 3],
      ['Unicode: 日本語 🎉', 4],
    ],
  );
  assert.deepEqual(records[0]!.json, { text: 'alpha', meta: { pile_set_name: 'Pile-CC' } });
  const bodyPath = file('body.jsonl', `${JSON.stringify({ body: 'in body' })}\n`);
  assert.deepEqual(await collect(readDocuments(bodyPath, { textField: 'body' })), ['in body']);
});

test('.jsonl: an invalid line is a one-line DataError naming file and line, or skipped and counted', async () => {
  const path = file(
    'bad.jsonl',
    ['{"text": "ok"}', '{"text": "cut', '[1, 2]', '{"title": "no text"}', '{"text": 5}', '{"text": "fine"}'].join('\n'),
  );
  await assert.rejects(
    collect(readDocuments(path)),
    (e: Error) =>
      e instanceof DataError && e.message.startsWith(`${path}:2: invalid JSON`) && !e.message.includes('\n'),
  );
  const stats: CorpusStats = { documents: 0, invalidLines: 0 };
  assert.deepEqual(await collect(readDocuments(path, { skipInvalid: true, stats })), ['ok', 'fine']);
  assert.deepEqual(stats, { documents: 2, invalidLines: 4 });
  const missing = file('missing.jsonl', '{"title": "x"}\n');
  await assert.rejects(collect(readDocuments(missing)), {
    name: 'DataError',
    message: `${missing}:1: field "text" is missing`,
  });
});

test('invalid UTF-8 is a DataError with the line, not replacement characters', async () => {
  const path = file('latin1.txt', Buffer.concat([Buffer.from('fine\n\ncaf'), Buffer.from([0xe9]), Buffer.from('\n')]));
  await assert.rejects(collect(readDocuments(path)), { name: 'DataError', message: `${path}:3: invalid UTF-8` });
});

const zstdFixture = (name: string): string => join(repoRoot, 'test/fixtures/zstd', name);
const docsLines = Array.from({ length: 2000 }, (_, i) => `document ${i} ${'x'.repeat(i % 97)}`);
const hasNodeZstd = defaultZstdDecoder() === 'node';
const decoders: ZstdDecoder[] = ['fzstd', 'node'];

for (const zstdDecoder of decoders) {
  const skip = zstdDecoder === 'node' && !hasNodeZstd ? `Node ${process.version} has no built-in zstd` : false;

  test(`.jsonl.zst and .txt.zst (the Pile format) decode with ${zstdDecoder}, also frames that follow one another`, {
    skip,
  }, async () => {
    const simple = zstdFixture('docs.jsonl.zst');
    assert.deepEqual(await collect(readDocuments(simple, { zstdDecoder })), docsLines);
    assert.deepEqual(await collect(readDocuments(zstdFixture('docs.txt.zst'), { zstdDecoder })), ['one', 'two']);
    // Two frames with a skippable frame (magic 0x184D2A5?, a length, that many bytes) between them.
    const skippable = Buffer.alloc(8 + 5);
    skippable.writeUInt32LE(0x184d2a53, 0);
    skippable.writeUInt32LE(5, 4);
    const frame = readFileSync(simple);
    const twice = file('twice.jsonl.zst', Buffer.concat([frame, skippable, frame]));
    assert.deepEqual(await collect(readDocuments(twice, { zstdDecoder })), [...docsLines, ...docsLines]);
  });

  test(`a streamed frame with a 32 MiB window (zstd --long=25), matched 30 MB back, decodes with ${zstdDecoder}`, {
    skip,
  }, async () => {
    const block = Array.from({ length: 128 }, (_, i) => createHash('sha256').update(`block ${i}`).digest('hex')).join(
      '',
    );
    let count = 0;
    let fillerOk = true;
    let first = '';
    let last = '';
    for await (const doc of readDocuments(zstdFixture('far-long25.jsonl.zst'), { zstdDecoder })) {
      if (count === 0) first = doc;
      else if (count <= 30000) fillerOk &&= doc === 'f'.repeat(990);
      last = doc;
      count++;
    }
    assert.equal(count, 30002);
    assert.ok(fillerOk);
    assert.equal(first, block);
    assert.equal(last, block);
  });

  test(`.zst reading streams with ${zstdDecoder}: stopping after the first document reads a small part of the file`, {
    skip,
  }, async () => {
    const line = `${JSON.stringify({ text: 'z'.repeat(1000) })}\n`;
    const path = file(`large-${zstdDecoder}.jsonl.zst`, rawZstdFrame(Buffer.from(line.repeat(20000)))); // ~20 MB
    let bytes = 0;
    for await (const doc of readDocuments(path, { zstdDecoder, onBytes: (n) => (bytes += n) })) {
      assert.equal(doc.length, 1000);
      break;
    }
    assert.ok(bytes > 0 && bytes < statSync(path).size / 4, `read ${bytes} bytes`);
    let count = 0;
    for await (const doc of readDocuments(path, { zstdDecoder })) count += doc.length === 1000 ? 1 : 0;
    assert.equal(count, 20000);
  });

  test(`a truncated or corrupt .zst is a one-line FormatError with ${zstdDecoder}`, { skip }, async () => {
    const whole = readFileSync(zstdFixture('docs.jsonl.zst'));
    const cut = file(`cut-${zstdDecoder}.jsonl.zst`, whole.subarray(0, whole.length - 20));
    await assert.rejects(
      collect(readDocuments(cut, { zstdDecoder })),
      (e: Error) => e instanceof FormatError && e.message.startsWith(cut) && !e.message.includes('\n'),
    );
    const junk = file(`junk-${zstdDecoder}.jsonl.zst`, Buffer.from('this is not zstd at all'));
    await assert.rejects(
      collect(readDocuments(junk, { zstdDecoder })),
      (e: Error) => e instanceof FormatError && e.message.startsWith(junk) && !e.message.includes('\n'),
    );
  });
}

test("a frame with a window past 32 MiB (zstd --long=27): fzstd refuses it in one line; Node's own zstd decodes it", async () => {
  const long = zstdFixture('docs-long27.jsonl.zst');
  await assert.rejects(
    collect(readDocuments(long, { zstdDecoder: 'fzstd' })),
    (e: Error) =>
      e instanceof FormatError &&
      e.message ===
        `${long}: a Zstandard frame with a 128 MiB window (zstd --long) is past what the pure-JavaScript decoder used on Node ${process.version} reads (32 MiB): use Node 22.15 or later, or recompress without --long`,
  );
  if (hasNodeZstd) assert.deepEqual(await collect(readDocuments(long, { zstdDecoder: 'node' })), docsLines);
});

test('reading streams: stopping after the first document reads a small part of a large file', async () => {
  const line = `${JSON.stringify({ text: 'z'.repeat(1000) })}\n`;
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
  assert.deepEqual(
    (await collect(readCorpus([a, b]))).map((r) => r.text),
    ['A1', 'A2', 'B1'],
  );
  await assert.rejects(
    collect(readCorpus([a, join(dir, 'c.csv')])),
    (e: Error) => e instanceof FormatError && /\.jsonl\.zst/.test(e.message),
  );
});
