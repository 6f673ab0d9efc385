/**
 * Random token sequences repeated twice, the input of TransformerLens's induction loss
 * (evals.induction_loss) and of its head detector demos: `length` tokens drawn uniformly, then the
 * same `length` tokens again. A model with induction heads predicts the second copy from the first.
 */
import { ConfigError } from '../util/errors.js';
import { Prng } from '../util/prng.js';

/** TransformerLens's subseq_len: each copy is 384 tokens, 768 in all, where the context allows. */
export const REPEAT_LENGTH = 384;

/** Where the tokens are drawn from: [low, high). */
export interface TokenRange {
  low: number;
  high: number;
}

/**
 * TransformerLens draws torch.randint(100, 20000): skipping the first ids (special and byte
 * tokens) and the rarest. Here the same range cut to the vocabulary, or the whole vocabulary where
 * fewer than 100 ids would remain above 100.
 */
export function repeatTokenRange(vocabSize: number): TokenRange {
  const high = Math.min(20000, vocabSize);
  return { low: high - 100 >= 100 ? 100 : 0, high };
}

/**
 * The length of each copy: `wanted` (default 384), cut so that both copies are shorter than a
 * context of `context` tokens, as TransformerLens's detect_head asserts (seq_len < n_ctx): 63 for
 * a 128-token context.
 */
export function repeatLength(context: number, wanted = REPEAT_LENGTH): number {
  if (!Number.isInteger(wanted) || wanted < 1)
    throw new ConfigError(`length: expected a positive integer, got ${wanted}`);
  const fits = Math.floor((context - 1) / 2);
  if (fits < 2) throw new ConfigError(`a context of ${context} tokens holds no two copies of 2 or more tokens`);
  return Math.min(wanted, fits);
}

/** `count` rows of `length` seeded random tokens in `range`, each followed by itself again (2·length tokens). */
export function repeatedRandomTokens(count: number, length: number, range: TokenRange, seed: number): number[][] {
  if (!Number.isInteger(count) || count < 1)
    throw new ConfigError(`sequences: expected a positive integer, got ${count}`);
  if (!Number.isInteger(length) || length < 1)
    throw new ConfigError(`length: expected a positive integer, got ${length}`);
  const rng = new Prng(seed);
  return Array.from({ length: count }, () => {
    const half = Array.from({ length }, () => range.low + rng.int(range.high - range.low));
    return [...half, ...half];
  });
}
