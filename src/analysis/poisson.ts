/**
 * Memorized sequences as a Poisson process over training order (the Pythia paper's case
 * study on training order and memorization, after the
 * `predictable-memorization/eda.ipynb` Q–Q plot): count memorized sequences in windows of
 * consecutive sample indices, and ask whether the counts look like draws from one Poisson
 * distribution, as they would if memorization did not depend on when a sequence was trained on.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { isJsonObject, JsonSyntaxError, type JsonValue, parseStrictJson } from '../formats/strict-json.js';
import { DataError, FormatError } from '../util/errors.js';
import { chiSquareSurvival, poissonQuantiles } from './distributions.js';

/** One scored sequence: its sample index in training order and whether it was memorized. */
export interface ScoredIndex {
  index: number;
  memorized: boolean;
}

/**
 * Memorized and scored sequences per window, for the windows that hold at least one scored
 * sequence, in ascending order; window w holds indices [w·size, (w+1)·size).
 */
export interface WindowCounts {
  size: number;
  windows: number[];
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

/** Sample indices are the integers a double holds exactly (Pythia has 146,432,000). */
const SAMPLE_INDEX = 'an integer from 0 to 2^53 - 1';

function isSampleIndex(index: unknown): index is number {
  return typeof index === 'number' && Number.isSafeInteger(index) && index >= 0;
}

/** What an index that is not a sample index was, as a message ends. */
function described(index: unknown): string {
  return typeof index === 'number' && Math.abs(index) > Number.MAX_SAFE_INTEGER
    ? 'a number beyond 2^53 - 1 (which a double does not hold exactly)'
    : JSON.stringify(index);
}

/** A list of numbers that grows as they are added: 8 bytes each, whatever their size. */
class NumberList {
  private data = new Float64Array(1024);
  private length = 0;

  push(x: number): void {
    if (this.length === this.data.length) {
      const grown = new Float64Array(2 * this.data.length);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length++] = x;
  }

  /** The numbers in ascending order (sorted in place). */
  sorted(): Float64Array {
    return this.data.subarray(0, this.length).sort();
  }
}

/**
 * Tallies scored sequences into windows. Memory follows the number of sequences added (8 bytes
 * each, 16 if memorized), not the indices: they are kept, sorted, and only the windows that hold
 * one are formed.
 */
export class WindowTally {
  private readonly scored = new NumberList();
  private readonly memorized = new NumberList();

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new DataError(`window: expected a positive integer, got ${size}`);
  }

  add(index: number, memorized: boolean): void {
    this.scored.push(index);
    if (memorized) this.memorized.push(index);
  }

  /** The smallest index added more than once, if any. */
  repeatedIndex(): number | undefined {
    const scored = this.scored.sorted();
    for (let i = 1; i < scored.length; i++) if (scored[i] === scored[i - 1]) return scored[i];
    return undefined;
  }

  /** The counts per window; an index added twice is an error. */
  counts(): WindowCounts {
    const repeated = this.repeatedIndex();
    if (repeated !== undefined) throw new DataError(`index ${repeated} is scored twice`);
    // Below 2^53, index / size is at least 1/size from the next integer, more than half the spacing
    // of doubles there: it never rounds across a window boundary.
    const windowOf = (index: number) => Math.floor(index / this.size);
    const counts: WindowCounts = { size: this.size, windows: [], memorized: [], scored: [] };
    for (const index of this.scored.sorted()) {
      const w = windowOf(index);
      if (counts.windows[counts.windows.length - 1] !== w) {
        counts.windows.push(w);
        counts.scored.push(0);
        counts.memorized.push(0);
      }
      counts.scored[counts.scored.length - 1]!++;
    }
    // Every memorized index is also a scored one, so its window is there, in the same order.
    let k = 0;
    for (const index of this.memorized.sorted()) {
      const w = windowOf(index);
      while (counts.windows[k] !== w) k++;
      counts.memorized[k]!++;
    }
    return counts;
  }
}

export function tallyWindows(sequences: Iterable<ScoredIndex>, window: number): WindowCounts {
  const tally = new WindowTally(window);
  for (const s of sequences) {
    if (!isSampleIndex(s.index)) throw new DataError(`index: expected ${SAMPLE_INDEX}, got ${described(s.index)}`);
    tally.add(s.index, s.memorized);
  }
  return tally.counts();
}

/** The Poisson statistics of the memorized counts per window (see `PoissonTest`). */
export function poissonTest(counts: WindowCounts): PoissonTest {
  const kept: number[] = [];
  const emptyWindows: [number, number][] = [];
  let partialWindows = 0;
  let scored = 0;
  let previous = -1;
  counts.windows.forEach((w, i) => {
    if (w > previous + 1) emptyWindows.push([previous + 1, w - 1]);
    previous = w;
    const n = counts.scored[i]!;
    if (n < counts.size) partialWindows++;
    scored += n;
    kept.push(counts.memorized[i]!);
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

/** One line of a scores file. */
interface ScoreLine {
  line: number;
  index: number;
  memorized: boolean;
}

/**
 * Reads a scores file (JSON Lines, one object per sequence, as `pythia memorize --out` writes):
 * `index` (a non-negative integer) and `memorized` (boolean) or else `score` (memorized when 1).
 */
export async function readScoresIntoWindows(path: string, window: number): Promise<WindowCounts> {
  const tally = new WindowTally(window);
  for await (const s of scoreLines(path)) tally.add(s.index, s.memorized);
  const repeated = tally.repeatedIndex();
  if (repeated !== undefined) throw await repeatedIndexError(path, repeated);
  return tally.counts();
}

/** Finds the lines of an index scored twice by reading the file again: not worth tracking while tallying. */
async function repeatedIndexError(path: string, index: number): Promise<FormatError> {
  const lines: number[] = [];
  for await (const s of scoreLines(path)) {
    if (s.index === index) lines.push(s.line);
    if (lines.length === 2) break;
  }
  const [first, second] = lines;
  return second === undefined
    ? new FormatError(path, `index: ${index} is scored twice`)
    : new FormatError(path, `line ${second}: index: ${index} is scored twice (first on line ${first})`);
}

async function* scoreLines(path: string): AsyncGenerator<ScoreLine> {
  const input = createReadStream(path);
  const lines = createInterface({ input, crlfDelay: Infinity });
  let lineNumber = 0;
  try {
    for await (const text of lines) {
      lineNumber++;
      // A byte-order mark may start the file; anywhere else it is an error.
      const line = lineNumber === 1 && text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
      if (line.trim() === '') continue;
      const where = `line ${lineNumber}`;
      let record: JsonValue;
      try {
        record = parseStrictJson(line);
      } catch (e) {
        if (!(e instanceof JsonSyntaxError)) throw e;
        throw new FormatError(path, `${where}: not valid JSON (${e.message})`);
      }
      if (!isJsonObject(record)) throw new FormatError(path, `${where}: expected a JSON object`);
      const { index, score, memorized } = record;
      if (index === undefined)
        throw new FormatError(path, `${where}: index: missing (the sample index in training order)`);
      if (!isSampleIndex(index))
        throw new FormatError(path, `${where}: index: expected ${SAMPLE_INDEX}, got ${described(index)}`);
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
      yield { line: lineNumber, index, memorized: isMemorized };
    }
  } finally {
    lines.close();
    input.destroy();
  }
}
