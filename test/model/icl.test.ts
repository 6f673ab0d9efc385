/**
 * In-context learning (src/model/icl.ts) and its random sequences (src/model/repeated-tokens.ts):
 * the sequences and positions by hand; the induction loss and the in-context-learning score against
 * the float64 reference's logits (test/support/reference.ts) with TransformerLens's slice; a model
 * whose weights are all zero predicts every token with probability 1/V, so both losses are ln V.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { type NeoXConfig, parameterShapes } from '../../src/model/config.js';
import { iclPositions, iclScore, inductionLoss } from '../../src/model/icl.js';
import type { Params } from '../../src/model/params.js';
import { pythiaArchitecture } from '../../src/model/presets.js';
import { repeatedRandomTokens, repeatLength, repeatTokenRange } from '../../src/model/repeated-tokens.js';
import { Scorer } from '../../src/model/score.js';
import { ConfigError } from '../../src/util/errors.js';
import { randomParams } from '../eval/support.js';
import { fixtureModel } from '../support/activations.js';
import { logSoftmax, referenceGptNeoX } from '../support/reference.js';

const model = (maxPositions: number, vocabSize = 64): NeoXConfig => ({
  ...pythiaArchitecture({ numLayers: 2, hiddenSize: 32, numHeads: 4, vocabSize, maxPositions }),
  dtype: 'float32',
});

describe('repeated random tokens', () => {
  test('seeded: the same rows for a seed, others for another; the second copy is the first', () => {
    const range = { low: 100, high: 4096 };
    const rows = repeatedRandomTokens(3, 50, range, 7);
    assert.deepEqual(rows, repeatedRandomTokens(3, 50, range, 7));
    assert.notDeepEqual(rows, repeatedRandomTokens(3, 50, range, 8));
    assert.equal(rows.length, 3);
    for (const row of rows) {
      assert.equal(row.length, 100);
      assert.deepEqual(row.slice(50), row.slice(0, 50));
      assert.ok(row.every((id) => Number.isInteger(id) && id >= 100 && id < 4096));
    }
    assert.notDeepEqual(rows[0], rows[1]);
  });

  test("TransformerLens's range [100, 20000) cut to the vocabulary; the whole of a small one", () => {
    assert.deepEqual(repeatTokenRange(50304), { low: 100, high: 20000 });
    assert.deepEqual(repeatTokenRange(4096), { low: 100, high: 4096 });
    assert.deepEqual(repeatTokenRange(200), { low: 100, high: 200 });
    assert.deepEqual(repeatTokenRange(199), { low: 0, high: 199 });
  });

  test('384 tokens a copy, cut so both copies are shorter than the context', () => {
    assert.equal(repeatLength(2048), 384);
    assert.equal(repeatLength(769), 384);
    assert.equal(repeatLength(768), 383);
    assert.equal(repeatLength(128), 63);
    assert.equal(repeatLength(128, 10), 10);
    assert.throws(() => repeatLength(4), /no two copies/);
    assert.throws(() => repeatLength(128, 0), ConfigError);
  });
});

describe('in-context-learning positions', () => {
  test("Olsson et al.'s 50 and 500 of 2048, scaled to the context", () => {
    assert.deepEqual(iclPositions(2048), { early: 50, late: 500 });
    assert.deepEqual(iclPositions(4096), { early: 100, late: 1000 });
    assert.deepEqual(iclPositions(128), { early: 3, late: 31 });
    assert.deepEqual(iclPositions(8), { early: 1, late: 2 });
    assert.throws(() => iclPositions(2), /too short/);
  });
});

/** −log p(token t | tokens before it) for t = 1…T−1 of one row, from the float64 reference. */
function referenceLosses(config: NeoXConfig, params: Params, row: number[]): number[] {
  const { logits } = referenceGptNeoX(config, params, [row]);
  const V = config.vocabSize;
  const logp = logSoftmax({ data: logits.data, dims: [row.length, V] }, 1).data;
  return row.map((id, t) => (t === 0 ? Number.NaN : -logp[(t - 1) * V + id]!));
}

for (const fixture of ['parallel-r25', 'sequential-r100']) {
  describe(`induction loss and icl score, fixture ${fixture}`, () => {
    const m = fixtureModel(fixture);
    let scorer: Scorer;
    after(() => scorer?.release());

    test("the induction loss: the mean loss at positions length+2 … 2·length−1, TransformerLens's [:, subseq_len + 1:]", async () => {
      scorer = await Scorer.create(m.config, m.params, { threads: 1 });
      const length = 9;
      const rows = repeatedRandomTokens(3, length, repeatTokenRange(m.config.vocabSize), 4);
      let sum = 0;
      let count = 0;
      for (const row of rows) {
        const losses = referenceLosses(m.config, m.params, row);
        // per_token[k] is the loss of token k + 1; TransformerLens averages per_token[:, length + 1:].
        for (let k = length + 1; k < 2 * length - 1; k++) {
          sum += losses[k + 1]!;
          count++;
        }
      }
      assert.equal(count, 3 * (length - 2));
      const got = await inductionLoss(scorer, rows);
      assert.ok(Math.abs(got - sum / count) < 1e-5, `${got} vs ${sum / count}`);
    });

    test('the icl score: mean loss at the late position minus at the early one', async () => {
      scorer ??= await Scorer.create(m.config, m.params, { threads: 1 });
      const rows = m.rows.map((r) => r.slice(0, 12));
      const positions = { early: 2, late: 11 };
      const losses = rows.map((row) => referenceLosses(m.config, m.params, row));
      const early = losses.reduce((a, l) => a + l[2]!, 0) / rows.length;
      const late = losses.reduce((a, l) => a + l[11]!, 0) / rows.length;
      const got = await iclScore(scorer, rows, positions);
      assert.equal(got.early, 2);
      assert.equal(got.late, 11);
      assert.ok(Math.abs(got.earlyLoss - early) < 1e-5, `${got.earlyLoss} vs ${early}`);
      assert.ok(Math.abs(got.lateLoss - late) < 1e-5, `${got.lateLoss} vs ${late}`);
      assert.equal(got.score, got.lateLoss - got.earlyLoss);
    });
  });
}

describe('a model with all-zero weights predicts uniformly', () => {
  const config = model(64, 50);
  const params: Params = new Map(
    parameterShapes(config).map((p) => [p.name, new Float32Array(p.shape.reduce((a, b) => a * b, 1))]),
  );
  let scorer: Scorer;
  after(() => scorer?.release());

  test('induction loss ln V; icl losses ln V, score 0', async () => {
    scorer = await Scorer.create(config, params, { threads: 1 });
    const rows = repeatedRandomTokens(2, 20, repeatTokenRange(50), 1);
    assert.ok(Math.abs((await inductionLoss(scorer, rows)) - Math.log(50)) < 1e-6);
    const icl = await iclScore(scorer, rows, { early: 3, late: 30 });
    assert.ok(Math.abs(icl.earlyLoss - Math.log(50)) < 1e-6);
    assert.ok(Math.abs(icl.lateLoss - Math.log(50)) < 1e-6);
    assert.ok(Math.abs(icl.score) < 1e-6);
  });
});

describe('refusals', () => {
  const config = model(64);
  let scorer: Scorer;
  after(() => scorer?.release());

  test('rows too short for the positions, odd or unequal lengths, bad positions', async () => {
    scorer = await Scorer.create(config, randomParams(config, 1), { threads: 1 });
    await assert.rejects(iclScore(scorer, [[1, 2, 3]], { early: 1, late: 3 }), /row 0 has 3 tokens; .* needs 4/);
    await assert.rejects(iclScore(scorer, [[1, 2, 3]], { early: 2, late: 2 }), /1 ≤ early < late/);
    await assert.rejects(inductionLoss(scorer, [[1, 2, 3, 1, 2]]), /two copies of at least 3 tokens/);
    await assert.rejects(
      inductionLoss(scorer, [
        [1, 2, 3, 1, 2, 3],
        [1, 2],
      ]),
      /sequence 1 has 2 tokens/,
    );
  });
});
