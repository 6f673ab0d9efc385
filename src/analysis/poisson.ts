/**
 * Memorized sequences as a Poisson process over training order (the Pythia paper's case
 * study on training order and memorization, after the
 * `predictable-memorization/eda.ipynb` Q–Q plot): count memorized sequences in windows of
 * consecutive sample indices, and ask whether the counts look like draws from one Poisson
 * distribution, as they would if memorization did not depend on when a sequence was trained on.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { DataError, FormatError } from '../util/errors.js';
import { chiSquareSurvival, poissonQuantiles } from './distributions.js';

/** One scored sequence: its sample index in training order and whether it was memorized. */
export interface ScoredIndex {
  index: number;
  memorized: boolean;
}

/** Memorized and scored sequences per window; window w holds indices [w·size, (w+1)·size). */
export interface WindowCounts {
  size: number;
  memorized: number[];
  scored: number[];
}

export interface PoissonTest {
  /** Sequences per window. */
  window: number;
  /** Windows kept: those with at least one scored sequence. */
  windows: number;
  /** Windows 0 … last scored one that had no scored sequence, as inclusive ranges [first, last]. */
  emptyWindows: [number, number][];
  /** Kept windows with fewer scored sequences than `window`. */
  partialWindows: number;
  scored: number;
  memorized: number;
  /** Mean memorized count per kept window. */
  lambda: number;
  /** Sample variance (n − 1 denominator) of the counts; null with fewer than 2 windows. */
  variance: number | null;
  /** Index of dispersion, variance / λ; null when λ = 0 or fewer than 2 windows. */
  dispersion: number | null;
  /** (windows − 1) · dispersion, χ² with windows − 1 degrees of freedom under the Poisson hypothesis. */
  chi2: number | null;
  dof: number;
  /** Pr[χ²(dof) ≥ chi2]: small when the counts are over-dispersed (clustered in training order). */
  pValue: number | null;
  /** [Poisson(λ) quantile at i/(n+1), i-th smallest count] for i = 1 … n (statsmodels' ProbPlot). */
  qq: [number, number][];
}

/** Sample indices below 2³² (Pythia has 146,432,000), so a bitmap can say which were seen. */
function isSampleIndex(index: unknown): index is number {
  return typeof index === 'number' && Number.isInteger(index) && index >= 0 && index < 2 ** 32;
}

/** Tallies scored sequences into windows; an index given twice is an error. */
export class WindowTally {
  private readonly memorizedCounts: number[] = [];
  private readonly scoredCounts: number[] = [];
  private seen = new Uint8Array(1024);

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new DataError(`window: expected a positive integer, got ${size}`);
  }

  /** Adds one sequence; returns false if its index was already added. */
  add(index: number, memorized: boolean): boolean {
    const byte = index >>> 3;
    if (byte >= this.seen.length) {
      const grown = new Uint8Array(Math.max(byte + 1, 2 * this.seen.length));
      grown.set(this.seen);
      this.seen = grown;
    }
    const bit = 1 << (index & 7);
    if (this.seen[byte]! & bit) return false;
    this.seen[byte]! |= bit;
    const w = Math.floor(index / this.size);
    while (this.scoredCounts.length <= w) {
      this.scoredCounts.push(0);
      this.memorizedCounts.push(0);
    }
    this.scoredCounts[w]!++;
    if (memorized) this.memorizedCounts[w]!++;
    return true;
  }

  counts(): WindowCounts {
    return { size: this.size, memorized: [...this.memorizedCounts], scored: [...this.scoredCounts] };
  }
}

export function tallyWindows(sequences: Iterable<ScoredIndex>, window: number): WindowCounts {
  const tally = new WindowTally(window);
  for (const s of sequences) {
    if (!isSampleIndex(s.index)) throw new DataError(`index: expected an integer from 0 to 2^32 - 1, got ${s.index}`);
    if (!tally.add(s.index, s.memorized)) throw new DataError(`index ${s.index} is scored twice`);
  }
  return tally.counts();
}

/** The Poisson statistics of the memorized counts per window (see `PoissonTest`). */
export function poissonTest(counts: WindowCounts): PoissonTest {
  const kept: number[] = [];
  const emptyWindows: [number, number][] = [];
  let partialWindows = 0;
  let scored = 0;
  counts.scored.forEach((n, w) => {
    if (n === 0) {
      const last = emptyWindows[emptyWindows.length - 1];
      if (last && last[1] === w - 1) last[1] = w;
      else emptyWindows.push([w, w]);
      return;
    }
    if (n < counts.size) partialWindows++;
    scored += n;
    kept.push(counts.memorized[w]!);
  });
  if (kept.length === 0) throw new DataError('no scored sequences: nothing to test');
  const n = kept.length;
  const memorized = kept.reduce((a, b) => a + b, 0);
  const lambda = memorized / n;
  let variance: number | null = null;
  if (n >= 2) {
    let squares = 0;
    for (const c of kept) squares += (c - lambda) ** 2;
    variance = squares / (n - 1);
  }
  const dispersion = variance !== null && lambda > 0 ? variance / lambda : null;
  const chi2 = dispersion !== null ? (n - 1) * dispersion : null;
  const pValue = chi2 !== null ? chiSquareSurvival(chi2, n - 1) : null;
  const observed = [...kept].sort((a, b) => a - b);
  const expected = poissonQuantiles(
    observed.map((_, i) => (i + 1) / (n + 1)),
    lambda,
  );
  const qq = observed.map((o, i): [number, number] => [expected[i]!, o]);
  return {
    window: counts.size,
    windows: n,
    emptyWindows,
    partialWindows,
    scored,
    memorized,
    lambda,
    variance,
    dispersion,
    chi2,
    dof: n - 1,
    pValue,
    qq,
  };
}

/**
 * Reads a scores file (JSON Lines, one object per sequence, as `pythia memorize --out` writes):
 * `index` (a non-negative integer) and `memorized` (boolean) or else `score` (memorized when 1).
 */
export async function readScoresIntoWindows(path: string, window: number): Promise<WindowCounts> {
  const tally = new WindowTally(window);
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let lineNumber = 0;
  try {
    for await (const line of lines) {
      lineNumber++;
      if (line.trim() === '') continue;
      const where = `line ${lineNumber}`;
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch {
        throw new FormatError(path, `${where}: not valid JSON`);
      }
      if (typeof record !== 'object' || record === null || Array.isArray(record))
        throw new FormatError(path, `${where}: expected a JSON object`);
      const { index, score, memorized } = record as Record<string, unknown>;
      if (index === undefined)
        throw new FormatError(path, `${where}: index: missing (the sample index in training order)`);
      if (!isSampleIndex(index))
        throw new FormatError(
          path,
          `${where}: index: expected an integer from 0 to 2^32 - 1, got ${JSON.stringify(index)}`,
        );
      let isMemorized: boolean;
      if (memorized !== undefined) {
        if (typeof memorized !== 'boolean')
          throw new FormatError(path, `${where}: memorized: expected true or false, got ${JSON.stringify(memorized)}`);
        isMemorized = memorized;
      } else if (score !== undefined) {
        if (typeof score !== 'number' || !(score >= 0 && score <= 1))
          throw new FormatError(path, `${where}: score: expected a number from 0 to 1, got ${JSON.stringify(score)}`);
        isMemorized = score === 1;
      } else {
        throw new FormatError(path, `${where}: score: missing (give score, or memorized)`);
      }
      if (!tally.add(index, isMemorized)) {
        throw new FormatError(path, `${where}: index: ${index} is scored twice`);
      }
    }
  } finally {
    lines.close();
  }
  return tally.counts();
}
