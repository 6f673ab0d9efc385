/**
 * The paper's case studies recorded into a suite's results database beside the benchmarks
 * (docs/analyses.md defines each): memorization of training sequences with its Poisson test per
 * checkpoint, memorization of the synthetic corpus's canaries against their duplication counts,
 * and the counts of every task item's key term in the tokens each checkpoint has trained on. Each
 * piece is skipped when the database already has it, so an interrupted run resumes.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { canaryMemorization, readCanaries } from '../analysis/canaries.js';
import { memorizationScores, sampleIndices } from '../analysis/memorization.js';
import { poissonTest, tallyWindows } from '../analysis/poisson.js';
import { countTerms, termPatterns, wordEdges } from '../analysis/term-count.js';
import { readTrainingRecord, type TrainingRecord } from '../analysis/training-record.js';
import { openTrainingOrder } from '../data/batches.js';
import type { TextTokenizer } from '../data/tokenizer.js';
import type { CheckpointRef } from '../eval/checkpoints.js';
import type { EvalModel } from '../eval/run-task.js';
import { Decoder } from '../model/decoder.js';
import type { RuntimeOptions } from '../runtime/session.js';
import type { ResultsStore } from './store.js';

export interface MemorizationStudy {
  /** Sequences scored per checkpoint: all it has trained on when there are this many or fewer, else a seeded sample. */
  sequences: number;
  /** Consecutive training-order indices per window of the Poisson test. */
  window: number;
  seed: number;
  promptLength: number;
  continuationLength: number;
  batchSize: number;
}

async function has(store: ResultsStore, table: string, ref: CheckpointRef): Promise<boolean> {
  const rows = await store.rows(`SELECT count(*) AS n FROM ${table} WHERE model = $1 AND step = $2`, [
    ref.model,
    ref.step,
  ]);
  return (rows[0]!.n as number) > 0;
}

/** The truth.json of the synthetic corpus a checkpoint was trained on (`<corpus>/data/<name>` → `<corpus>/truth.json`), if any. */
export function corpusTruth(record: TrainingRecord): string | undefined {
  if (!record.data) return undefined;
  const path = join(dirname(dirname(record.data.prefix)), 'truth.json');
  return existsSync(path) ? path : undefined;
}

/** Scores training sequences seen before the checkpoint's step; writes scores, windows and the Poisson test. */
export async function recordMemorization(
  store: ResultsStore,
  ref: CheckpointRef,
  model: EvalModel,
  study: MemorizationStudy,
  runtime: RuntimeOptions,
): Promise<boolean> {
  if (ref.step <= 0 || (await has(store, 'memorization', ref))) return false;
  const record = readTrainingRecord(ref.dir);
  if (
    !record.data ||
    record.trainBatchSize === undefined ||
    record.seqLength === undefined ||
    record.trainIters === undefined ||
    record.seed === undefined
  )
    return false;
  const order = await openTrainingOrder({
    data: record.data.prefix,
    preshuffled: record.data.preshuffled,
    split: record.data.split,
    batchSize: record.trainBatchSize,
    seqLength: record.seqLength,
    trainIters: record.trainIters,
    seed: record.seed,
  });
  const decoder = await Decoder.create(model.config, model.params, { ...runtime, weights: 'inputs' });
  try {
    const trained = Math.min(ref.step * record.trainBatchSize, order.source.length);
    const indices = sampleIndices(trained, Math.min(study.sequences, trained), study.seed);
    const scores = await memorizationScores(decoder, order.source, indices, study);
    const windows = tallyWindows(scores, study.window);
    const test = poissonTest(windows);
    await store.transaction(async () => {
      await store.insertRows(
        'memorization',
        scores.map((s) => [ref.model, ref.step, s.index, s.score, s.memorized]),
      );
      await store.insertRows(
        'memorization_windows',
        windows.windows.map((w, i) => [
          ref.model,
          ref.step,
          study.window,
          w,
          w * study.window,
          windows.scored[i]!,
          windows.memorized[i]!,
        ]),
      );
      await store.insertRows('memorization_poisson', [
        [
          ref.model,
          ref.step,
          study.window,
          test.windows,
          test.lambda,
          test.dispersion,
          test.chi2,
          test.dof,
          test.pValue,
        ],
      ]);
    });
    return true;
  } finally {
    order.source.close();
    await decoder.release();
  }
}

/** Scores every canary of the corpus's truth.json at this checkpoint. */
export async function recordCanaries(
  store: ResultsStore,
  ref: CheckpointRef,
  model: EvalModel,
  study: MemorizationStudy,
  runtime: RuntimeOptions,
): Promise<boolean> {
  if (await has(store, 'canary_memorization', ref)) return false;
  const truth = corpusTruth(readTrainingRecord(ref.dir));
  if (!truth) return false;
  const canaries = readCanaries(truth);
  if (canaries.length === 0) return false;
  const decoder = await Decoder.create(model.config, model.params, { ...runtime, weights: 'inputs' });
  try {
    const scores = await canaryMemorization(decoder, model.tokenizer, canaries, study);
    await store.transaction(() =>
      store.insertRows(
        'canary_memorization',
        scores.map((s) => [ref.model, ref.step, String(s.id), s.count, s.score, s.memorized]),
      ),
    );
    return true;
  } finally {
    await decoder.release();
  }
}

/**
 * Counts each key term of the tasks' items (`item_terms`) in the batches before every step, as
 * whole words (docs/analyses.md), once for the suite: every model of a suite trains on one order.
 */
export async function recordTermCounts(
  store: ResultsStore,
  checkpoints: readonly CheckpointRef[],
  tokenizer: TextTokenizer,
): Promise<number> {
  const withRecord = checkpoints
    .map((c) => ({ c, record: readTrainingRecord(c.dir) }))
    .find((x) => x.record.data && x.record.trainBatchSize !== undefined);
  if (!withRecord) return 0;
  const { record } = withRecord;
  const terms = (await store.rows('SELECT DISTINCT term FROM item_terms ORDER BY term')).map((r) => r.term as string);
  if (terms.length === 0) return 0;
  const done = new Set((await store.rows('SELECT DISTINCT step FROM term_counts')).map((r) => r.step as number));
  const wanted = [...new Set(checkpoints.map((c) => c.step))]
    .filter((s) => s >= 0 && s <= record.trainIters! && !done.has(s))
    .sort((a, b) => a - b);
  if (wanted.length === 0) return 0;
  // Nothing is trained on before step 0.
  if (wanted[0] === 0)
    await store.transaction(() =>
      store.insertRows(
        'term_counts',
        terms.map((term) => [term, 0, 0]),
      ),
    );
  const steps = wanted.filter((s) => s > 0);
  if (steps.length === 0) return wanted.length;
  const patterns = await termPatterns(
    terms.map((term, i) => ({ term, line: i + 1 })),
    tokenizer,
    'item_terms',
  );
  const counts = await countTerms({
    order: {
      data: record.data!.prefix,
      preshuffled: record.data!.preshuffled,
      split: record.data!.split,
      batchSize: record.trainBatchSize!,
      seqLength: record.seqLength!,
      trainIters: record.trainIters!,
      seed: record.seed!,
    },
    patterns,
    words: wordEdges(tokenizer),
    steps,
  });
  await store.transaction(() =>
    store.insertRows(
      'term_counts',
      counts.terms.flatMap((term, t) => counts.steps.map((step, j) => [term, step, counts.counts[t]![j]!])),
    ),
  );
  return wanted.length;
}
