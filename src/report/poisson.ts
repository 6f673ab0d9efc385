/**
 * The Poisson pieces the memorization charts need: the distribution's quantiles (for the Q–Q plot
 * and the band of window counts a Poisson process would give) from its cumulative sums.
 */

/** Smallest k with P(X ≤ k) ≥ p for X ~ Poisson(λ). */
export function poissonQuantile(p: number, lambda: number): number {
  if (!(lambda > 0)) return 0;
  let k = 0;
  let pmf = Math.exp(-lambda);
  let cdf = pmf;
  const limit = lambda + 20 * Math.sqrt(lambda) + 50;
  while (cdf < p && k < limit) {
    k += 1;
    pmf *= lambda / k;
    cdf += pmf;
  }
  return k;
}

/** Observed counts sorted against the Poisson quantiles at (i − ½)/n, with λ the counts' mean. */
export function poissonQQ(counts: readonly number[]): {
  lambda: number;
  pairs: { expected: number; observed: number }[];
} {
  const n = counts.length;
  if (n === 0) return { lambda: 0, pairs: [] };
  const lambda = counts.reduce((a, b) => a + b, 0) / n;
  const sorted = [...counts].sort((a, b) => a - b);
  return {
    lambda,
    pairs: sorted.map((observed, i) => ({ expected: poissonQuantile((i + 0.5) / n, lambda), observed })),
  };
}
