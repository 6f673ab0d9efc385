/**
 * Token boundaries as lm-evaluation-harness draws them (its `_encode_pair` and
 * `get_rolling_token_windows`/`make_disjoint_window` in lm_eval/models/huggingface.py and
 * lm_eval/utils.py):
 * - trailing whitespace of the context (Python's `rstrip`) moves to the front of the continuation;
 * - context + continuation is encoded whole, and the continuation is the tokens past the length of
 *   the context's own encoding;
 * - an empty context (or one of whitespace only) is the end-of-text token alone, the continuation
 *   encoded by itself.
 * Rolling log-likelihood splits a document into disjoint windows of the model's context, the first
 * predicted from the end-of-text token.
 */
import type { TextTokenizer } from '../data/tokenizer.js';
import type { ScoreRequest } from '../model/score.js';
import { rstrip } from './lm-eval/python-str.js';

export interface TextPair {
  context: string;
  continuation: string;
}

export async function encodePairs(tokenizer: TextTokenizer, pairs: readonly TextPair[]): Promise<ScoreRequest[]> {
  const split = pairs.map(({ context, continuation }) => {
    const kept = rstrip(context);
    return { context: kept, continuation: context.slice(kept.length) + continuation };
  });
  const texts: string[] = [];
  for (const p of split) {
    if (p.context === '') texts.push(p.continuation);
    else texts.push(p.context, p.context + p.continuation);
  }
  const encoded = await tokenizer.encodeBatch(texts);
  let k = 0;
  return split.map((p) => {
    if (p.context === '') return { context: [tokenizer.eodId], continuation: encoded[k++]! };
    const context = encoded[k++]!;
    const whole = encoded[k++]!;
    return { context, continuation: whole.slice(context.length) };
  });
}

/** Disjoint scoring windows covering every token of `tokens` once: (context, continuation) pairs. */
export function rollingWindows(tokens: readonly number[], prefixToken: number, maxLength: number): ScoreRequest[] {
  const windows: ScoreRequest[] = [];
  if (tokens.length === 0) return windows;
  const first = Math.min(maxLength, tokens.length);
  windows.push({ context: [prefixToken], continuation: tokens.slice(0, first) });
  let predicted = first;
  while (predicted < tokens.length) {
    const length = Math.min(tokens.length - predicted, maxLength);
    const end = predicted + length;
    // The window's inputs are the maxLength tokens before `end`; the last `length` are predicted.
    windows.push({
      context: tokens.slice(Math.max(0, end - maxLength - 1), end - length),
      continuation: tokens.slice(end - length, end),
    });
    predicted = end;
  }
  return windows;
}
