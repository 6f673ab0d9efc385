import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Tokenizer } from 'tokenizers';
import { trainBpe, writeTokenizerJson } from '../../src/data/bpe-trainer.js';
import { IndexedDataset } from '../../src/data/indexed-dataset.js';
import { splitAtSafeCuts, tokenizeCorpus } from '../../src/data/tokenize.js';
import { loadTokenizer, safeToSplit, type TextTokenizer } from '../../src/data/tokenizer.js';
import { DataError } from '../../src/util/errors.js';
import { repoRoot } from '../support/paths.js';
import { rawZstdFrame } from '../support/zstd.js';

const dir = mkdtempSync(join(tmpdir(), 'pythia-tokenize-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const JSONL_DOCS = [
  'The first document.\nIt has two lines.',
  '',
  'Unicode too: naïve café, 日本語, 🎉.',
  '   leading spaces and a tab\tinside',
];
const TXT = 'A text block\nover two lines\n\nSecond block <|endoftext|> with EOD inside\n';
const TXT_DOCS = ['A text block\nover two lines', 'Second block <|endoftext|> with EOD inside'];

let tokenizerPath: string;
let tokenizer: TextTokenizer;
let reference: Tokenizer;
let inputs: string[];

before(async () => {
  tokenizerPath = join(dir, 'tokenizer.json');
  await writeTokenizerJson(
    tokenizerPath,
    await trainBpe([...JSONL_DOCS, ...TXT_DOCS, 'more words for merges '.repeat(20)], { vocabSize: 320 }),
  );
  tokenizer = await loadTokenizer(tokenizerPath);
  reference = Tokenizer.fromFile(tokenizerPath);
  const jsonl = `${JSONL_DOCS.map((text, i) => JSON.stringify({ text, meta: { i } })).join('\n')}\n`;
  inputs = [join(dir, 'a.jsonl.zst'), join(dir, 'b.txt')];
  writeFileSync(inputs[0]!, rawZstdFrame(Buffer.from(jsonl)));
  writeFileSync(inputs[1]!, TXT);
});

/** What GPT-NeoX preprocess_data writes: each non-empty document's ids, plus EOD when asked. */
async function expectedItems(appendEod: boolean): Promise<number[][]> {
  const docs = [...JSONL_DOCS, ...TXT_DOCS].filter((d) => d.length > 0);
  return Promise.all(docs.map(async (d) => [...(await reference.encode(d)).getIds(), ...(appendEod ? [0] : [])]));
}

function readItems(prefix: string): number[][] {
  const ds = IndexedDataset.open(prefix);
  try {
    return Array.from({ length: ds.length }, (_, i) => Array.from(ds.document(i)));
  } finally {
    ds.close();
  }
}

test('one item per non-empty document, ids as the tokenizers package encodes them, EOD appended on request', async () => {
  for (const appendEod of [false, true]) {
    const out = join(dir, `ds-${appendEod}`);
    // batchChars 16: many small batches in flight, so order across batches is exercised.
    const summary = await tokenizeCorpus({ inputs, tokenizer, out, appendEod, batchChars: 16 });
    const expected = await expectedItems(appendEod);
    assert.deepEqual(readItems(out), expected);
    assert.equal(summary.documents, expected.length);
    assert.equal(summary.tokens, expected.flat().length);
    assert.equal(summary.emptyDocuments, 1);
    assert.equal(summary.dtype, 'uint16');
    const ds = IndexedDataset.open(out);
    assert.equal(ds.dtype, 'uint16');
    assert.equal(tokenizer.decode(Array.from(ds.document(4))), TXT_DOCS[1] + (appendEod ? '<|endoftext|>' : ''));
    ds.close();
  }
});

test('an error part way leaves no .bin, .idx or temporary file behind', async () => {
  const sub = mkdtempSync(join(dir, 'fail-'));
  const bad = join(sub, 'bad.jsonl');
  writeFileSync(bad, '{"text": "fine"}\n{"text": "fine too"}\nnot json\n');
  await assert.rejects(
    tokenizeCorpus({ inputs: [inputs[1]!, bad], tokenizer, out: join(sub, 'ds') }),
    (e: Error) => e instanceof DataError && e.message.startsWith(`${bad}:3: invalid JSON (`),
  );
  assert.deepEqual(readdirSync(sub), ['bad.jsonl']);
  const summary = await tokenizeCorpus({ inputs: [bad], tokenizer, out: join(sub, 'ds'), skipInvalid: true });
  assert.equal(summary.invalidLines, 1);
  assert.equal(summary.documents, 2);
});

test('pythia data tokenize writes the dataset and reports; bad input is one line on stderr', () => {
  const cli = join(repoRoot, 'dist/src/cli/main.js');
  const out = join(dir, 'cli-ds');
  const ok = spawnSync(
    process.execPath,
    [cli, 'data', 'tokenize', '--input', ...inputs, '--tokenizer', tokenizerPath, '--out', out, '--append-eod'],
    { encoding: 'utf8' },
  );
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /5 documents, \d+ tokens \(uint16, EOD 0 appended\)/);
  assert.equal(readItems(out).length, 5);
  const missing = spawnSync(
    process.execPath,
    [cli, 'data', 'tokenize', '--input', join(dir, 'nope.jsonl'), '--tokenizer', tokenizerPath, '--out', out],
    { encoding: 'utf8' },
  );
  assert.equal(missing.status, 1);
  assert.equal(missing.stderr, `pythia: ${join(dir, 'nope.jsonl')}: no such file or directory\n`);
});

/** A long synthetic document with what pre-tokenizers treat specially around newlines. */
function longDocument(lines: number): string {
  const parts = [
    'plain words here',
    "'s a contraction at the start",
    '  two leading spaces',
    '\ta tab',
    'digits 12345 and 3.14',
    'punctuation!? (yes) — “quotes”',
    'e\u0301 combining accent',
    '\u0301starts with a mark',
    'CJK 日本語 and 🎉',
    '<|endoftext|> inside',
    'trailing spaces   ',
    '',
    '',
    'carriage\r',
    'x',
    "they're",
    '\u00a0no-break space',
  ];
  let seed = 7;
  const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  return Array.from({ length: lines }, () => parts[next() % parts.length]).join('\n');
}

test('long documents are encoded in pieces with exactly the ids of the whole document', async () => {
  const doc = longDocument(4000);
  // A tokenizer trained on such text, so it has merges of newlines and spaces that a bad cut would break.
  const longPath = join(dir, 'long-tokenizer.json');
  await writeTokenizerJson(longPath, await trainBpe([doc], { vocabSize: 1000 }));
  const tokenizer = await loadTokenizer(longPath);
  const reference = Tokenizer.fromFile(longPath);
  const whole = (await reference.encode(doc)).getIds();
  assert.equal(tokenizer.splitsSafely, true, 'our byte-level BPE tokenizers allow splitting');
  for (const pieceChars of [1, 37, 500, 10_000]) {
    const pieces = splitAtSafeCuts(doc, pieceChars);
    assert.equal(pieces.join(''), doc);
    if (pieceChars < 100) assert.ok(pieces.length > 100, `${pieces.length} pieces of ${pieceChars}`);
    const ids = (await tokenizer.encodeBatch(pieces)).flat();
    assert.deepEqual(ids, whole, `pieces of ${pieceChars} characters`);
  }
  // The check can fail: cutting after every newline, or before every space, changes the ids.
  for (const naive of [doc.split(/(?<=\n)/), doc.split(/(?= )/)])
    assert.notDeepEqual((await tokenizer.encodeBatch(naive)).flat(), whole);
  // A document without a newline is cut before spaces.
  const line = doc.replaceAll('\n', ' ');
  const lineWhole = (await reference.encode(line)).getIds();
  for (const pieceChars of [1, 37, 500]) {
    const pieces = splitAtSafeCuts(line, pieceChars);
    if (pieceChars < 100) assert.ok(pieces.length > 100, `${pieces.length} pieces of ${pieceChars}`);
    assert.deepEqual(
      (await tokenizer.encodeBatch(pieces)).flat(),
      lineWhole,
      `one line in pieces of ${pieceChars} characters`,
    );
  }
  const out = join(dir, 'long');
  writeFileSync(join(dir, 'long.jsonl'), `${JSON.stringify({ text: doc })}\n${JSON.stringify({ text: 'short' })}\n`);
  const summary = await tokenizeCorpus({
    inputs: [join(dir, 'long.jsonl')],
    tokenizer,
    out,
    appendEod: true,
    pieceChars: 200,
    batchChars: 1000,
  });
  assert.equal(summary.documents, 2);
  assert.deepEqual(readItems(out), [
    [...whole, 0],
    [...(await reference.encode('short')).getIds(), 0],
  ]);
});

test("the same holds with an NFC normalizer (GPT-NeoX-20B's); tokenizers it does not hold for are not split", async () => {
  const json = JSON.parse(readFileSync(tokenizerPath, 'utf8')) as Record<string, unknown>;
  const nfcPath = join(dir, 'nfc-tokenizer.json');
  writeFileSync(nfcPath, JSON.stringify({ ...json, normalizer: { type: 'NFC' } }));
  const nfc = await loadTokenizer(nfcPath);
  assert.equal(nfc.splitsSafely, true);
  const doc = longDocument(2000);
  const whole = (await Tokenizer.fromFile(nfcPath).encode(doc)).getIds();
  assert.deepEqual((await nfc.encodeBatch(splitAtSafeCuts(doc, 50))).flat(), whole);

  const pre = json.pre_tokenizer as Record<string, unknown>;
  assert.equal(safeToSplit({ ...json, pre_tokenizer: { ...pre, add_prefix_space: true } }), false);
  assert.equal(safeToSplit({ ...json, pre_tokenizer: { ...pre, use_regex: false } }), false);
  assert.equal(safeToSplit({ ...json, normalizer: { type: 'Lowercase' } }), false);
  assert.equal(safeToSplit({ ...json, post_processor: { type: 'TemplateProcessing' } }), false);
  const added = json.added_tokens as Record<string, unknown>[];
  assert.equal(
    safeToSplit({ ...json, added_tokens: [...added, { id: 999, content: 'a\nb', lstrip: false, rstrip: false }] }),
    false,
  );
  assert.equal(
    safeToSplit({ ...json, added_tokens: [...added, { id: 999, content: 'x', lstrip: true, rstrip: false }] }),
    false,
  );
  assert.equal(
    safeToSplit({ ...json, added_tokens: [...added, { id: 999, content: 'a b', lstrip: false, rstrip: false }] }),
    false,
  );
  assert.equal(
    safeToSplit({ ...json, added_tokens: [...added, { id: 999, content: '    ', lstrip: false, rstrip: false }] }),
    true,
  );
});

test('splitAtSafeCuts cuts only after a newline, or before a space, between solid characters', () => {
  assert.deepEqual(splitAtSafeCuts('ab\ncd\nef', 3), ['ab\n', 'cd\n', 'ef']);
  assert.deepEqual(splitAtSafeCuts('ab\n\ncd', 2), ['ab\n\ncd']);
  assert.deepEqual(splitAtSafeCuts('ab\n cd\nef', 2), ['ab\n cd\n', 'ef']);
  assert.deepEqual(splitAtSafeCuts('abcdefgh\nij', 3), ['abcdefgh\n', 'ij']);
  assert.deepEqual(splitAtSafeCuts('ab cd ef', 3), ['ab', ' cd', ' ef']);
  assert.deepEqual(splitAtSafeCuts('a  b\u0301 \u0301c', 1), ['a  b\u0301 \u0301c']);
  assert.deepEqual(splitAtSafeCuts('short', 100), ['short']);
});
