/**
 * The token-curves study: learned, forgotten and never learned on hand-built loss series with known
 * answers (the report's queries over a database), and the study through `evaluate`: every held-out
 * token's loss equal to a float64 log-softmax over the model's own logits, a rerun skipped, another
 * learned ratio stored beside the first run.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { datasetHeldOut } from '../../src/analysis/held-out.js';
import { IndexedDatasetWriter } from '../../src/data/indexed-dataset.js';
import { forward } from '../../src/model/forward.js';
import { type EvalEvent, evaluate } from '../../src/results/evaluate.js';
import { EVAL_WEIGHTS, identityKey, type StudyIdentity } from '../../src/results/identity.js';
import { ResultsStore } from '../../src/results/store.js';
import { STUDIES } from '../../src/results/studies.js';
import { appendTokenLosses } from '../../src/results/token-curves-study.js';
import { Prng } from '../../src/util/prng.js';
import { makeWorld, writeCheckpoint, writeTasks } from '../eval/support.js';

const dir = mkdtempSync(join(tmpdir(), 'pythia-token-curves-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const { tokenLearning, tokenLossByStep } = STUDIES['token-curves'].report.queries;

/** A token-curves run at (model, step) whose row 0 has these losses at positions 1, 2, …. */
async function writeRun(
  store: ResultsStore,
  model: string,
  step: number,
  losses: readonly number[],
  options: { ratio?: number; data?: string } = {},
): Promise<string> {
  const identity: StudyIdentity = {
    kind: 'token_curves',
    model,
    step,
    checkpointSha256: `${model}@${step}`,
    tokenizerSha256: null,
    dataSha256: options.data ?? 'tokens',
    truthSha256: null,
    sequences: null,
    sampleSeed: null,
    windowSize: null,
    promptLength: null,
    continuationLength: null,
    device: 'cpu',
    weights: EVAL_WEIGHTS,
    settings: { heldOutRows: 1, heldOutLength: losses.length + 1, learnedRatio: options.ratio ?? 0.5 },
  };
  const study = identityKey({ ...identity, checkpointSha256: `${identity.checkpointSha256}:${losses.join()}` });
  await store.writeStudy({ ...identity, study, batchSize: 1, threads: null, seconds: 0 }, () =>
    store.insertObjects(
      'token_losses',
      losses.map((loss, i) => ({ study, model, step, row: 0, position: i + 1, loss })),
    ),
  );
  return study;
}

/** Each token's losses at the steps given: series[token][k] at steps[k]. */
async function writeSeries(
  store: ResultsStore,
  model: string,
  steps: readonly number[],
  series: readonly (readonly number[])[],
  options: { ratio?: number } = {},
): Promise<void> {
  for (const [k, step] of steps.entries())
    await writeRun(
      store,
      model,
      step,
      series.map((s) => s[k]!),
      options,
    );
}

test('learned, forgotten and never learned: known answers on hand-built loss series', async () => {
  const store = await ResultsStore.open(join(dir, 'known.duckdb'));
  try {
    // Step-0 loss 4 each, ratio 0.5: below means a loss under 2.
    await writeSeries(
      store,
      'a',
      [0, 10, 20, 30],
      [
        [4, 1, 1, 1], // learned at 10
        [4, 1, 3, 1], // below, above, below again: learned at 30
        [4, 1, 3, 3], // forgotten
        [4, 3, 3, 3], // never
        [4, 2, 2, 2], // exactly half is not below: never
        [4, 3, 3, 1.5], // learned at 30
      ],
    );
    // An earlier run at step 20 with other losses: the current one (finished last) is a's above.
    const earlier = await writeRun(store, 'a', 20, [1, 1, 1, 1, 1, 1]);
    await store.connection.run('UPDATE studies SET finished_at = finished_at - INTERVAL 1 DAY WHERE study = $1', [
      earlier,
    ]);
    // Another ratio, read from the runs' settings: 3 < 0.8 × 4.
    await writeSeries(
      store,
      'd',
      [0, 5],
      [
        [4, 3],
        [4, 3.5],
      ],
      { ratio: 0.8 },
    );
    // No step-0 run: no categories, and no learned share.
    await writeSeries(store, 'b', [5, 10], [[4, 1]]);
    // A later run on other held-out tokens is not compared with step 0.
    await writeRun(store, 'c', 0, [4]);
    await writeRun(store, 'c', 10, [1], { data: 'other tokens' });

    const learning = await store.rows(tokenLearning.sql);
    assert.deepEqual(
      learning.map((r) => [r.model, r.size, r.run, r.category, r.tokens, r.share]),
      [
        ['a', 'a', 'baseline', 'learned', 3, 3 / 6],
        ['a', 'a', 'baseline', 'forgotten', 1, 1 / 6],
        ['a', 'a', 'baseline', 'never', 2, 2 / 6],
        ['d', 'd', 'baseline', 'learned', 1, 1 / 2],
        ['d', 'd', 'baseline', 'forgotten', 0, 0],
        ['d', 'd', 'baseline', 'never', 1, 1 / 2],
      ],
    );
    const byStep = await store.rows(tokenLossByStep.sql);
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const expected: [string, number, number, number | null][] = [
      ['a', 0, 4, 0],
      ['a', 10, mean([1, 1, 1, 3, 2, 3]), 1 / 6],
      ['a', 20, mean([1, 3, 3, 3, 2, 3]), 1 / 6],
      ['a', 30, mean([1, 1, 3, 3, 2, 1.5]), 3 / 6],
      ['b', 5, 4, null],
      ['b', 10, 1, null],
      ['c', 0, 4, null],
      ['c', 10, 1, null],
      ['d', 0, 4, 0],
      ['d', 5, 3.25, 1 / 2],
    ];
    assert.equal(byStep.length, expected.length);
    byStep.forEach((r, i) => {
      const [model, step, meanLoss, share] = expected[i]!;
      assert.deepEqual([r.model, r.size, r.run, r.step], [model, model, 'baseline', step]);
      assert.ok(Math.abs((r.mean_loss as number) - meanLoss) < 1e-6, `${model}@${step}: ${r.mean_loss} vs ${meanLoss}`);
      assert.equal(r.learned_share, share, `${model}@${step}`);
    });
  } finally {
    store.close();
  }
});

/** The held-out dataset: 40 documents of random tokens below the vocabulary size. */
async function writeData(prefix: string, vocabSize: number): Promise<void> {
  const writer = IndexedDatasetWriter.create(prefix, { vocabSize });
  const rng = new Prng(7);
  for (let d = 0; d < 40; d++) writer.add(Array.from({ length: 5 + rng.int(20) }, () => rng.int(vocabSize)));
  await writer.finish();
}

test('through evaluate: each token loss is the float64 log-softmax of the logits; a rerun is skipped; another ratio is stored beside', async () => {
  const root = join(dir, 'eval');
  const world = await makeWorld(root, 16);
  const suite = join(root, 'suite');
  for (const step of [0, 1, 2]) await writeCheckpoint(world, join(suite, 'm', `step${step}`), 10 + step);
  const data = join(root, 'data', 'held');
  await writeData(data, world.config.vocabSize);
  const db = join(root, 'results.duckdb');
  const tasks = writeTasks(root);
  const run = async (learnedRatio: number) => {
    const events: EvalEvent[] = [];
    await evaluate({
      sources: [suite],
      tasks: [tasks.choice!],
      limit: 1,
      db,
      threads: 1,
      studies: ['token-curves'],
      // 1024 tokens asked for; the model reads 16, so rows of 17.
      studySettings: { heldOutData: data, heldOutRows: 3, heldOutLength: 1024, learnedRatio, batchSize: 2 },
      onEvent: (e) => events.push(e),
    });
    return events.filter((e) => e.type === 'study').length;
  };
  assert.equal(await run(0.5), 3);
  assert.equal(await run(0.5), 0);

  const held = datasetHeldOut(data, { rows: 3, length: 17 });
  const store = await ResultsStore.open(db, { readOnly: true });
  try {
    const studies = await store.rows(
      "SELECT step, data_sha256, settings::VARCHAR AS settings FROM studies WHERE kind = 'token_curves' ORDER BY step",
    );
    assert.deepEqual(
      studies.map((s) => [s.step, s.data_sha256, JSON.parse(s.settings as string)]),
      [0, 1, 2].map((step) => [step, held.sha256, { heldOutRows: 3, heldOutLength: 17, learnedRatio: 0.5 }]),
    );
    for (const step of [0, 1, 2]) {
      const { loadCheckpoint } = await import('../../src/model/checkpoint.js');
      const { config, params } = loadCheckpoint(join(suite, 'm', `step${step}`));
      const ids = BigInt64Array.from(held.tokens, BigInt);
      const { logits } = await forward(config, params, ids, 3, {}, { threads: 1 });
      const V = config.vocabSize;
      const rows = await store.rows(
        'SELECT row, position, loss FROM token_losses WHERE step = $1 ORDER BY row, position',
        [step],
      );
      assert.equal(rows.length, 3 * 16);
      for (const r of rows) {
        const [b, p] = [r.row as number, r.position as number];
        const at = (b * 17 + p - 1) * V;
        let max = Number.NEGATIVE_INFINITY;
        for (let v = 0; v < V; v++) max = Math.max(max, logits![at + v]!);
        let sum = 0;
        for (let v = 0; v < V; v++) sum += Math.exp(logits![at + v]! - max);
        const want = max + Math.log(sum) - logits![at + held.tokens[b * 17 + p]!]!;
        assert.ok(
          Math.abs((r.loss as number) - want) < 1e-4,
          `step ${step} row ${b} position ${p}: ${r.loss} vs ${want}`,
        );
      }
    }
  } finally {
    store.close();
  }
  // Another ratio is another run of the study, beside the first; the report reads the newest.
  assert.equal(await run(0.25), 3);
  const after = await ResultsStore.open(db, { readOnly: true });
  try {
    const counts = await after.rows(
      'SELECT count(DISTINCT study)::INTEGER AS runs, count(*)::INTEGER AS rows FROM token_losses',
    );
    assert.deepEqual(counts, [{ runs: 6, rows: 6 * 3 * 16 }]);
    const learning = await after.rows(tokenLearning.sql);
    assert.deepEqual(
      learning.map((r) => r.category),
      ['learned', 'forgotten', 'never'],
    );
    assert.equal(
      learning.reduce((s, r) => s + (r.tokens as number), 0),
      3 * 16,
    );
  } finally {
    after.close();
  }
});

test("the appender writes each token's row and position, and a failed study's transaction leaves none", async () => {
  const store = await ResultsStore.open(join(dir, 'appender.duckdb'));
  try {
    const losses = Float32Array.of(0.5, 1.25, 2, 3.5, 4.75, 6);
    await store.transaction(() => appendTokenLosses(store, { study: 's', model: 'm', step: 3 }, 4, losses));
    assert.deepEqual(await store.rows('SELECT * FROM token_losses ORDER BY row, position'), [
      { study: 's', model: 'm', step: 3, row: 0, position: 1, loss: 0.5 },
      { study: 's', model: 'm', step: 3, row: 0, position: 2, loss: 1.25 },
      { study: 's', model: 'm', step: 3, row: 0, position: 3, loss: 2 },
      { study: 's', model: 'm', step: 3, row: 1, position: 1, loss: 3.5 },
      { study: 's', model: 'm', step: 3, row: 1, position: 2, loss: 4.75 },
      { study: 's', model: 'm', step: 3, row: 1, position: 3, loss: 6 },
    ]);
    const identity: StudyIdentity = {
      kind: 'token_curves',
      model: 'm',
      step: 4,
      checkpointSha256: 'c',
      tokenizerSha256: null,
      dataSha256: 'd',
      truthSha256: null,
      sequences: null,
      sampleSeed: null,
      windowSize: null,
      promptLength: null,
      continuationLength: null,
      device: 'cpu',
      weights: EVAL_WEIGHTS,
    };
    await assert.rejects(
      store.writeStudy({ ...identity, study: 't', batchSize: 1, threads: null, seconds: 0 }, async () => {
        await appendTokenLosses(store, { study: 't', model: 'm', step: 4 }, 4, losses);
        throw new Error('killed after the rows were appended');
      }),
      /killed after/,
    );
    assert.deepEqual(await store.rows("SELECT count(*)::INTEGER AS n FROM token_losses WHERE study = 't'"), [{ n: 0 }]);
    assert.equal(await store.hasStudy('t'), false);
  } finally {
    store.close();
  }
});
