/**
 * ln Γ, the incomplete gamma functions, the χ² tail and Poisson quantiles against closed forms
 * and against scipy 1.17 (`scipy.special.gammaln/gammainc/gammaincc`, `scipy.stats.chi2.sf`,
 * `scipy.stats.poisson.ppf`; the values below were printed by scipy).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  chiSquareSurvival,
  gammaP,
  gammaQ,
  lnGamma,
  poissonCdf,
  poissonQuantiles,
} from '../../src/analysis/distributions.js';

function close(actual: number, expected: number, relative = 1e-12): void {
  const scale = Math.max(Math.abs(expected), Number.MIN_VALUE);
  assert.ok(Math.abs(actual - expected) <= relative * scale, `${actual} is not within ${relative} of ${expected}`);
}

test('ln Γ matches factorials, √π and scipy', () => {
  close(lnGamma(0.5), Math.log(Math.sqrt(Math.PI)));
  close(lnGamma(10), Math.log(362880));
  close(lnGamma(100), 359.1342053695754);
  close(lnGamma(1e6), 12815504.569147611);
  close(lnGamma(0.1), 2.252712651734206, 1e-13);
  assert.ok(Math.abs(lnGamma(1)) < 1e-14 && Math.abs(lnGamma(2)) < 1e-14);
});

test('P and Q match scipy and add up to 1', () => {
  const cases: [number, number, number, number][] = [
    [0.5, 0.1, 0.34527915398142317, 0.6547208460185768],
    [3, 2.5, 0.45618688411667035, 0.5438131158833297],
    [10, 20, 0.9950045876916924, 0.0049954123083075785],
    [100, 90, 0.15822098918643007, 0.84177901081357],
  ];
  for (const [a, x, p, q] of cases) {
    close(gammaP(a, x), p, 1e-12);
    close(gammaQ(a, x), q, 1e-12);
    close(gammaP(a, x) + gammaQ(a, x), 1, 1e-14);
  }
  assert.equal(gammaP(2, 0), 0);
  assert.equal(gammaQ(2, 0), 1);
});

test('χ² upper tail: closed forms for 2, 4 and 6 degrees of freedom', () => {
  for (const x of [0.01, 0.5, 1, 3.84, 10, 50, 200]) {
    close(chiSquareSurvival(x, 2), Math.exp(-x / 2), 1e-12);
    close(chiSquareSurvival(x, 4), Math.exp(-x / 2) * (1 + x / 2), 1e-12);
    // dof 6: e^(−x/2) (1 + x/2 + (x/2)²/2)
    close(chiSquareSurvival(x, 6), Math.exp(-x / 2) * (1 + x / 2 + (x / 2) ** 2 / 2), 1e-12);
  }
  assert.equal(chiSquareSurvival(0, 3), 1);
});

test('χ² upper tail matches scipy, small tails and large degrees of freedom included', () => {
  const cases: [number, number, number][] = [
    [3.84, 1, 0.05004352124870519],
    [10, 5, 0.07523524614651217],
    [0.5, 3, 0.9188914116546758],
    [100, 80, 0.064570368921133],
    [300, 200, 5.924540335483916e-6],
    [0.001, 1, 0.9747728793699604],
    [50, 2, 1.3887943864964e-11],
    [7, 10, 0.7254449533096043],
    [200, 10, 1.6139305336977317e-37],
    [10 / 3, 3, 0.3430301461382424],
  ];
  for (const [x, dof, sf] of cases) close(chiSquareSurvival(x, dof), sf, 1e-11);
  // 286k windows' worth of degrees of freedom (a pythia run at step 143000 with window 512): looser,
  // since the exponent is a difference of numbers near 1e6.
  close(chiSquareSurvival(150000, 143000), 2.8121045151103333e-38, 1e-8);
});

test('Poisson CDF and quantiles match the pmf sums and scipy poisson.ppf', () => {
  const lambda = 1.5;
  let cdf = 0;
  let pmf = Math.exp(-lambda);
  for (let k = 0; k < 12; k++) {
    cdf += pmf;
    close(poissonCdf(k, lambda), cdf, 1e-13);
    pmf *= lambda / (k + 1);
  }
  const qs = [1, 2, 3, 4, 5, 6, 7].map((i) => i / 8);
  assert.deepEqual(poissonQuantiles(qs, 1.5), [0, 1, 1, 1, 2, 2, 3]);
  assert.deepEqual(poissonQuantiles(qs, 0.3), [0, 0, 0, 0, 0, 1, 1]);
  assert.deepEqual(poissonQuantiles(qs, 40), [33, 36, 38, 40, 42, 44, 47]);
  assert.deepEqual(poissonQuantiles(qs, 0), [0, 0, 0, 0, 0, 0, 0]);
});
