/**
 * The head detectors (src/model/head-detectors.ts): the detection patterns against hand-built
 * answers and against a line-by-line transcription of TransformerLens's get_*_detection_pattern
 * (torch.roll, the zeroed first column, torch.tril); the "mul" score of hand-built attention
 * patterns; and every head's scores on a fixture checkpoint against the same definitions applied
 * to the float64 reference's attention patterns (test/support/reference.ts).
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ActivationRunner } from '../../src/model/activations.js';
import type { NeoXConfig } from '../../src/model/config.js';
import { DETECTORS, type Detector, detectionPattern, headScores, mulScore } from '../../src/model/head-detectors.js';
import type { Params } from '../../src/model/params.js';
import { pythiaArchitecture } from '../../src/model/presets.js';
import { repeatedRandomTokens } from '../../src/model/repeated-tokens.js';
import { ConfigError } from '../../src/util/errors.js';
import { Prng } from '../../src/util/prng.js';
import { randomParams } from '../eval/support.js';
import { fixtureModel } from '../support/activations.js';
import { referenceGptNeoX } from '../support/reference.js';

/** A [T, T] 0/1 matrix from the cells listed, as rows of strings for readable failures. */
const cells = (T: number, ones: [number, number][]): string[] => {
  const m = Array.from({ length: T }, () => new Array<number>(T).fill(0));
  for (const [i, j] of ones) m[i]![j] = 1;
  return m.map((row) => row.join(''));
};
const rowsOf = (d: Uint8Array, T: number): string[] =>
  Array.from({ length: T }, (_, i) => Array.from(d.subarray(i * T, (i + 1) * T)).join(''));

/** TransformerLens's three functions, step by step as written there, on plain arrays. */
function transformerLensPattern(detector: Detector, tokens: readonly number[]): number[][] {
  const T = tokens.length;
  const tril = (m: number[][]) => m.map((row, i) => row.map((v, j) => (j <= i ? v : 0)));
  if (detector === 'previous_token') {
    const d = Array.from({ length: T }, () => new Array<number>(T).fill(0));
    for (let k = 0; k < T - 1; k++) d[1 + k]![k] = 1; // detection_pattern[1:, :-1] = eye(T − 1)
    return tril(d);
  }
  // token_pattern = tokens.repeat(T, 1); eq_mask = token_pattern == token_pattern.T; diagonal 0.
  const eq = Array.from({ length: T }, (_, i) =>
    Array.from({ length: T }, (_, j) => (i !== j && tokens[j] === tokens[i] ? 1 : 0)),
  );
  const duplicate = tril(eq);
  if (detector === 'duplicate_token') return duplicate;
  const rolled = duplicate.map((row) => row.map((_, j) => row[(j - 1 + T) % T]!)); // torch.roll(shifts=1, dims=1)
  return tril(rolled.map((row) => row.map((v, j) => (j === 0 ? 0 : v))));
}

describe('detection patterns', () => {
  test('by hand: tokens 5 7 5 7 9', () => {
    const tokens = [5, 7, 5, 7, 9];
    assert.deepEqual(
      rowsOf(detectionPattern('previous_token', tokens), 5),
      cells(5, [
        [1, 0],
        [2, 1],
        [3, 2],
        [4, 3],
      ]),
    );
    assert.deepEqual(
      rowsOf(detectionPattern('duplicate_token', tokens), 5),
      cells(5, [
        [2, 0],
        [3, 1],
      ]),
    );
    // Destination 2 (a 5) attends to the token after the earlier 5 (position 1); destination 3 (a 7) to position 2.
    assert.deepEqual(
      rowsOf(detectionPattern('induction', tokens), 5),
      cells(5, [
        [2, 1],
        [3, 2],
      ]),
    );
  });

  test('a repeated token: the induction pattern includes the diagonal, as TransformerLens keeps it', () => {
    // Token 1 equals token 0, so destination 1 attends to itself (the token after the earlier 4).
    assert.deepEqual(
      rowsOf(detectionPattern('induction', [4, 4, 4]), 3),
      cells(3, [
        [1, 1],
        [2, 1],
        [2, 2],
      ]),
    );
  });

  test("equal TransformerLens's definitions, transcribed step by step, on random tokens with repeats", () => {
    const rng = new Prng(3);
    for (let trial = 0; trial < 20; trial++) {
      const T = 2 + rng.int(30);
      const tokens = Array.from({ length: T }, () => rng.int(6));
      for (const detector of DETECTORS)
        assert.deepEqual(
          rowsOf(detectionPattern(detector, tokens), T),
          transformerLensPattern(detector, tokens).map((row) => row.join('')),
          `${detector} on ${tokens}`,
        );
    }
  });
});

describe('the "mul" score', () => {
  const T = 6;
  /** A causal pattern with each destination's attention given by `to(i)`: source → weight. */
  const pattern = (to: (i: number) => [number, number][]): Float32Array => {
    const p = new Float32Array(T * T);
    for (let i = 0; i < T; i++) for (const [j, w] of to(i)) p[i * T + j] = w;
    return p;
  };
  const tokens = [3, 8, 1, 3, 8, 1];

  test('an exact previous-token head scores (T − 1)/T: position 0 can only attend to itself', () => {
    const p = pattern((i) => [[Math.max(i - 1, 0), 1]]);
    assert.equal(mulScore(p, 0, detectionPattern('previous_token', tokens)), (T - 1) / T);
    assert.equal(mulScore(p, 0, detectionPattern('duplicate_token', tokens)), 0);
  });

  test('an exact induction head on a sequence repeated twice scores 1/2: the first copy has nowhere to look', () => {
    // Second copy: destination i attends to i − 3 + 1; first copy: to itself.
    const p = pattern((i) => [[i >= 3 ? i - 2 : i, 1]]);
    assert.equal(mulScore(p, 0, detectionPattern('induction', tokens)), 3 / 6);
    const duplicate = pattern((i) => [[i >= 3 ? i - 3 : i, 1]]);
    assert.equal(mulScore(duplicate, 0, detectionPattern('duplicate_token', tokens)), 3 / 6);
  });

  test('the share of attention on the detection pattern: split attention counts in part', () => {
    const p = pattern((i) =>
      i === 0
        ? [[0, 1]]
        : [
            [i - 1, 0.25],
            [i, 0.75],
          ],
    );
    assert.equal(mulScore(p, 0, detectionPattern('previous_token', tokens)), (5 * 0.25) / 6);
  });

  test('divides by Σ pattern, as TransformerLens does, not by the number of rows', () => {
    const p = pattern((i) => (i === 0 ? [[0, 2]] : [[i - 1, 1]]));
    assert.equal(mulScore(p, 0, detectionPattern('previous_token', tokens)), 5 / 7);
    assert.equal(mulScore(new Float32Array(2 * T * T).fill(0).fill(1, T * T), T * T, new Uint8Array(T * T)), 0);
  });
});

/** Every head's scores from the float64 reference's patterns, averaged over rows one by one. */
function referenceScores(config: NeoXConfig, params: Params, rows: number[][]) {
  const { numLayers: L, numHeads: H } = config;
  const sums = Array.from({ length: L * H }, () => [0, 0, 0]);
  for (const row of rows) {
    const T = row.length;
    const { activations } = referenceGptNeoX(config, params, [row]);
    for (let l = 0; l < L; l++) {
      const p = activations.get(`blocks.${l}.attn.hook_pattern`)!.data;
      for (let h = 0; h < H; h++)
        DETECTORS.forEach((detector, k) => {
          const d = transformerLensPattern(detector, row);
          let matched = 0;
          let total = 0;
          for (let i = 0; i < T; i++)
            for (let j = 0; j < T; j++) {
              const v = p[((h * T + i) * T + j) as number]!;
              total += v;
              matched += v * d[i]![j]!;
            }
          sums[l * H + h]![k]! += matched / total;
        });
    }
  }
  return sums.map((s) => s.map((v) => v / rows.length));
}

function assertScoresClose(got: Awaited<ReturnType<typeof headScores>>, expected: number[][], label: string) {
  assert.equal(got.length, expected.length);
  got.forEach((s, i) => {
    const values = [s.previousToken, s.duplicateToken, s.induction];
    values.forEach((v, k) => {
      assert.ok(
        Math.abs(v - expected[i]![k]!) < 1e-6,
        `${label} layer ${s.layer} head ${s.head} ${DETECTORS[k]}: ${v} vs ${expected[i]![k]}`,
      );
    });
  });
}

for (const fixture of ['parallel-r25', 'sequential-r100']) {
  describe(`head scores, fixture ${fixture}`, () => {
    const m = fixtureModel(fixture);
    const runner = new ActivationRunner(m.config, m.params, { threads: 1 });
    after(() => runner.release());

    test('equal the definitions on the float64 reference patterns: repeated random rows and rows of other lengths', async () => {
      const rows = [
        ...repeatedRandomTokens(2, 12, { low: 100, high: m.config.vocabSize }, 5),
        m.rows[0]!.slice(0, 17),
        [7, 9, 7, 9, 7, 11],
      ];
      const got = await headScores(runner, rows);
      assert.deepEqual(
        got.map((s) => [s.layer, s.head]),
        Array.from({ length: m.config.numLayers * m.config.numHeads }, (_, i) => [
          Math.floor(i / m.config.numHeads),
          i % m.config.numHeads,
        ]),
      );
      assertScoresClose(got, referenceScores(m.config, m.params, rows), fixture);
    });
  });
}

describe('head scores of a model with sharp attention', () => {
  const config: NeoXConfig = {
    ...pythiaArchitecture({ numLayers: 3, hiddenSize: 32, numHeads: 4, vocabSize: 64, maxPositions: 64 }),
    dtype: 'float32',
  };
  const params = randomParams(config, 11);
  const runner = new ActivationRunner(config, params, { threads: 1 });
  after(() => runner.release());
  const rows = repeatedRandomTokens(3, 10, { low: 0, high: 64 }, 2);

  test('equal the definitions on the float64 reference patterns, and differ from head to head', async () => {
    const got = await headScores(runner, rows);
    assertScoresClose(got, referenceScores(config, params, rows), 'sharp');
    assert.ok(new Set(got.map((s) => s.previousToken.toFixed(3))).size > 4, 'heads that differ');
  });

  test('the same scores with the layers run one at a time (patterns held under the byte limit)', async () => {
    const whole = await headScores(runner, rows);
    const byLayer = await headScores(runner, rows, { patternBytes: 1 });
    // Other graphs, other float32 roundings: equal within them.
    assertScoresClose(
      byLayer,
      whole.map((s) => [s.previousToken, s.duplicateToken, s.induction]),
      'one layer at a time',
    );
  });

  test('refuses rows of one token, longer than the context, or with ids outside the vocabulary', async () => {
    await assert.rejects(headScores(runner, [[1]]), /sequence 0: 1 tokens; head detection needs 2 to 64/);
    await assert.rejects(headScores(runner, [[1, 2], new Array(65).fill(1)]), /sequence 1: 65 tokens/);
    await assert.rejects(headScores(runner, [[1, 64]]), ConfigError);
    await assert.rejects(headScores(runner, []), /at least one sequence/);
  });
});
