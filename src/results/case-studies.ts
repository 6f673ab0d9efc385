/**
 * The paper's case studies recorded into a suite's results database beside the benchmarks
 * (docs/analyses.md defines each): memorization of training sequences with its Poisson test per
 * checkpoint, memorization of the synthetic corpus's canaries against their duplication counts,
 * and the counts of every task item's key term in the tokens each checkpoint has trained on. Each
 * run of a study is a row of `studies` keyed by its identity (identity.ts: the checkpoint's and
 * data's content, the study's settings); one already in the database is skipped, so an interrupted
 * run resumes, and a run with other settings is stored beside it.
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
import { EVAL_WEIGHTS, fileSha256, identityKey, studyIdentity, trainingDataSha256 } from './identity.js';
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

/** How the checkpoint under study is run, and the hashes that identify it. */
export interface StudyRuntime {
  runtime: RuntimeOptions;
  device: string;
  checkpointSha256: string;
  tokenizerSha256: string;
  /** Says, in one line, why a study records nothing at a checkpoint where the user may expect it to. */
  warn?: (message: string) => void;
  /**
   * Every checkpoint of this evaluation (all shards'), for a study that compares a checkpoint with
   * another of its model (weights-study.ts); absent, a checkpoint is compared with none.
   */
  checkpoints?: readonly CheckpointRef[];
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
  context: StudyRuntime,
): Promise<boolean> {
  if (ref.step <= 0) return false;
  const record = readTrainingRecord(ref.dir);
  if (
    !record.data ||
    record.trainBatchSize === undefined ||
    record.seqLength === undefined ||
    record.trainIters === undefined ||
    record.seed === undefined
  )
    return false;
  const identity = studyIdentity({
    kind: 'memorization',
    model: ref.model,
    step: ref.step,
    checkpointSha256: context.checkpointSha256,
    dataSha256: await trainingDataSha256(record),
    sequences: study.sequences,
    sampleSeed: study.seed,
    windowSize: study.window,
    promptLength: study.promptLength,
    continuationLength: study.continuationLength,
    device: context.device,
    weights: EVAL_WEIGHTS,
  });
  const key = identityKey(identity);
  if (await store.hasStudy(key)) return false;
  const started = performance.now();
  const order = await openTrainingOrder({
    data: record.data.prefix,
    preshuffled: record.data.preshuffled,
    split: record.data.split,
    batchSize: record.trainBatchSize,
    seqLength: record.seqLength,
    trainIters: record.trainIters,
    seed: record.seed,
  });
  const decoder = await Decoder.create(model.config, model.params, { ...context.runtime, weights: 'inputs' });
  try {
    const trained = Math.min(ref.step * record.trainBatchSize, order.source.length);
    const indices = sampleIndices(trained, Math.min(study.sequences, trained), study.seed);
    const scores = await memorizationScores(decoder, order.source, indices, study);
    const windows = tallyWindows(scores, study.window);
    const test = poissonTest(windows);
    const at = { study: key, model: ref.model, step: ref.step };
    await store.writeStudy(
      {
        ...identity,
        study: key,
        batchSize: study.batchSize,
        threads: context.runtime.threads ?? null,
        seconds: (performance.now() - started) / 1000,
      },
      async () => {
        await store.insertObjects(
          'memorization',
          scores.map((s) => ({ ...at, sample_index: s.index, score: s.score, memorized: s.memorized })),
        );
        await store.insertObjects(
          'memorization_windows',
          windows.windows.map((w, i) => ({
            ...at,
            window_size: study.window,
            window_index: w,
            first_index: w * study.window,
            scored: windows.scored[i]!,
            memorized: windows.memorized[i]!,
          })),
        );
        await store.insertObjects('memorization_poisson', [
          {
            ...at,
            window_size: study.window,
            windows: test.windows,
            mean: test.lambda,
            dispersion: test.dispersion,
            chi2: test.chi2,
            dof: test.dof,
            p_value: test.pValue,
          },
        ]);
      },
    );
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
  context: StudyRuntime,
): Promise<boolean> {
  const truth = corpusTruth(readTrainingRecord(ref.dir));
  if (!truth) return false;
  const identity = studyIdentity({
    kind: 'canaries',
    model: ref.model,
    step: ref.step,
    checkpointSha256: context.checkpointSha256,
    tokenizerSha256: context.tokenizerSha256,
    truthSha256: await fileSha256(truth),
    promptLength: study.promptLength,
    continuationLength: study.continuationLength,
    device: context.device,
    weights: EVAL_WEIGHTS,
  });
  const key = identityKey(identity);
  if (await store.hasStudy(key)) return false;
  const canaries = readCanaries(truth);
  if (canaries.length === 0) return false;
  const started = performance.now();
  const decoder = await Decoder.create(model.config, model.params, { ...context.runtime, weights: 'inputs' });
  try {
    const scores = await canaryMemorization(decoder, model.tokenizer, canaries, study);
    await store.writeStudy(
      {
        ...identity,
        study: key,
        batchSize: study.batchSize,
        threads: context.runtime.threads ?? null,
        seconds: (performance.now() - started) / 1000,
      },
      () =>
        store.insertObjects(
          'canary_memorization',
          scores.map((s) => ({
            study: key,
            model: ref.model,
            step: ref.step,
            canary: String(s.id),
            duplicates: s.count,
            score: s.score,
            memorized: s.memorized,
          })),
        ),
    );
    return true;
  } finally {
    await decoder.release();
  }
}

/**
 * Counts each key term of the tasks' items (`item_terms`) in the batches before each of `steps`,
 * as whole words (docs/analyses.md), once for the suite: every model of a suite trains on one
 * order, read from the first of `checkpoints` that records it. Each step is a cell of the grid;
 * one is counted again when a term has no count there yet (a task added since).
 */
export async function recordTermCounts(
  store: ResultsStore,
  checkpoints: readonly CheckpointRef[],
  steps: readonly number[],
  tokenizer: TextTokenizer,
  tokenizerSha256: string,
): Promise<number> {
  const withRecord = checkpoints
    .map((c) => ({ c, record: readTrainingRecord(c.dir) }))
    .find((x) => x.record.data && x.record.trainBatchSize !== undefined);
  if (!withRecord) return 0;
  const { record } = withRecord;
  const terms = (await store.rows('SELECT DISTINCT term FROM item_terms ORDER BY term')).map((r) => r.term as string);
  if (terms.length === 0) return 0;
  const identity = studyIdentity({
    kind: 'term_counts',
    tokenizerSha256,
    dataSha256: await trainingDataSha256(record),
  });
  const key = identityKey(identity);
  const done = new Set(
    (
      await store.rows(
        `SELECT step FROM term_counts WHERE study = $1 AND term IN (SELECT DISTINCT term FROM item_terms)
         GROUP BY step HAVING count(*) = $2`,
        [key, terms.length],
      )
    ).map((r) => r.step as number),
  );
  const wanted = [...new Set(steps)]
    .filter((s) => s >= 0 && s <= record.trainIters! && !done.has(s))
    .sort((a, b) => a - b);
  if (wanted.length === 0) return 0;
  const started = performance.now();
  const positive = wanted.filter((s) => s > 0);
  const counted: [string, number, number][] = [];
  // Nothing is trained on before step 0.
  if (wanted[0] === 0) counted.push(...terms.map((term): [string, number, number] => [term, 0, 0]));
  if (positive.length > 0) {
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
      steps: positive,
    });
    counts.terms.forEach((term, t) => {
      counts.steps.forEach((step, j) => {
        counted.push([term, step, counts.counts[t]![j]!]);
      });
    });
  }
  await store.writeStudy(
    { ...identity, study: key, batchSize: null, threads: null, seconds: (performance.now() - started) / 1000 },
    async () => {
      for (const step of wanted)
        await store.connection.run('DELETE FROM term_counts WHERE study = $1 AND step = $2', [key, step]);
      await store.insertObjects(
        'term_counts',
        counted.map(([term, step, count]) => ({ study: key, term, step, count })),
      );
    },
  );
  return wanted.length;
}
