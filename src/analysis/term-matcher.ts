/**
 * Counting many token sequences at once in arrays of token ids. The patterns are grouped by
 * their first token in a table indexed by token id (compressed rows: the candidates for token t
 * are `candidates[start[t] .. start[t+1])`), so a token that starts no pattern costs two loads
 * and a comparison, and only the candidates of a matching first token are compared further.
 */
import { DataError } from '../util/errors.js';

export class TermMatcher {
  /** Candidates of token t: `candidates[start[t]] … candidates[start[t + 1] − 1]`. */
  private readonly start: Int32Array;
  private readonly candidates: Int32Array;
  /** Pattern p is `tokens[offset[p] … offset[p + 1])`. */
  private readonly offset: Int32Array;
  private readonly tokens: Int32Array;
  private readonly termOf: Int32Array;

  private readonly words: WordEdges | undefined;
  private readonly checkBefore: Uint8Array;

  /**
   * `patterns[p]` counts towards term `termOf[p]` (of `terms` terms). With `words`, a match
   * counts only at word boundaries: the token after it must not start with a word character,
   * and, for patterns whose `checkBefore[p]` is set (a term's bare form), the token before it
   * must not end with one. The edges of the scanned range are boundaries.
   */
  constructor(
    patterns: readonly (readonly number[])[],
    termOf: readonly number[],
    readonly terms: number,
    words?: WordEdges,
    checkBefore?: readonly boolean[],
  ) {
    if (patterns.length !== termOf.length)
      throw new DataError(`term matcher: ${patterns.length} patterns but ${termOf.length} term indices`);
    let bound = 0;
    patterns.forEach((p, i) => {
      if (p.length === 0) throw new DataError(`term matcher: pattern ${i} is empty`);
      for (const id of p)
        if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff)
          throw new DataError(`term matcher: pattern ${i} has token id ${id}`);
      const t = termOf[i]!;
      if (!Number.isInteger(t) || t < 0 || t >= terms)
        throw new DataError(`term matcher: pattern ${i} names term ${t} of ${terms}`);
      bound = Math.max(bound, p[0]! + 1);
    });
    const perFirst = new Int32Array(bound + 1);
    for (const p of patterns) perFirst[p[0]! + 1]!++;
    for (let t = 0; t < bound; t++) perFirst[t + 1]! += perFirst[t]!;
    this.start = perFirst;
    this.candidates = new Int32Array(patterns.length);
    const fill = perFirst.slice(0, bound);
    patterns.forEach((p, i) => {
      this.candidates[fill[p[0]!]!++] = i;
    });
    this.offset = new Int32Array(patterns.length + 1);
    patterns.forEach((p, i) => {
      this.offset[i + 1] = this.offset[i]! + p.length;
    });
    this.tokens = new Int32Array(this.offset[patterns.length]!);
    patterns.forEach((p, i) => {
      this.tokens.set(p, this.offset[i]!);
    });
    this.termOf = Int32Array.from(termOf);
    this.words = words;
    this.checkBefore = Uint8Array.from(patterns, (_, p) => (checkBefore?.[p] ? 1 : 0));
  }

  /**
   * Adds to `counts[base + term]` every occurrence of a pattern lying wholly within
   * `ids[from … to)`; occurrences may overlap.
   */
  scan(ids: Int32Array, from: number, to: number, counts: Float64Array, base: number): void {
    const start = this.start;
    const bound = start.length - 1;
    const candidates = this.candidates;
    const offset = this.offset;
    const tokens = this.tokens;
    const termOf = this.termOf;
    for (let i = from; i < to; i++) {
      const t = ids[i]!;
      if (t >= bound || t < 0) continue;
      const first = start[t]!;
      const last = start[t + 1]!;
      for (let c = first; c < last; c++) {
        const p = candidates[c]!;
        const o = offset[p]!;
        const length = offset[p + 1]! - o;
        if (i + length > to) continue;
        let k = 1;
        while (k < length && ids[i + k] === tokens[o + k]) k++;
        if (k === length && (!this.words || this.atWordBoundary(ids, i, i + length, from, to, p)))
          counts[base + termOf[p]!]!++;
      }
    }
  }

  private atWordBoundary(
    ids: Int32Array,
    first: number,
    end: number,
    from: number,
    to: number,
    pattern: number,
  ): boolean {
    const { startsWord, endsWord } = this.words!;
    if (end < to && startsWord[ids[end]!] === 1) return false;
    return !(this.checkBefore[pattern] === 1 && first > from && endsWord[ids[first - 1]!] === 1);
  }
}

/** Per token id: whether its text starts (ends) with a word character (a letter, a digit or "_"). */
export interface WordEdges {
  startsWord: Uint8Array;
  endsWord: Uint8Array;
}
