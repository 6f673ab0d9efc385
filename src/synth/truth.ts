/** truth.json: the ground truth of a generated corpus, read by the analyses to check what they measure. */
import { OPERAND_VALUES } from './arithmetic.js';
import type { SyntheticCorpus } from './corpus.js';
import { SOURCES, type SourceName } from './mix.js';
import { stereotypeOf } from './occupations.js';

export const TRUTH_FORMAT = 'pythia-synth-truth';
export const TRUTH_VERSION = 1;

/** What tokenization added: counts by source, and each canary's length in tokens. */
export interface TokenStats {
  vocabSize: number;
  eodId: number;
  /** Tokens of each source's documents, their EOD tokens included. */
  tokensBySource: Record<SourceName, number>;
  /** Tokens of each canary's text (no EOD), by canary id. */
  canaryTokens: number[];
}

export interface OutputFiles {
  corpus: string;
  tokenizer: string;
  dataset: string;
  tasks: Record<string, string>;
}

/** Least-squares slope of ln(count) against ln(rank), counts sorted in decreasing order; returns -slope. */
export function fitZipfExponent(counts: readonly number[]): number {
  const sorted = counts.filter((c) => c > 0).sort((a, b) => b - a);
  const n = sorted.length;
  if (n < 2) return NaN;
  let sx = 0,
    sy = 0,
    sxx = 0,
    sxy = 0;
  sorted.forEach((c, i) => {
    const x = Math.log(i + 1);
    const y = Math.log(c);
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  });
  return -(n * sxy - sx * sy) / (n * sxx - sx * sx);
}

function round(x: number, digits = 6): number {
  return Number.isFinite(x) ? Math.round(x * 10 ** digits) / 10 ** digits : x;
}

export function buildTruth(corpus: SyntheticCorpus, tokens: TokenStats, files: OutputFiles): object {
  const { options } = corpus;
  const documentsBySource = Object.fromEntries(SOURCES.map((s) => [s, 0])) as Record<SourceName, number>;
  for (const d of corpus.documents) documentsBySource[d.source]++;
  const totalTokens = SOURCES.reduce((sum, s) => sum + tokens.tokensBySource[s], 0);
  const rankOf = new Array<number>(OPERAND_VALUES);
  corpus.arithmetic.operandByRank.forEach((value, r) => {
    rankOf[value] = r + 1;
  });
  const problems = [...corpus.arithmetic.problemCounts.entries()].sort((a, b) =>
    a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0,
  );

  return {
    format: TRUTH_FORMAT,
    version: TRUTH_VERSION,
    seed: options.seed,
    parameters: {
      tokens: options.tokens,
      documents: options.documents ?? null,
      vocabSize: options.vocabSize,
      entities: options.entities,
      entityZipf: options.entityZipf,
      operandZipf: options.operandZipf,
      questionShare: options.questionShare,
      canariesPerLevel: options.canariesPerLevel,
      canaryWords: options.canaryWords,
      arithmeticTaskOperands: options.arithmeticTaskOperands,
      lambadaItems: options.lambadaItems,
    },
    files,
    totals: {
      documents: corpus.documents.length,
      tokens: totalTokens,
      vocabSize: tokens.vocabSize,
      eodId: tokens.eodId,
    },
    mix: Object.fromEntries(
      SOURCES.map((s) => [
        s,
        {
          weight: round(options.mix[s]),
          documents: documentsBySource[s],
          tokens: tokens.tokensBySource[s],
          tokenShare: round(totalTokens > 0 ? tokens.tokensBySource[s] / totalTokens : 0),
        },
      ]),
    ),
    entities: {
      zipfExponent: options.entityZipf,
      fittedExponent: round(fitZipfExponent(corpus.facts.entities.map((e) => e.count)), 4),
      list: corpus.facts.entities,
    },
    arithmetic: {
      zipfExponent: options.operandZipf,
      operandByRank: corpus.arithmetic.operandByRank,
      operands: Array.from({ length: OPERAND_VALUES }, (_, v) => ({
        value: v,
        rank: rankOf[v],
        asX1: corpus.arithmetic.x1Counts[v],
        asX2: corpus.arithmetic.x2Counts[v],
        count: corpus.arithmetic.x1Counts[v]! + corpus.arithmetic.x2Counts[v]!,
        numberCount: corpus.arithmetic.numberCounts[v],
      })),
      problems: Object.fromEntries(problems),
    },
    occupations: corpus.occupations.map((o) => ({
      occupation: o.occupation,
      maleRatio: o.maleRatio,
      stereotype: stereotypeOf(o) ?? null,
      male: o.male,
      female: o.female,
      observedMaleRatio: o.male + o.female > 0 ? round(o.male / (o.male + o.female)) : null,
    })),
    canaries: corpus.canaries.map((c) => ({
      id: c.id,
      count: c.count,
      tokens: tokens.canaryTokens[c.id],
      documents: c.documents,
      text: c.text,
    })),
  };
}
