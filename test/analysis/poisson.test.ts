/** The Poisson statistics of memorized counts per window, against values worked out by hand. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { poissonTest, readScoresIntoWindows, type ScoredIndex, tallyWindows } from '../../src/analysis/poisson.js';
import { repoRoot } from '../support/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'poisson-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Every index 0 … 4·window − 1 scored; the memorized ones are listed. */
function fullWindows(window: number, windows: number, memorized: number[]): ScoredIndex[] {
  const set = new Set(memorized);
  return Array.from({ length: window * windows }, (_, index) => ({ index, memorized: set.has(index) }));
}

test('counts 2, 0, 1, 3: λ, variance, dispersion, χ², p and the Q–Q pairs by hand', () => {
  // Window 4: memorized indices 1, 2 | none | 9 | 12, 13, 15 → counts [2, 0, 1, 3].
  const r = poissonTest(tallyWindows(fullWindows(4, 4, [1, 2, 9, 12, 13, 15]), 4));
  assert.equal(r.windows, 4);
  assert.equal(r.memorized, 6);
  assert.equal(r.scored, 16);
  // λ = 6/4; deviations 0.5, −1.5, −0.5, 1.5; squares sum to 5; variance 5/3.
  assert.equal(r.lambda, 1.5);
  assert.ok(Math.abs(r.variance! - 5 / 3) < 1e-15);
  // dispersion = (5/3)/1.5 = 10/9; χ² = 3 · 10/9 = 10/3 with 3 degrees of freedom.
  assert.ok(Math.abs(r.dispersion! - 10 / 9) < 1e-15);
  assert.ok(Math.abs(r.chi2! - 10 / 3) < 1e-14);
  assert.equal(r.dof, 3);
  // χ²₃ tail: erfc(√(x/2)) + √(2x/π)·e^(−x/2) = 0.3430301461382424 (scipy chi2.sf(10/3, 3)).
  assert.ok(Math.abs(r.pValue! - 0.3430301461382424) < 1e-12);
  // Q–Q: sorted counts 0, 1, 2, 3 against Poisson(1.5) quantiles at 1/5 … 4/5. CDF(0) = e^−1.5 =
  // 0.223, CDF(1) = 0.558, CDF(2) = 0.809, so the quantiles are 0, 1, 2, 2.
  assert.deepEqual(r.qq, [
    [0, 0],
    [1, 1],
    [2, 2],
    [2, 3],
  ]);
  assert.deepEqual(r.emptyWindows, []);
  assert.equal(r.partialWindows, 0);
});

test('equal counts are under-dispersed: dispersion 0, p-value 1', () => {
  const r = poissonTest(tallyWindows(fullWindows(2, 3, [0, 2, 4]), 2));
  assert.equal(r.lambda, 1);
  assert.equal(r.dispersion, 0);
  assert.equal(r.chi2, 0);
  assert.equal(r.pValue, 1);
});

test('windows with no scored sequence are left out and reported; partial windows counted', () => {
  // Window 10: indices in windows 0, 3 and 4 only (5 of 10 in window 4).
  const scored: ScoredIndex[] = [];
  for (let i = 0; i < 10; i++) scored.push({ index: i, memorized: i < 3 });
  for (let i = 30; i < 40; i++) scored.push({ index: i, memorized: i === 31 });
  for (let i = 40; i < 45; i++) scored.push({ index: i, memorized: false });
  const r = poissonTest(tallyWindows(scored, 10));
  assert.equal(r.windows, 3);
  assert.deepEqual(r.emptyWindows, [[1, 2]]);
  assert.equal(r.partialWindows, 1);
  // counts 3, 1, 0: λ = 4/3, variance = ((5/3)² + (1/3)² + (4/3)²)/2 = (42/9)/2 = 7/3.
  assert.ok(Math.abs(r.lambda - 4 / 3) < 1e-15);
  assert.ok(Math.abs(r.variance! - 7 / 3) < 1e-14);
  assert.ok(Math.abs(r.dispersion! - 7 / 4) < 1e-14);
  // dof 2: the tail is e^(−χ²/2) with χ² = 2 · 7/4 = 3.5.
  assert.ok(Math.abs(r.pValue! - Math.exp(-1.75)) < 1e-14);
});

test('nothing memorized: λ 0, no dispersion; one window: no variance', () => {
  const none = poissonTest(tallyWindows(fullWindows(4, 3, []), 4));
  assert.equal(none.lambda, 0);
  assert.equal(none.dispersion, null);
  assert.equal(none.pValue, null);
  assert.deepEqual(none.qq, [
    [0, 0],
    [0, 0],
    [0, 0],
  ]);
  const one = poissonTest(tallyWindows(fullWindows(4, 1, [1]), 4));
  assert.equal(one.variance, null);
  assert.equal(one.dof, 0);
});

test('scores files: score 1 or memorized: true count, bad lines are one-line errors', async () => {
  const good = join(dir, 'good.jsonl');
  writeFileSync(
    good,
    `${[
      '{"index": 0, "score": 1}',
      '{"index": 1, "score": 0.5}',
      '',
      '{"index": 2, "memorized": true, "score": 0.9}',
      '{"index": 5, "score": 1}',
    ].join('\n')}\n`,
  );
  const counts = await readScoresIntoWindows(good, 3);
  // The same file after a UTF-8 byte-order mark.
  const bom = join(dir, 'bom.jsonl');
  writeFileSync(bom, `\uFEFF${readFileSync(good, 'utf8')}`);
  assert.deepEqual(await readScoresIntoWindows(bom, 3), counts);
  assert.deepEqual(counts.windows, [0, 1]);
  assert.deepEqual(counts.memorized, [2, 1]);
  assert.deepEqual(counts.scored, [3, 1]);

  const bad = async (name: string, lines: string[], message: RegExp) => {
    const path = join(dir, name);
    writeFileSync(path, lines.join('\n'));
    await assert.rejects(
      readScoresIntoWindows(path, 3),
      (e: Error) =>
        e.name === 'FormatError' && message.test(e.message) && e.message.includes(path) && !e.message.includes('\n'),
    );
  };
  await bad('no-score.jsonl', ['{"index": 0, "score": 1}', '{"index": 1}'], /line 2: score: missing/);
  await bad('no-index.jsonl', ['{"score": 1}'], /line 1: index: missing/);
  const index = /index: expected an integer from 0 to 2\^53 - 1/;
  await bad('neg-index.jsonl', ['{"index": -1, "score": 1}'], new RegExp(`line 1: ${index.source}, got -1$`));
  await bad(
    'frac-index.jsonl',
    ['{"index": 0, "score": 1}', '{"index": 2.5, "score": 1}'],
    /line 2: index: .*got 2\.5$/,
  );
  await bad('text-index.jsonl', ['{"index": "7", "score": 1}'], /line 1: index: .*got "7"$/);
  // 2^53 + 1 reads as 2^53: refused rather than counted as a neighbour.
  await bad('huge-index.jsonl', ['{"index": 9007199254740993, "score": 1}'], /line 1: index: .*got a number beyond/);
  await bad('score-range.jsonl', ['{"index": 1, "score": 2}'], /line 1: score: expected a number from 0 to 1/);
  await bad(
    'twice.jsonl',
    ['{"index": 1, "score": 1}', '{"index": 1, "score": 0}'],
    /line 2: index: 1 is scored twice \(first on line 1\)$/,
  );
  await bad(
    'twice-far.jsonl',
    ['{"index": 4, "score": 1}', '{"index": 9007199254740991, "score": 1}', '{"index": 9007199254740991, "score": 0}'],
    /line 3: index: 9007199254740991 is scored twice \(first on line 2\)$/,
  );
  await bad(
    'twice-key.jsonl',
    ['{"index": 1, "score": 1, "index": 2}'],
    /line 1: not valid JSON \(duplicate key "index"/,
  );
  await bad('not-json.jsonl', ['{"index": 1,'], /line 1: not valid JSON/);
  assert.throws(() => tallyWindows([], 0), /window: expected a positive integer/);
});

test('indices near 2^32 and 2^53 take memory by the number of lines, not by the largest index', async () => {
  const path = join(dir, 'far.jsonl');
  const far = [2 ** 32 - 1, 2 ** 32, 2 ** 53 - 2, 2 ** 53 - 1];
  writeFileSync(
    path,
    `{"index": 3, "score": 1}\n${far.map((index) => `{"index": ${index}, "score": 1}`).join('\n')}\n`,
  );
  const ones = await readScoresIntoWindows(path, 1);
  assert.deepEqual(ones.windows, [3, ...far]);
  assert.deepEqual(ones.scored, [1, 1, 1, 1, 1]);
  const r = poissonTest(ones);
  assert.deepEqual(r.emptyWindows, [
    [0, 2],
    [4, 2 ** 32 - 2],
    [2 ** 32 + 1, 2 ** 53 - 3],
  ]);
  assert.equal(r.windows, 5);
  assert.equal(r.lambda, 1);
  // Window 2^32: [2^32 − 1] in window 0 with 3, then 2^32 alone; 2^53 − 2 and 2^53 − 1 share the last.
  const wide = await readScoresIntoWindows(path, 2 ** 32);
  assert.deepEqual(wide.windows, [0, 1, 2 ** 21 - 1]);
  assert.deepEqual(wide.scored, [2, 1, 2]);
  assert.deepEqual(wide.memorized, [2, 1, 2]);

  // Through the CLI, which V8 used to abort with a fatal out-of-memory error.
  const cli = join(repoRoot, 'dist/src/cli/main.js');
  const p = spawnSync(process.execPath, [cli, 'poisson', '--scores', path, '--window', '1', '--json'], {
    encoding: 'utf8',
  });
  assert.equal(p.status, 0, p.stderr);
  const json = JSON.parse(p.stdout) as { windows: number; scored: number; empty_windows: number[][] };
  assert.equal(json.windows, 5);
  assert.equal(json.scored, 5);
  assert.deepEqual(json.empty_windows, r.emptyWindows);
});

test('window boundaries are exact up to 2^53', () => {
  // (2^53 − 3) / 3 = 3002399751580329.67 rounds to …329.5 as a double, still in the window before.
  const size = 3;
  const counts = tallyWindows(
    [2 ** 53 - 4, 2 ** 53 - 3, 2 ** 53 - 2].map((index) => ({ index, memorized: false })),
    size,
  );
  assert.deepEqual(counts.windows, [(2 ** 53 - 5) / 3, (2 ** 53 - 2) / 3]);
  assert.deepEqual(counts.scored, [2, 1]);
});
