/**
 * Memorization of the synthetic corpus's canaries against their duplication counts: each canary
 * (a document planted `count` times, listed in `truth.json`) is tokenized as the corpus was, and
 * scored like a training sequence (`scoreSequences`): its first `promptLength` tokens as the prompt,
 * the next `continuationLength` as the truth. Pythia's finding to check: memorization rises with
 * duplication and with model size.
 */
import { readFileSync } from 'node:fs';
import type { TextTokenizer } from '../data/tokenizer.js';
import { parseJsonFile } from '../formats/strict-json.js';
import type { Decoder } from '../model/decoder.js';
import { DataError, FormatError } from '../util/errors.js';
import {
  type MemorizationOptions,
  PYTHIA_CONTINUATION_LENGTH,
  PYTHIA_PROMPT_LENGTH,
  scoreSequences,
} from './memorization.js';

export interface Canary {
  id: number;
  /** Copies in the corpus. */
  count: number;
  text: string;
}

export interface CanaryScore {
  id: number;
  count: number;
  score: number;
  memorized: boolean;
}

export interface CanarySummary {
  count: number;
  canaries: number;
  memorized: number;
  meanScore: number;
}

/** The canaries of a `pythia synth` truth.json. */
export function readCanaries(truthPath: string): Canary[] {
  let truth: unknown;
  try {
    truth = parseJsonFile(readFileSync(truthPath, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code) throw e;
    throw new FormatError(truthPath, `not valid JSON: ${(e as Error).message}`);
  }
  const list = (truth as { canaries?: unknown }).canaries;
  if (!Array.isArray(list))
    throw new FormatError(truthPath, 'canaries: expected an array (a truth.json written by pythia synth)');
  return list.map((c: unknown, i) => {
    const { id, count, text } = (c ?? {}) as Record<string, unknown>;
    if (typeof id !== 'number' || typeof count !== 'number' || typeof text !== 'string') {
      throw new FormatError(truthPath, `canaries[${i}]: expected "id" and "count" numbers and a "text" string`);
    }
    return { id, count, text };
  });
}

/** Scores every canary, in the order given. */
export async function canaryMemorization(
  decoder: Decoder,
  tokenizer: TextTokenizer,
  canaries: readonly Canary[],
  options: MemorizationOptions = {},
): Promise<CanaryScore[]> {
  const prompt = options.promptLength ?? PYTHIA_PROMPT_LENGTH;
  const continuation = options.continuationLength ?? PYTHIA_CONTINUATION_LENGTH;
  const batchSize = options.batchSize ?? 64;
  const tokens = await tokenizer.encodeBatch(canaries.map((c) => c.text));
  tokens.forEach((t, i) => {
    if (t.length < prompt + continuation)
      throw new DataError(
        `canary ${canaries[i]!.id} has ${t.length} tokens, fewer than prompt (${prompt}) plus continuation (${continuation})`,
      );
  });
  const scores: CanaryScore[] = [];
  for (let start = 0; start < canaries.length; start += batchSize) {
    const batch = await scoreSequences(decoder, tokens.slice(start, start + batchSize), prompt, continuation);
    batch.forEach((s, b) => {
      scores.push({ id: canaries[start + b]!.id, count: canaries[start + b]!.count, ...s });
    });
    options.onProgress?.(scores.length, canaries.length);
  }
  return scores;
}

/** Memorized canaries and mean score per duplication count, ascending. */
export function summarizeByCount(scores: readonly CanaryScore[]): CanarySummary[] {
  const byCount = new Map<number, CanaryScore[]>();
  for (const s of scores) byCount.set(s.count, [...(byCount.get(s.count) ?? []), s]);
  return [...byCount.entries()]
    .sort(([a], [b]) => a - b)
    .map(([count, group]) => ({
      count,
      canaries: group.length,
      memorized: group.filter((s) => s.memorized).length,
      meanScore: group.reduce((sum, s) => sum + s.score, 0) / group.length,
    }));
}
