/** The small pronoun corpus that the intervention and side-by-side training tests train on. */
import { join } from 'node:path';
import { trainBpe, writeTokenizerJson } from '../../src/data/bpe-trainer.js';
import { loadTokenizer, type TextTokenizer } from '../../src/data/tokenizer.js';

/** Sentences in which every pronoun is a word-initial token of its own. */
export const PRONOUN_TEXT =
  'the man saw his dog and he gave him food . the woman saw her cat and she gave her milk .\n';

export interface PronounCorpus {
  /** `<dir>/tokenizer.json`: a byte-level BPE of 300 tokens trained on the text. */
  tokenizerPath: string;
  tokenizer: TextTokenizer;
  /** The text 60 times over, as tokens. */
  stream: number[];
}

export async function pronounCorpus(dir: string, text = PRONOUN_TEXT): Promise<PronounCorpus> {
  const tokenizerPath = join(dir, 'tokenizer.json');
  await writeTokenizerJson(
    tokenizerPath,
    await trainBpe(
      Array.from({ length: 20 }, () => text),
      { vocabSize: 300 },
    ),
  );
  const tokenizer = await loadTokenizer(tokenizerPath);
  return { tokenizerPath, tokenizer, stream: await tokenizer.encode(text.repeat(60)) };
}

/** Sample s of a dataset cut from the stream: seqLength + 1 tokens from token 7·s (samples overlap). */
export function sampleAt(stream: readonly number[], s: number, seqLength: number): number[] {
  return stream.slice(s * 7, s * 7 + seqLength + 1);
}
