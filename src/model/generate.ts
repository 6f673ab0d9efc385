/**
 * Batched generation with a KV cache: the prompt runs once, then each new token costs one
 * position. Rows of different lengths are left-padded; padded keys are masked and positions count
 * only real tokens, as HF's generate does. Greedy by default; sampling with a seed.
 */

import { ConfigError } from '../util/errors.js';
import { Prng } from '../util/prng.js';
import {
  checkNumber,
  checkOptionalNumber,
  NON_NEGATIVE_INTEGER,
  NON_NEGATIVE_NUMBER,
  POSITIVE_INTEGER,
  PROBABILITY,
  SEED,
} from '../util/values.js';
import type { Decoder, KvCache } from './decoder.js';
import { MASK_VALUE } from './gpt-neox.js';

export interface GenerateOptions {
  maxNewTokens: number;
  /** Recompute the whole sequence every step instead of using the cache (for checking). */
  noCache?: boolean;
  /** Sampling temperature; 0 (default) is greedy. */
  temperature?: number;
  /** Sample only among the k most likely tokens (0: all). */
  topK?: number;
  /**
   * Nucleus sampling: only among the most likely tokens whose probabilities (after temperature and
   * top-k) first reach `topP` together; 1 (default): all. As HF's TopPLogitsWarper, at least one token.
   */
  topP?: number;
  seed?: number;
  /** Stop a row once it emits this token. */
  eosTokenId?: number;
  /** Generate only ids below this: a tokenizer smaller than the model's padded vocabulary has no text for the rest. */
  allowedTokens?: number;
  /** Stop a row once this returns true for its generated tokens so far (stop strings, say). */
  stop?: (row: number, generated: readonly number[]) => boolean;
  padTokenId?: number;
}

/** Additive bias [batch, 1, seq, total] for new positions past..total−1 given key validity. */
function attentionBias(valid: readonly Uint8Array[], past: number, seq: number): Float32Array {
  const batch = valid.length;
  const total = past + seq;
  const bias = new Float32Array(batch * seq * total);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < seq; t++) {
      const row = (b * seq + t) * total;
      for (let u = 0; u < total; u++) {
        if (u > past + t || !valid[b]![u]) bias[row + u] = MASK_VALUE;
      }
    }
  }
  return bias;
}

/** The next token from one row of logits: greedy at temperature 0, else seeded sampling (top-k, then top-p). */
export function pick(logits: Float32Array, offset: number, vocab: number, options: GenerateOptions, rng: Prng): number {
  const temperature = options.temperature ?? 0;
  if (temperature <= 0) {
    let best = 0;
    for (let v = 1; v < vocab; v++) if (logits[offset + v]! > logits[offset + best]!) best = v;
    return best;
  }
  const topK = options.topK && options.topK > 0 && options.topK < vocab ? options.topK : vocab;
  const topP = options.topP ?? 1;
  let candidates = Array.from({ length: vocab }, (_, v) => v);
  if (topK < vocab || topP < 1)
    candidates = candidates.sort((a, b) => logits[offset + b]! - logits[offset + a]! || a - b).slice(0, topK);
  const maxLogit = Math.max(...candidates.map((v) => logits[offset + v]!));
  let weights = candidates.map((v) => Math.exp((logits[offset + v]! - maxLogit) / temperature));
  let total = weights.reduce((a, b) => a + b, 0);
  if (topP < 1) {
    // Keep tokens while the probability before them is below topP.
    let before = 0;
    let keep = 0;
    while (keep < weights.length && (keep === 0 || before < topP * total)) before += weights[keep++]!;
    candidates = candidates.slice(0, keep);
    weights = weights.slice(0, keep);
    total = before;
  }
  let u = rng.float() * total;
  for (let i = 0; i < candidates.length; i++) {
    u -= weights[i]!;
    if (u < 0) return candidates[i]!;
  }
  return candidates[candidates.length - 1]!;
}

/**
 * Refuses, as one line naming the option, a setting `generate` cannot honour: the library passes
 * what its callers wrote, and a negative or fractional count would otherwise run (or loop) quietly.
 */
export function checkGenerateOptions(options: GenerateOptions): void {
  checkNumber('maxNewTokens', options.maxNewTokens, POSITIVE_INTEGER);
  checkOptionalNumber('temperature', options.temperature, NON_NEGATIVE_NUMBER);
  checkOptionalNumber('topK', options.topK, NON_NEGATIVE_INTEGER);
  checkOptionalNumber('topP', options.topP, PROBABILITY);
  checkOptionalNumber('seed', options.seed, SEED);
}

/** Returns each prompt followed by its continuation (without padding). */
export async function generate(
  decoder: Decoder,
  prompts: readonly (readonly number[])[],
  options: GenerateOptions,
): Promise<number[][]> {
  checkGenerateOptions(options);
  const batch = prompts.length;
  if (batch === 0) return [];
  const vocab = decoder.config.vocabSize;
  for (const [b, p] of prompts.entries()) {
    if (p.length === 0) throw new ConfigError(`prompt ${b} is empty`);
    for (const id of p)
      if (!Number.isInteger(id) || id < 0 || id >= vocab)
        throw new ConfigError(`prompt ${b}: token id ${id} is outside [0, ${vocab})`);
  }
  const width = Math.max(...prompts.map((p) => p.length));
  const total = width + options.maxNewTokens;
  if (total > decoder.config.maxPositions) {
    throw new ConfigError(
      `prompt (${width}) plus ${options.maxNewTokens} new tokens exceeds max_position_embeddings ${decoder.config.maxPositions}`,
    );
  }
  const pad = options.padTokenId ?? 0;
  const rng = new Prng(options.seed ?? 0);
  // Left-padded token grid, key validity and next position per row.
  const tokens = prompts.map((p) => [...new Array<number>(width - p.length).fill(pad), ...p]);
  const valid = prompts.map((p) => {
    const v = new Uint8Array(total);
    v.fill(1, width - p.length);
    return v;
  });
  // A finished row's length (prompt padding included); later positions are padding, masked out.
  const ended = new Array<number | undefined>(batch).fill(undefined);

  let cache: KvCache = decoder.emptyCache(batch);
  try {
    let fed = 0;
    for (let step = 0; step < options.maxNewTokens; step++) {
      const from = options.noCache ? 0 : fed;
      if (options.noCache) {
        decoder.releaseCache(cache);
        cache = decoder.emptyCache(batch);
      }
      const seq = tokens[0]!.length - from;
      const ids = new BigInt64Array(batch * seq);
      const positions = new BigInt64Array(batch * seq);
      for (let b = 0; b < batch; b++) {
        const padding = width - prompts[b]!.length;
        for (let t = 0; t < seq; t++) {
          ids[b * seq + t] = BigInt(tokens[b]![from + t]!);
          positions[b * seq + t] = BigInt(Math.max(0, from + t - padding));
        }
      }
      const result = await decoder.step(ids, positions, attentionBias(valid, from, seq), cache, batch);
      cache = result.cache;
      fed = tokens[0]!.length;
      for (let b = 0; b < batch; b++) {
        if (ended[b] !== undefined) {
          tokens[b]!.push(pad);
          valid[b]![fed] = 0;
          continue;
        }
        const next = pick(result.logits, b * vocab, Math.min(vocab, options.allowedTokens ?? vocab), options, rng);
        tokens[b]!.push(next);
        const finished =
          (options.eosTokenId !== undefined && next === options.eosTokenId) ||
          options.stop?.(b, tokens[b]!.slice(width));
        if (finished) ended[b] = tokens[b]!.length;
      }
      if (ended.every((e) => e !== undefined)) break;
    }
  } finally {
    decoder.releaseCache(cache);
  }
  return tokens.map((row, b) => row.slice(width - prompts[b]!.length, ended[b]));
}
