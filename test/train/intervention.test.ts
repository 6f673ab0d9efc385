import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { trainBpe, writeTokenizerJson } from '../../src/data/bpe-trainer.js';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import {
  PYTHIA_PRONOUN_MAP,
  pythiaTokenPronounSwap,
  swapPronouns,
  tokenPronounSwap,
} from '../../src/train/intervention.js';

test('pronoun swap on text: whole words, three casings, nothing else touched', () => {
  assert.equal(
    swapPronouns("He said he would bring his dog to him. HIS dog, His rules; he's sure of himself. Himself!"),
    "She said she would bring her dog to her. HER dog, Her rules; she's sure of herself. Herself!",
  );
  // Sub-words and other words stay: the, hello, shelf, Heather, chisel, whim, ethics, HEAP, he_llo, he2.
  const untouched = 'the hello shelf Heather chisel whim ethics HEAP he_llo he2 hE hiS';
  assert.equal(swapPronouns(untouched), untouched);
  assert.equal(swapPronouns('(he)\n"him"\this—he'), '(she)\n"her"\ther—she');
  assert.equal(swapPronouns('café he élan'), 'café she élan');
  assert.equal(swapPronouns('élhe heé'), 'élhe heé');
});

test('pronoun swap on token ids agrees with the text swap where every form is one token', async () => {
  const sentences = [
    'he went home and he saw his dog with him',
    'He said that himself was tired of his work',
    'she went home and she saw her dog with her',
    'She said that herself was tired of her work',
    'HE HIS HIM SHE HER HIMSELF HERSELF',
    'the other hello shelf theme',
  ];
  const corpus = Array.from({ length: 50 }, () => sentences.join('\n'));
  const dir = mkdtempSync(join(tmpdir(), 'pythia-intervention-'));
  try {
    const path = join(dir, 'tokenizer.json');
    await writeTokenizerJson(path, await trainBpe(corpus, { vocabSize: 400 }));
    const tokenizer = await loadTokenizer(path);
    const swap = await tokenPronounSwap(tokenizer);
    assert.ok(swap.map.size >= 8, `only ${swap.map.size} forms are single tokens`);

    // The forms this sample uses must all be single tokens for this tokenizer.
    const used = ['He', 'he', ' he', ' his', ' him', ' himself', ' HIS', ' HIM'];
    for (const form of used) assert.ok(!swap.skipped.includes(form), `${JSON.stringify(form)} is not one token`);
    const sample = 'He said he saw his dog with him.\nhe and himself: the other hello shelf theme, HIS HIM';
    const tokens = Int32Array.from(await tokenizer.encode(sample));
    assert.equal(swap.apply(tokens), 8);
    assert.equal(tokenizer.decode([...tokens]), swapPronouns(sample));
    // A form that is several tokens (here " HE" = " H" + "E") is left alone, as documented.
    assert.ok(swap.skipped.includes(' HE'));
    const multi = Int32Array.from(await tokenizer.encode('and HE went'));
    assert.equal(swap.apply(multi), 0);
    // Words that merely start with a pronoun's tokens are not touched at the token level either.
    const words = Int32Array.from(await tokenizer.encode('the other shelf theme'));
    const before = words.slice();
    swap.apply(words);
    assert.deepEqual(words, before);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("pronoun-swap-pythia: Pythia's fixed id map on every position, sub-word pieces included", async () => {
  // The words of the GPT-NeoX-20B ids the map names (Pythia's intervention branch, replace_tokens).
  const words = new Map<number, string>(
    PYTHIA_PRONOUN_MAP.flatMap(
      ([from, fromText, to, toText]) =>
        [
          [from, fromText],
          [to, toText],
        ] as [number, string][],
    ),
  );
  const twentyB = { decode: (ids: readonly number[]) => ids.map((id) => words.get(id) ?? `<${id}>`).join('') };
  const swap = pythiaTokenPronounSwap(twentyB, '20B_tokenizer.json');
  assert.equal(swap.map.size, 10);
  // " He" 754, "his" 8701 as a piece (e.g. "t|his"), "he" 248 inside a word, a token that is not in the map (5), "him" 13243.
  const tokens = Int32Array.of(754, 8701, 5, 248, 13243, 779);
  assert.equal(swap.apply(tokens, 3), 5);
  assert.deepEqual([...tokens], [1500, 379, 5, 6689, 379, 617]);
  // Any other tokenizer is refused: the ids would mean other words.
  const dir = mkdtempSync(join(tmpdir(), 'pythia-intervention-'));
  try {
    const path = join(dir, 'tokenizer.json');
    await writeTokenizerJson(path, await trainBpe(['he said his name to him'], { vocabSize: 300 }));
    const ours = await loadTokenizer(path);
    assert.throws(
      () => pythiaTokenPronounSwap(ours, path),
      /tokenizer\.json: token 754 is "", not " He": pronoun-swap-pythia is a map of GPT-NeoX-20B token ids/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
