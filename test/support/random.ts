import { Prng } from '../../src/util/prng.js';
import type { Nd } from './reference.js';

/** Seeded test inputs drawn from the project's generator, the same on every run. */
export class Rng {
  private readonly prng: Prng;

  constructor(seed: number) {
    this.prng = new Prng(seed >>> 0);
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.prng.float();
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** An integer in [lo, hi). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo));
  }

  floats(n: number, lo: number, hi: number): Float64Array {
    return Float64Array.from({ length: n }, () => this.uniform(lo, hi));
  }

  /** Values with |v| in [lo, hi] and a random sign: never zero, never near zero. */
  nonzero(n: number, lo = 0.3, hi = 1.5): Float64Array {
    return Float64Array.from({ length: n }, () => (this.next() < 0.5 ? -1 : 1) * this.uniform(lo, hi));
  }

  /** An array of the given dims with |values| in [lo, hi], random signs unless `positive`. */
  nd(dims: readonly number[], lo = 0.3, hi = 1.5, positive = false): Nd {
    const n = dims.reduce((a, b) => a * b, 1);
    return { data: positive ? this.floats(n, lo, hi) : this.nonzero(n, lo, hi), dims: [...dims] };
  }

  ints(n: number, lo: number, hi: number): BigInt64Array {
    return BigInt64Array.from({ length: n }, () => BigInt(this.int(lo, hi)));
  }

  dims(rank: number, lo = 1, hi = 4): number[] {
    return Array.from({ length: rank }, () => this.int(lo, hi + 1));
  }
}
