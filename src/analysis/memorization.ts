/**
 * Memorization as Carlini et al. define it and Pythia measured it (the paper's case study on
 * training order and memorization;
 * `predictable-memorization/eval_memorization.py`): a training sequence's first `promptLength`
 * tokens are the prompt, the model greedily generates `continuationLength` tokens, and the score
 * is the fraction of them equal to the sequence's own next tokens. A sequence is memorized when
 * the score is 1 (k-extractable with k = promptLength).
 */
import type { SampleSource } from '../data/batches.js';
import type { Decoder } from '../model/decoder.js';
import { generate } from '../model/generate.js';
import { ConfigError, DataError } from '../util/errors.js';
import { Prng } from '../util/prng.js';

export interface MemorizationScore {
  /** Sample index in training order. */
  index: number;
  /** Matching tokens / continuation length. */
  score: number;
  memorized: boolean;
}

export interface MemorizationOptions {
  /** Prompt tokens (Pythia: 32). */
  promptLength?: number;
  /** Generated and compared tokens (Pythia: 32). */
  continuationLength?: number;
  /** Sequences generated together (default 64). */
  batchSize?: number;
  /** Told after each batch: sequences scored so far. */
  onProgress?: (done: number, total: number) => void;
}

/** Sample indices to score: an array, or a range that is never expanded whole. */
export interface SampleIndices {
  readonly length: number;
  slice(from: number, to: number): number[];
}

/** Indices start … end−1. */
export class IndexRange implements SampleIndices {
  constructor(
    readonly start: number,
    readonly end: number,
  ) {}

  get length(): number {
    return this.end - this.start;
  }

  slice(from: number, to: number): number[] {
    const first = this.start + from;
    const last = Math.min(this.end, this.start + to);
    return Array.from({ length: Math.max(0, last - first) }, (_, i) => first + i);
  }
}

export const PYTHIA_PROMPT_LENGTH = 32;
export const PYTHIA_CONTINUATION_LENGTH = 32;

/** Prompt and continuation lengths and the batch size, checked, with Pythia's defaults. */
function lengths(options: MemorizationOptions): { prompt: number; continuation: number; batchSize: number } {
  const prompt = options.promptLength ?? PYTHIA_PROMPT_LENGTH;
  const continuation = options.continuationLength ?? PYTHIA_CONTINUATION_LENGTH;
  const batchSize = options.batchSize ?? 64;
  if (!Number.isInteger(prompt) || prompt < 1)
    throw new ConfigError(`prompt length: expected a positive integer, got ${prompt}`);
  if (!Number.isInteger(continuation) || continuation < 1)
    throw new ConfigError(`continuation length: expected a positive integer, got ${continuation}`);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new ConfigError(`batch size: expected a positive integer, got ${batchSize}`);
  return { prompt, continuation, batchSize };
}

/**
 * Scores token sequences (each at least prompt + continuation long) generated together as one
 * batch: the greedy continuation of each one's first `prompt` tokens against its next `continuation`.
 */
export async function scoreSequences(
  decoder: Decoder,
  sequences: readonly ArrayLike<number>[],
  prompt: number,
  continuation: number,
): Promise<{ score: number; memorized: boolean }[]> {
  const prompts = sequences.map((s) => Array.from({ length: prompt }, (_, t) => s[t]!));
  const rows = await generate(decoder, prompts, { maxNewTokens: continuation });
  return sequences.map((truth, b) => {
    const row = rows[b]!;
    let matched = 0;
    for (let t = prompt; t < prompt + continuation; t++) if (row[t] === truth[t]) matched++;
    return { score: matched / continuation, memorized: matched === continuation };
  });
}

/** Scores `indices` batch by batch, in the order given; each batch comes out as soon as it is done. */
export async function* memorizationBatches(
  decoder: Decoder,
  source: SampleSource,
  indices: SampleIndices,
  options: MemorizationOptions = {},
): AsyncGenerator<MemorizationScore[]> {
  const { prompt, continuation, batchSize } = lengths(options);
  if (prompt + continuation > source.sampleLength) {
    throw new ConfigError(
      `prompt (${prompt}) plus continuation (${continuation}) is longer than a training sample (${source.sampleLength} tokens)`,
    );
  }
  const check = (k: number) => {
    if (!Number.isSafeInteger(k) || k < 0 || k >= source.length)
      throw new DataError(`sample ${k} is out of range: the training order has ${source.length} samples`);
  };
  if (indices instanceof IndexRange) {
    if (indices.length > 0) [indices.start, indices.end - 1].forEach(check);
  } else {
    for (let start = 0; start < indices.length; start += 65536) indices.slice(start, start + 65536).forEach(check);
  }
  let done = 0;
  for (let start = 0; start < indices.length; start += batchSize) {
    const batch = indices.slice(start, start + batchSize);
    const scores = await scoreSequences(
      decoder,
      batch.map((k) => source.sample(k)),
      prompt,
      continuation,
    );
    yield batch.map((index, b) => ({ index, ...scores[b]! }));
    done += batch.length;
    options.onProgress?.(done, indices.length);
  }
}

/** The memorization score of every sample in `indices` (see the module comment). */
export async function memorizationScores(
  decoder: Decoder,
  source: SampleSource,
  indices: SampleIndices,
  options: MemorizationOptions = {},
): Promise<MemorizationScore[]> {
  const scores: MemorizationScore[] = [];
  for await (const batch of memorizationBatches(decoder, source, indices, options)) scores.push(...batch);
  return scores;
}

/** `count` distinct indices of [0, total), drawn with a seeded generator (Floyd's method), ascending. */
export function sampleIndices(total: number, count: number, seed: number): number[] {
  if (!Number.isSafeInteger(total) || total < 0) throw new DataError(`sample: expected a total >= 0, got ${total}`);
  if (count >= total) return Array.from({ length: total }, (_, i) => i);
  const rng = new Prng(seed);
  const chosen = new Set<number>();
  for (let j = total - count; j < total; j++) {
    const t = draw(rng, j + 1);
    chosen.add(chosen.has(t) ? j : t);
  }
  return [...chosen].sort((a, b) => a - b);
}

/** A uniform integer in [0, n) for n up to 2⁵³ (two 32-bit draws above 2³²). */
function draw(rng: Prng, n: number): number {
  if (n <= 2 ** 32) return rng.int(n);
  for (;;) {
    const x = rng.nextU32() * 2 ** 21 + (rng.nextU32() >>> 11);
    const limit = Math.floor(2 ** 53 / n) * n;
    if (x < limit) return x % n;
  }
}

/** "A:B" → sample indices A … B−1. */
export function parseIndexRange(text: string): IndexRange {
  const m = /^(\d+):(\d+)$/.exec(text.trim());
  if (!m)
    throw new ConfigError(`--sequences "${text}": expected A:B, the sample indices from A up to but not including B`);
  const [a, b] = [Number(m[1]), Number(m[2])];
  if (b <= a) throw new ConfigError(`--sequences "${text}": B must be greater than A`);
  return new IndexRange(a, b);
}
