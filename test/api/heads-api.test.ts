/** GPTNeoX.headScores, inductionLoss and iclScore: the model-level functions behind a loaded model, options checked. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { GPTNeoX } from '../../src/api/gpt-neox.js';
import { ActivationRunner } from '../../src/model/activations.js';
import { headScores } from '../../src/model/head-detectors.js';
import { iclScore, inductionLoss } from '../../src/model/icl.js';
import { repeatedRandomTokens, repeatTokenRange } from '../../src/model/repeated-tokens.js';
import { Scorer } from '../../src/model/score.js';
import { fixtureModel } from '../support/activations.js';
import { fixtureDir } from '../support/paths.js';

describe('GPTNeoX head scores and in-context learning', async () => {
  const m = fixtureModel('parallel-r25');
  const model = await GPTNeoX.fromPretrained(join(fixtureDir('parallel-r25'), 'model'), { threads: 1 });
  const runner = new ActivationRunner(m.config, m.params, { threads: 1 });
  const scorer = await Scorer.create(m.config, m.params, { threads: 1 });
  after(async () => {
    await model.dispose();
    await runner.release();
    scorer.release();
  });
  const range = repeatTokenRange(m.config.vocabSize);

  test('headScores: on the seeded repeated sequences by default, or on the rows given', async () => {
    assert.deepEqual(
      await model.headScores(undefined, { sequences: 2, length: 10, seed: 3 }),
      await headScores(runner, repeatedRandomTokens(2, 10, range, 3)),
    );
    assert.deepEqual(await model.headScores(), await headScores(runner, repeatedRandomTokens(4, 63, range, 1)));
    const rows = [m.rows[0]!.slice(0, 6), [1, 2, 1, 2]];
    assert.deepEqual(await model.headScores(rows), await headScores(runner, rows));
  });

  test('inductionLoss and iclScore (positions 3 and 31 for a context of 128)', async () => {
    assert.equal(
      await model.inductionLoss({ sequences: 2, length: 12 }),
      await inductionLoss(scorer, repeatedRandomTokens(2, 12, range, 1)),
    );
    const rows = [0, 1].map((b) => Array.from({ length: 32 }, (_, t) => (b * 13 + t * 5) % m.config.vocabSize));
    const got = await model.iclScore(rows);
    assert.deepEqual(got, await iclScore(scorer, rows, { early: 3, late: 31 }));
  });

  test('a misspelt option or a bad number is refused', async () => {
    await assert.rejects(model.headScores(undefined, { sequence: 2 } as never), /unknown option sequence/);
    await assert.rejects(model.inductionLoss({ seed: -1 }), /seed/);
    await assert.rejects(model.iclScore([[1, 2, 3]]), /row 0 has 3 tokens/);
  });
});
