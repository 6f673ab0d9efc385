import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Tokenizer } from 'tokenizers';
import { byteToUnicode } from '../../src/data/bpe-trainer.js';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import { DataError, FormatError } from '../../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'pythia-tok-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A small tokenizer.json with the structure of GPT-NeoX-20B's (pythia utils/20B_tokenizer.json):
 * NFC normalizer, ByteLevel pre-tokenizer/post-processor/decoder written without `use_regex`, merges
 * as "a b" strings, <|endoftext|> = 0 and <|padding|> = 1 in both the model vocab and added_tokens,
 * and a non-special, normalized added token made of spaces after the BPE vocab (like ids 50254+).
 *
 * Ids: 0, 1 special; 2..257 the byte alphabet sorted by code point (so "!" = 2, "a" = 66, "t" = 85,
 * "Ġ" = 222); then merges Ġ t → 258, h e → 259, Ġt he → 260, c a → 261, ca t → 262, Ġ cat → 263;
 * added "   " (three spaces) = 264.
 */
function neoxShapedJson(): object {
  const alphabet = [...byteToUnicode()].sort((x, y) => x.charCodeAt(0) - y.charCodeAt(0));
  const vocab: Record<string, number> = { '<|endoftext|>': 0, '<|padding|>': 1 };
  alphabet.forEach((ch, i) => {
    vocab[ch] = 2 + i;
  });
  const merges = ['Ġ t', 'h e', 'Ġt he', 'c a', 'ca t', 'Ġ cat'];
  for (const merge of merges) vocab[merge.replace(' ', '')] = Object.keys(vocab).length;
  const added = (id: number, content: string, special: boolean) => ({
    id,
    special,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: !special,
  });
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [added(0, '<|endoftext|>', true), added(1, '<|padding|>', true), added(264, '   ', false)],
    normalizer: { type: 'NFC' },
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      vocab,
      merges,
    },
  };
}

const neoxPath = join(dir, 'neox-shaped.json');
writeFileSync(neoxPath, JSON.stringify(neoxShapedJson()));

test('a GPT-NeoX-20B-shaped tokenizer.json loads with its special tokens and size', async () => {
  const tok = await loadTokenizer(neoxPath);
  assert.equal(tok.vocabSize, 265);
  assert.equal(tok.eodId, 0);
  assert.equal(tok.padId, 1);
});

test('encoding applies the merges by rank (ids worked out by hand)', async () => {
  const tok = await loadTokenizer(neoxPath);
  // "the": t h e → (h,e) rank 1 → t he; (t,he) is no merge → [t=85, he=259].
  // " cat": Ġ c a t → ca → cat → Ġcat = 263.  " sat": no merges → Ġ=222 s=84 a=66 t=85.
  assert.deepEqual(await tok.encode('the cat sat'), [85, 259, 263, 222, 84, 66, 85]);
  assert.deepEqual(await tok.encode(' the'), [260]);
  // Added tokens split the text before the BPE: EOD in the middle, the three-space token.
  assert.deepEqual(await tok.encode('the<|endoftext|> the'), [85, 259, 0, 260]);
  assert.deepEqual(await tok.encode('a   b'), [66, 264, 67]);
  // NFC: e + U+0301 becomes é = C3 A9, shown "Ã" (id 129) and "©" (id 104).
  assert.deepEqual(await tok.encode('e\u0301'), [129, 104]);
});

test('encodeBatch equals encode one by one, in order', async () => {
  const tok = await loadTokenizer(neoxPath);
  const texts = ['the cat sat', '', ' the', 'a   b', 'e\u0301<|padding|>'];
  const one = await Promise.all(texts.map((t) => tok.encode(t)));
  assert.deepEqual(await tok.encodeBatch(texts), one);
  assert.deepEqual(await tok.encodeBatch([]), []);
});

test("decode is synchronous and agrees with the package's own async decode", async () => {
  const tok = await loadTokenizer(neoxPath);
  const reference = Tokenizer.fromFile(neoxPath);
  const cases = [[85, 259, 263, 222, 84, 66, 85], [0], [66, 264, 67], [129, 104], [260, 0, 1, 222], [], [190, 225]];
  for (const ids of cases) assert.equal(tok.decode(ids), await reference.decode(ids, false));
  assert.equal(tok.decode([85, 259, 263, 222, 84, 66, 85]), 'the cat sat');
  assert.equal(tok.decode([260, 0]), ' the<|endoftext|>');
  assert.throws(() => tok.decode([265]), DataError);
  assert.throws(() => tok.decode([-1]), DataError);
});

test('bad tokenizer files are one-line FormatErrors', async () => {
  const notJson = join(dir, 'bad.json');
  writeFileSync(notJson, '{"version": ');
  await assert.rejects(
    loadTokenizer(notJson),
    (e: Error) => e instanceof FormatError && /invalid JSON/.test(e.message) && !e.message.includes('\n'),
  );
  const wrongShape = join(dir, 'shape.json');
  writeFileSync(wrongShape, JSON.stringify({ version: '1.0', model: { type: 'Nonsense' } }));
  await assert.rejects(loadTokenizer(wrongShape), (e: Error) => e instanceof FormatError && !e.message.includes('\n'));
  const noEod = join(dir, 'noeod.json');
  const json = neoxShapedJson() as { added_tokens: unknown[]; model: { vocab: Record<string, number> } };
  json.added_tokens = [];
  delete json.model.vocab['<|endoftext|>'];
  writeFileSync(noEod, JSON.stringify(json));
  await assert.rejects(
    loadTokenizer(noEod),
    (e: Error) => e instanceof FormatError && /<\|endoftext\|>/.test(e.message),
  );
  await assert.rejects(loadTokenizer(join(dir, 'missing.json')), FormatError);
});
