/**
 * Token boundaries for scoring text, as lm-evaluation-harness draws them: trailing white space of
 * the context moves to the front of the continuation, context + continuation is encoded whole, and
 * the continuation is the tokens past the context's own encoding; an empty context is the
 * end-of-text token alone.
 */
import type { TextTokenizer } from '../data/tokenizer.js';
import type { ScoreRequest } from '../model/score.js';

export async function encodeScorePair(tokenizer: TextTokenizer, context: string, continuation: string): Promise<ScoreRequest> {
  if (context === '') return { context: [tokenizer.eodId], continuation: await tokenizer.encode(continuation) };
  const kept = context.trimEnd();
  const [whole, contextIds] = await tokenizer.encodeBatch([context + continuation, kept]);
  return { context: whole!.slice(0, contextIds!.length), continuation: whole!.slice(contextIds!.length) };
}
