/**
 * The few distributions the analyses need, in float64: ln Γ, the regularized incomplete gamma
 * functions P(a, x) and Q(a, x) = 1 − P(a, x), the χ² upper tail and the Poisson CDF and
 * quantile built on them.
 *
 * P and Q follow Numerical Recipes (§6.2): the series for x < a + 1, the continued fraction
 * (modified Lentz) for Q otherwise, each computed directly so that a small tail keeps its
 * relative precision instead of being 1 minus something close to 1.
 */
import { DataError } from '../util/errors.js';

/** Lanczos coefficients for g = 7, n = 9 (relative error about 1e-15 for x > 0). */
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];
const LANCZOS_G = 7;
const HALF_LN_2PI = 0.9189385332046728;

/** ln Γ(x) for x > 0. */
export function lnGamma(x: number): number {
  if (!(x > 0)) throw new RangeError(`lnGamma: expected x > 0, got ${x}`);
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const z = x - 1;
  let sum = LANCZOS[0]!;
  for (let i = 1; i < LANCZOS.length; i++) sum += LANCZOS[i]! / (z + i);
  const t = z + LANCZOS_G + 0.5;
  return HALF_LN_2PI + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

const EPS = 1e-16;
const TINY = 1e-300;

/** Enough iterations for a up to about 1e12: both expansions converge in O(√a) terms near x ≈ a. */
function maxIterations(a: number): number {
  return 1000 + Math.ceil(100 * Math.sqrt(a));
}

/** x^a e^(−x) / Γ(a), the factor both expansions share, in log space. */
function logPrefactor(a: number, x: number): number {
  return a * Math.log(x) - x - lnGamma(a);
}

/** P(a, x) by its series: e^(−x) x^a / Γ(a) · Σ xⁿ / (a (a+1) … (a+n)). */
function lowerSeries(a: number, x: number): number {
  let term = 1 / a;
  let sum = term;
  const limit = maxIterations(a);
  for (let n = 1; n < limit; n++) {
    term *= x / (a + n);
    sum += term;
    if (Math.abs(term) < Math.abs(sum) * EPS) return sum * Math.exp(logPrefactor(a, x));
  }
  throw new RangeError(`incomplete gamma series did not converge for a=${a}, x=${x}`);
}

/** Q(a, x) by its continued fraction (modified Lentz). */
function upperFraction(a: number, x: number): number {
  let b = x + 1 - a;
  let c = 1 / TINY;
  let d = 1 / b;
  let h = d;
  const limit = maxIterations(a);
  for (let i = 1; i < limit; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPS) return h * Math.exp(logPrefactor(a, x));
  }
  throw new RangeError(`incomplete gamma continued fraction did not converge for a=${a}, x=${x}`);
}

function checkGammaArguments(a: number, x: number): void {
  if (!(a > 0) || !Number.isFinite(a)) throw new RangeError(`incomplete gamma: expected a > 0, got ${a}`);
  if (!(x >= 0)) throw new RangeError(`incomplete gamma: expected x >= 0, got ${x}`);
}

/** The regularized lower incomplete gamma P(a, x) = γ(a, x) / Γ(a). */
export function gammaP(a: number, x: number): number {
  checkGammaArguments(a, x);
  if (x === 0) return 0;
  if (x === Infinity) return 1;
  return x < a + 1 ? lowerSeries(a, x) : 1 - upperFraction(a, x);
}

/** The regularized upper incomplete gamma Q(a, x) = Γ(a, x) / Γ(a) = 1 − P(a, x). */
export function gammaQ(a: number, x: number): number {
  checkGammaArguments(a, x);
  if (x === 0) return 1;
  if (x === Infinity) return 0;
  return x < a + 1 ? 1 - lowerSeries(a, x) : upperFraction(a, x);
}

/** Pr[X ≥ x] for X ~ χ² with `dof` degrees of freedom (scipy's `chi2.sf`). */
export function chiSquareSurvival(x: number, dof: number): number {
  if (!(dof > 0)) throw new RangeError(`chi-square: expected dof > 0, got ${dof}`);
  if (x <= 0) return 1;
  return gammaQ(dof / 2, x / 2);
}

/** Pr[X ≤ k] for X ~ Poisson(λ): Q(k + 1, λ). */
export function poissonCdf(k: number, lambda: number): number {
  if (!(lambda >= 0)) throw new RangeError(`Poisson: expected λ >= 0, got ${lambda}`);
  if (k < 0) return 0;
  const whole = Math.floor(k);
  if (lambda === 0) return 1;
  return gammaQ(whole + 1, lambda);
}

/**
 * The Poisson(λ) quantile of each probability in `probabilities` (ascending, in (0, 1)): the
 * smallest k ≥ 0 with CDF(k) ≥ q, as scipy's `poisson.ppf`. One upward walk over k serves all.
 */
export function poissonQuantiles(probabilities: readonly number[], lambda: number): number[] {
  const out: number[] = [];
  let k = 0;
  let cdf = poissonCdf(0, lambda);
  let previous = 0;
  for (const q of probabilities) {
    if (!(q > 0 && q < 1) || q < previous)
      throw new DataError(`Poisson quantiles: probabilities must ascend within (0, 1), got ${q}`);
    previous = q;
    while (cdf < q) cdf = poissonCdf(++k, lambda);
    out.push(k);
  }
  return out;
}
