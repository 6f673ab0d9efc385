import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { byteLevelAlphabet } from 'tokenizers';
import { byteToUnicode, trainBpe, writeTokenizerJson } from '../../src/data/bpe-trainer.js';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import { ConfigError } from '../../src/util/errors.js';
import { repoRoot } from '../support/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'pythia-bpe-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function trainAndLoad(name: string, docs: string[], vocabSize: number) {
  const model = await trainBpe(docs, { vocabSize });
  const path = join(dir, name);
  await writeTokenizerJson(path, model);
  return { model, path, tokenizer: await loadTokenizer(path) };
}

test('the byte alphabet is GPT-2 bytes_to_unicode, the same set the tokenizers package uses', () => {
  const table = byteToUnicode();
  assert.equal(new Set(table).size, 256);
  assert.equal(table[0x20], '\u0120'); // space shows as Ġ
  assert.equal(table[0x0a], '\u010a'); // newline shows as Ċ
  assert.equal(table[0x41], 'A');
  assert.deepEqual([...table].sort(), [...byteLevelAlphabet()].sort());
});

// Worked by hand (see docs/corpora-and-tokenizers.md for the tie rule). Words: hug, Ġhug×2, Ġpug, Ġpun,
// Ġbun, Ġhugs. Counts: (u,g)=5 → ug; (h,ug)=4 → hug; (Ġ,hug)=3 → Ġhug; then (Ġ,p)=2 and (u,n)=2 tie
// and u (id 86) < Ġ (id 222) so un first, then Ġp; all remaining pairs count 1 and go by smallest
// left id: b (67) → bun, Ġ (222) → Ġbun, Ġhug (260) → Ġhugs, Ġp (262) with ug (258) before un (261).
const HUG_MERGES = [
  ['u', 'g'],
  ['h', 'ug'],
  ['Ġ', 'hug'],
  ['u', 'n'],
  ['Ġ', 'p'],
  ['b', 'un'],
  ['Ġ', 'bun'],
  ['Ġhug', 's'],
  ['Ġp', 'ug'],
  ['Ġp', 'un'],
];

test('merges learned on a tiny corpus are the ones worked out by hand', async () => {
  const { model, tokenizer } = await trainAndLoad('hug.json', ['hug hug hug pug pun bun hugs'], 268);
  assert.deepEqual(model.merges, HUG_MERGES);
  assert.equal(model.exhausted, false);
  assert.equal(tokenizer.vocabSize, 268);
  // The napi encoder applies them by rank: hugs → h u g s → h ug s → hug s (Ġhug+s needs the space).
  // Ids: s = 84, b = 67, ug = 258, hug = 259, Ġpun = 267, Ġbun = 264.
  assert.deepEqual(await tokenizer.encode('hugs pun'), [259, 84, 267]);
  assert.deepEqual(await tokenizer.encode('bug bun'), [67, 258, 264]);
});

test('a corpus with too few pairs stops early and says so', async () => {
  const model = await trainBpe(['hug hug hug pug pun bun hugs'], { vocabSize: 300 });
  assert.equal(model.exhausted, true);
  assert.equal(model.vocab.length, 268);
});

// Golden merges from a naive reference (Python 3: recount all pairs every step, highest count,
// ties to the smallest (left id, right id)), run on REFERENCE_TEXT as one document; ASCII only so
// that Python's re with [A-Za-z]/[0-9] matches the \p{L}/\p{N} split exactly.
const REFERENCE_TEXT =
  "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox doesn't.\n\n" +
  'Then the fox ran over 12 hills and 7 rivers, and the dog\'s owner said: "that\'s the fox!"\n\n' +
  '  Indented   text   with  runs of spaces\tand tabs.\n';
const REFERENCE_MERGES = [
  'h e',
  'Ġ t',
  'Ġt he',
  'a n',
  'd o',
  'e r',
  'f o',
  'Ġ o',
  'Ġ do',
  'Ġ fo',
  'Ġfo x',
  'T he',
  'v er',
  'Ġ r',
  'Ġ s',
  'an d',
  'Ġdo g',
  "' s",
  'e s',
  'p s',
  't h',
  'w n',
  'Ġ Ġ',
  'Ġ and',
  'Ġo ver',
  '! "',
  "' t",
  '1 2',
  'I n',
  'a b',
  'a c',
  'a i',
  'a t',
  'a z',
  'b r',
  'c k',
  'd e',
  'e d',
  'e e',
  'e x',
];

test('merges equal a naive reference trainer on a paragraph', async () => {
  const { path, tokenizer } = await trainAndLoad('ref.json', [REFERENCE_TEXT], 298);
  const json = JSON.parse(readFileSync(path, 'utf8')) as { model: { merges: string[] } };
  assert.deepEqual(json.model.merges, REFERENCE_MERGES);
  assert.equal(tokenizer.decode(await tokenizer.encode(REFERENCE_TEXT)), REFERENCE_TEXT);
});

test('the written tokenizer.json has GPT-NeoX-20B shape: special tokens 0 and 1, byte alphabet from 2', async () => {
  const { path, tokenizer } = await trainAndLoad('shape.json', [REFERENCE_TEXT], 280);
  const json = JSON.parse(readFileSync(path, 'utf8'));
  assert.deepEqual(
    json.added_tokens.map((t: { id: number; content: string; special: boolean }) => [t.id, t.content, t.special]),
    [
      [0, '<|endoftext|>', true],
      [1, '<|padding|>', true],
    ],
  );
  assert.equal(json.model.type, 'BPE');
  assert.equal(json.model.vocab['<|endoftext|>'], 0);
  assert.equal(json.model.vocab['!'], 2); // as in GPT-NeoX-20B
  assert.equal(json.model.vocab.Ġ, 222);
  assert.deepEqual(json.pre_tokenizer, {
    type: 'ByteLevel',
    add_prefix_space: false,
    trim_offsets: true,
    use_regex: true,
  });
  assert.equal(json.decoder.type, 'ByteLevel');
  assert.equal(json.normalizer, null);
  assert.equal(tokenizer.vocabSize, 280);
  assert.equal(tokenizer.eodId, 0);
  assert.equal(tokenizer.padId, 1);
  assert.deepEqual(await tokenizer.encode('<|endoftext|><|padding|>'), [0, 1]);
});

test('a trained tokenizer round-trips ASCII and Unicode text exactly', async () => {
  const corpus = [REFERENCE_TEXT, 'naïve café — “quotes” 日本語のテキスト 🎉🎉 Ελληνικά', 'x'.repeat(50)];
  const { tokenizer } = await trainAndLoad('round.json', corpus, 400);
  for (const text of [
    'Hello, world!\n',
    '  leading and trailing spaces  \t\r\n',
    'naïve café — “quotes” 日本語 🎉 Ελληνικά ऋषि',
    'e\u0301 stays decomposed without a normalizer',
    'mixed <|endoftext|> in the middle',
    '',
  ]) {
    const ids = await tokenizer.encode(text);
    assert.equal(tokenizer.decode(ids), text);
  }
});

test('training is deterministic: same corpus, same bytes', async () => {
  const docs = [REFERENCE_TEXT, 'other words other words', REFERENCE_TEXT.toUpperCase()];
  const a = join(dir, 'a.json');
  const b = join(dir, 'b.json');
  await writeTokenizerJson(a, await trainBpe(docs, { vocabSize: 320 }));
  await writeTokenizerJson(b, await trainBpe([...docs].reverse(), { vocabSize: 320 }));
  assert.equal(readFileSync(a, 'utf8'), readFileSync(b, 'utf8'));
});

test('NFC option normalizes training text and writes an NFC normalizer', async () => {
  // é decomposed is e + U+0301 (bytes CC 81, shown "Ì" and "ģ"); composed it is C3 A9, shown "Ã©".
  const docs = ['cafe\u0301 cafe\u0301 cafe\u0301'];
  const learned = (model: { vocab: string[] }) => model.vocab.slice(258).join(' ');
  const composed = await trainBpe(docs, { vocabSize: 300, nfc: true });
  assert.match(learned(composed), /Ã©/);
  assert.doesNotMatch(learned(composed), /Ì/);
  assert.match(learned(await trainBpe(docs, { vocabSize: 300 })), /Ì/);
  const path = join(dir, 'nfc.json');
  await writeTokenizerJson(path, composed);
  assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')).normalizer, { type: 'NFC' });
  const tokenizer = await loadTokenizer(path);
  assert.deepEqual(await tokenizer.encode('cafe\u0301'), await tokenizer.encode('caf\u00e9'));
});

test('a vocabulary smaller than specials + 256 bytes is a ConfigError', async () => {
  await assert.rejects(trainBpe(['abc'], { vocabSize: 257 }), ConfigError);
});

test('pythia tokenizer train writes a loadable tokenizer.json; a bad size is one line on stderr', async () => {
  const cli = join(repoRoot, 'dist/src/cli/main.js');
  const input = join(dir, 'train.txt');
  writeFileSync(input, 'hug hug hug pug pun bun hugs\n\ns\n');
  const out = join(dir, 'cli.json');
  const ok = spawnSync(
    process.execPath,
    [cli, 'tokenizer', 'train', '--input', input, '--vocab-size', '268', '--out', out],
    { encoding: 'utf8' },
  );
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /268 tokens \(10 merges\) from 2 documents/);
  assert.deepEqual(
    JSON.parse(readFileSync(out, 'utf8')).model.merges,
    HUG_MERGES.map(([a, b]) => `${a} ${b}`),
  );
  const small = spawnSync(
    process.execPath,
    [cli, 'tokenizer', 'train', '--input', input, '--vocab-size', '100', '--out', out],
    { encoding: 'utf8' },
  );
  assert.equal(small.status, 1);
  assert.equal(
    small.stderr,
    'pythia: --vocab-size: expected an integer of at least 258 (special tokens + 256 bytes), got 100\n',
  );
});
