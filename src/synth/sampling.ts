/** Discrete distributions over ranks, drawn with the corpus PRNG. */
import type { Prng } from '../util/prng.js';

/** Zipf weights r^-s for ranks r = 1..n (unnormalized), index 0 holding rank 1. */
export function zipfWeights(n: number, exponent: number): Float64Array {
  const weights = new Float64Array(n);
  for (let r = 1; r <= n; r++) weights[r - 1] = r ** -exponent;
  return weights;
}

/** Draws an index with probability proportional to its weight (cumulative table, binary search). */
export class WeightedSampler {
  private readonly cumulative: Float64Array;

  constructor(weights: ArrayLike<number>) {
    this.cumulative = new Float64Array(weights.length);
    let total = 0;
    for (let i = 0; i < weights.length; i++) {
      const w = weights[i]!;
      if (!(w >= 0) || !Number.isFinite(w)) throw new RangeError(`WeightedSampler: weight ${i} is ${w}`);
      total += w;
      this.cumulative[i] = total;
    }
    if (!(total > 0)) throw new RangeError('WeightedSampler: all weights are zero');
  }

  sample(rng: Prng): number {
    const u = rng.float() * this.cumulative[this.cumulative.length - 1]!;
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cumulative[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
