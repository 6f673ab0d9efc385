/** Sizes before a tokenizer exists: pre-tokens, the pieces GPT-2's split regex cuts text into. */
import { BYTE_LEVEL_SPLIT } from '../data/bpe-trainer.js';

/**
 * The number of byte-level pre-tokens in `text`. BPE never merges across them, so this is a lower
 * bound on the token count under any tokenizer trained with that split, and close to it for common words.
 */
export function countPretokens(text: string): number {
  let n = 0;
  for (const _ of text.matchAll(BYTE_LEVEL_SPLIT)) n++;
  return n;
}
