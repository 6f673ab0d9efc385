import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Tokenizer } from 'tokenizers';
import { trainBpe, writeTokenizerJson } from '../../src/data/bpe-trainer.js';
import { IndexedDataset } from '../../src/data/indexed-dataset.js';
import { tokenizeCorpus } from '../../src/data/tokenize.js';
import { loadTokenizer, type TextTokenizer } from '../../src/data/tokenizer.js';
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
  await writeTokenizerJson(tokenizerPath, await trainBpe([...JSONL_DOCS, ...TXT_DOCS, 'more words for merges '.repeat(20)], { vocabSize: 320 }));
  tokenizer = await loadTokenizer(tokenizerPath);
  reference = Tokenizer.fromFile(tokenizerPath);
  const jsonl = JSONL_DOCS.map((text, i) => JSON.stringify({ text, meta: { i } })).join('\n') + '\n';
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
  await assert.rejects(tokenizeCorpus({ inputs: [inputs[1]!, bad], tokenizer, out: join(sub, 'ds') }), (e: Error) => e instanceof DataError && e.message.startsWith(`${bad}:3: invalid JSON (`));
  assert.deepEqual(readdirSync(sub), ['bad.jsonl']);
  const summary = await tokenizeCorpus({ inputs: [bad], tokenizer, out: join(sub, 'ds'), skipInvalid: true });
  assert.equal(summary.invalidLines, 1);
  assert.equal(summary.documents, 2);
});

test('pythia data tokenize writes the dataset and reports; bad input is one line on stderr', () => {
  const cli = join(repoRoot, 'dist/src/cli/main.js');
  const out = join(dir, 'cli-ds');
  const ok = spawnSync(process.execPath, [cli, 'data', 'tokenize', '--input', ...inputs, '--tokenizer', tokenizerPath, '--out', out, '--append-eod'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /5 documents, \d+ tokens \(uint16, EOD 0 appended\)/);
  assert.equal(readItems(out).length, 5);
  const missing = spawnSync(process.execPath, [cli, 'data', 'tokenize', '--input', join(dir, 'nope.jsonl'), '--tokenizer', tokenizerPath, '--out', out], { encoding: 'utf8' });
  assert.equal(missing.status, 1);
  assert.equal(missing.stderr, `pythia: ${join(dir, 'nope.jsonl')}: no such file or directory\n`);
});
