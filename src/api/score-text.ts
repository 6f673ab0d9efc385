/**
 * Token boundaries for scoring text, as lm-evaluation-harness draws them (`_encode_pair`):
 * trailing white space of the context moves to the front of the continuation; context +
 * continuation is encoded whole, and the continuation is the tokens past the length of the
 * context's own encoding; an empty (or all-white) context is the end-of-text token alone, the
 * continuation encoded by itself.
 * Same signature as main's src/eval/encode.ts `encodePairs`: on merge, use that and drop this file.
 */
import type { TextTokenizer } from '../data/tokenizer.js';
import type { ScoreRequest } from '../model/score.js';

export interface TextPair {
  context: string;
  continuation: string;
}

export async function encodePairs(tokenizer: TextTokenizer, pairs: readonly TextPair[]): Promise<ScoreRequest[]> {
  return Promise.all(
    pairs.map(async ({ context, continuation }) => {
      const kept = context.trimEnd();
      const moved = context.slice(kept.length) + continuation;
      if (kept === '') return { context: [tokenizer.eodId], continuation: await tokenizer.encode(moved) };
      const [contextIds, whole] = await tokenizer.encodeBatch([kept, kept + moved]);
      return { context: contextIds!, continuation: whole!.slice(contextIds!.length) };
    }),
  );
}
