/**
 * Per-item metrics and their aggregates, as lm-evaluation-harness defines them
 * (lm_eval/api/metrics.py and lm_eval/api/task.py's process_results):
 * - multiple_choice: `acc` (argmax of the summed log-likelihoods is gold) and `acc_norm` (argmax of
 *   log-likelihood divided by the choice's length in characters, Python's `len`: code points);
 *   partial evaluation (one continuation after each of several contexts): `acc` alone;
 * - loglikelihood: `acc` (the target is the greedy continuation) and `perplexity` = exp(−mean ll);
 * - loglikelihood_rolling: `word_perplexity` = exp(−Σll / Σwords), `byte_perplexity` =
 *   exp(−Σll / Σbytes), `bits_per_byte` = −Σll / Σbytes / ln 2;
 * - generate_until: `exact_match` of the trimmed prediction and answer (as written for lm-eval YAML tasks).
 * Means carry the harness's standard error (sample standard deviation over √n). The harness
 * bootstraps the error of perplexity and leaves weighted perplexities without one; here both use
 * the delta method (deterministic, no resampling): se(exp(−m)) = exp(−m)·se(m), and for a ratio
 * R = Σa/Σb, se(R) = √(n/(n−1)·Σ(aᵢ − R·bᵢ)²) / Σb.
 */
import { countSplitAtSpaces, pythonLength } from './lm-eval/python-str.js';
import type { OutputType } from './tasks.js';

export interface ItemResult {
  itemId: string;
  acc?: number;
  accNorm?: number;
  exactMatch?: number;
  /** Summed log-likelihood: of the gold choice, the target, or the whole document. */
  loglikelihood?: number;
  isGreedy?: boolean;
  /** Tokens scored (rolling and last-word items). */
  tokens?: number;
  words?: number;
  bytes?: number;
  /** multiple_choice: the chosen string (a partial item's chosen context); generate_until: the generated text cut at the stop string. */
  prediction?: string;
  choiceLoglikelihoods?: number[];
}

export interface Aggregate {
  metric: string;
  value: number;
  /** null where it is undefined (one item). */
  stderr: number | null;
  n: number;
}

/** numpy's argmax: the first largest value, or the first NaN if there is one. */
export function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 0; i < values.length; i++) {
    if (Number.isNaN(values[i])) return i;
    if (values[i]! > values[best]!) best = i;
  }
  return best;
}

export function multipleChoiceResult(
  itemId: string,
  choices: readonly string[],
  gold: number,
  lls: readonly number[],
): ItemResult {
  const pick = argmax(lls);
  const pickNorm = argmax(lls.map((ll, i) => ll / pythonLength(choices[i]!)));
  return {
    itemId,
    acc: pick === gold ? 1 : 0,
    accNorm: pickNorm === gold ? 1 : 0,
    loglikelihood: lls[gold],
    prediction: choices[pick],
    choiceLoglikelihoods: [...lls],
  };
}

/** Partial evaluation: `acc` is whether the continuation is most likely after the gold context. */
export function partialResult(
  itemId: string,
  contexts: readonly string[],
  gold: number,
  lls: readonly number[],
): ItemResult {
  const pick = argmax(lls);
  return {
    itemId,
    acc: pick === gold ? 1 : 0,
    loglikelihood: lls[gold],
    prediction: contexts[pick],
    choiceLoglikelihoods: [...lls],
  };
}

/** Trimmed comparison; `asWritten` compares the strings as they are, as lm-eval's exact_match does (YAML tasks). */
export function exactMatch(prediction: string, answer: string, asWritten = false): number {
  if (asWritten) return prediction === answer ? 1 : 0;
  return prediction.trim() === answer.trim() ? 1 : 0;
}

/** Cuts generated text at the first occurrence of any stop string. */
export function cutAtStop(text: string, until: readonly string[]): { text: string; stopped: boolean } {
  let cut = -1;
  for (const s of until) {
    const at = text.indexOf(s);
    if (at >= 0 && (cut < 0 || at < cut)) cut = at;
  }
  return cut < 0 ? { text, stopped: false } : { text: text.slice(0, cut), stopped: true };
}

/** The harness's word count: pieces of `re.split(r"\s+", doc)`, with Python's whitespace. */
export function countWords(text: string): number {
  return countSplitAtSpaces(text);
}

export function countBytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

export function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample standard deviation over √n (lm-eval's `mean_stderr`); null for fewer than two values. */
export function meanStderr(xs: readonly number[]): number | null {
  if (xs.length < 2) return null;
  const m = mean(xs);
  const variance = xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1);
  return Math.sqrt(variance / xs.length);
}

/** R = Σa/Σb with its delta-method standard error. */
export function ratioWithStderr(a: readonly number[], b: readonly number[]): { value: number; stderr: number | null } {
  const sa = a.reduce((x, y) => x + y, 0);
  const sb = b.reduce((x, y) => x + y, 0);
  const value = sa / sb;
  const n = a.length;
  if (n < 2) return { value, stderr: null };
  const squares = a.reduce((acc, ai, i) => acc + (ai - value * b[i]!) ** 2, 0);
  return { value, stderr: Math.sqrt((n / (n - 1)) * squares) / sb };
}

function meanAggregate(metric: string, xs: readonly number[]): Aggregate {
  return { metric, value: mean(xs), stderr: meanStderr(xs), n: xs.length };
}

export function aggregate(outputType: OutputType, items: readonly ItemResult[]): Aggregate[] {
  const n = items.length;
  if (n === 0) return [];
  const values = (key: keyof ItemResult): number[] => items.map((r) => r[key] as number);
  switch (outputType) {
    case 'multiple_choice':
      // Partial evaluation has no acc_norm (lm-eval's WinoGrande and WSC273 report acc alone).
      return items.every((r) => r.accNorm !== undefined)
        ? [meanAggregate('acc', values('acc')), meanAggregate('acc_norm', values('accNorm'))]
        : [meanAggregate('acc', values('acc'))];
    case 'generate_until':
      return [meanAggregate('exact_match', values('exactMatch'))];
    case 'loglikelihood': {
      const lls = values('loglikelihood');
      const m = mean(lls);
      const se = meanStderr(lls);
      const perplexity = Math.exp(-m);
      return [
        meanAggregate('acc', values('acc')),
        { metric: 'perplexity', value: perplexity, stderr: se === null ? null : perplexity * se, n },
      ];
    }
    case 'loglikelihood_rolling': {
      const lls = values('loglikelihood');
      const perWord = ratioWithStderr(lls, values('words'));
      const perByte = ratioWithStderr(lls, values('bytes'));
      const wordPpl = Math.exp(-perWord.value);
      const bytePpl = Math.exp(-perByte.value);
      return [
        {
          metric: 'word_perplexity',
          value: wordPpl,
          stderr: perWord.stderr === null ? null : wordPpl * perWord.stderr,
          n,
        },
        {
          metric: 'byte_perplexity',
          value: bytePpl,
          stderr: perByte.stderr === null ? null : bytePpl * perByte.stderr,
          n,
        },
        {
          metric: 'bits_per_byte',
          value: -perByte.value / Math.LN2,
          stderr: perByte.stderr === null ? null : perByte.stderr / Math.LN2,
          n,
        },
      ];
    }
  }
}
