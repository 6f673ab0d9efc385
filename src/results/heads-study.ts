/**
 * The attention-head detectors and in-context learning as studies of one checkpoint
 * (docs/analyses.md): per head the previous-token, duplicate-token and induction scores on random
 * tokens repeated twice (head_scores), and the induction loss on those tokens beside the
 * in-context-learning score on held-out text (icl_scores). Each run is a row of `studies` keyed by
 * its identity: the checkpoint's content, the sequences' count, length, seed and token range, the
 * positions and the held-out rows' sha256.
 */
import { heldOutTokens } from '../analysis/held-out.js';
import { readTrainingRecord } from '../analysis/training-record.js';
import type { CheckpointRef } from '../eval/checkpoints.js';
import { activationRunner, createScorer, type EvalModel } from '../eval/run-task.js';
import type { NeoXConfig } from '../model/config.js';
import { headScores } from '../model/head-detectors.js';
import { type IclPositions, iclPositions, iclScore, inductionLoss } from '../model/icl.js';
import { repeatedRandomTokens, repeatLength, repeatTokenRange, type TokenRange } from '../model/repeated-tokens.js';
import type { StudyRuntime } from './case-studies.js';
import { EVAL_WEIGHTS, identityKey, studyIdentity } from './identity.js';
import type { ResultsStore } from './store.js';
import type { HeldOutStudy } from './studies.js';

/** The random repeated sequences of the heads and icl studies. */
export interface RepeatedTokensStudy {
  /** Sequences, each `repeatedLength` random tokens followed by themselves again. */
  repeatedSequences: number;
  /** Tokens per copy, cut so both copies fit the context (384 → 63 for a 128-token context). */
  repeatedLength: number;
}

/** What the two studies read of the settings (`seed` is the studies' shared seed). */
export type HeadsStudySettings = RepeatedTokensStudy & HeldOutStudy & { seed: number };

/**
 * The context the two studies fit their sequences and scale their positions to: the sequence
 * length the checkpoint was trained on (its trainer_state.json) where that is shorter than
 * max_position_embeddings (a model never saw the positions past it), else max_position_embeddings.
 */
export function studyContext(dir: string, config: NeoXConfig): number {
  const { seqLength } = readTrainingRecord(dir);
  return seqLength !== undefined && seqLength < config.maxPositions ? seqLength : config.maxPositions;
}

/** The sequences for a model: their rows and what identifies them. */
export interface RepeatedSequences {
  rows: number[][];
  count: number;
  length: number;
  range: TokenRange;
  seed: number;
}

/** `sequences` random rows of 2 × `length` tokens (length cut to the context) from the model's vocabulary. */
export function repeatedSequences(
  config: NeoXConfig,
  context: number,
  request: { sequences: number; length?: number; seed: number },
): RepeatedSequences {
  const length = repeatLength(context, request.length);
  const range = repeatTokenRange(config.vocabSize);
  return {
    rows: repeatedRandomTokens(request.sequences, length, range, request.seed),
    count: request.sequences,
    length,
    range,
    seed: request.seed,
  };
}

/** The rows the in-context-learning score reads, where they come from, and what identifies them. */
export interface IclText {
  rows: number[][];
  source: 'held-out' | 'repeated-random';
  description: string;
  /** The held-out tokens' sha256; null for the random sequences (their seed identifies them). */
  sha256: string | null;
}

/**
 * Held-out text where there is some (a `data` prefix, or the checkpoint's own validation batches),
 * `heldOutRows` rows of late + 1 tokens; else the repeated random sequences, said so in `source`.
 */
export async function iclText(
  dir: string,
  positions: IclPositions,
  request: { rows: number; data?: string },
  sequences: RepeatedSequences,
): Promise<IclText> {
  const record = readTrainingRecord(dir);
  const trained =
    record.data !== undefined &&
    record.trainBatchSize !== undefined &&
    record.seqLength !== undefined &&
    record.trainIters !== undefined &&
    record.seed !== undefined;
  if (request.data === undefined && !trained)
    return {
      rows: sequences.rows,
      source: 'repeated-random',
      description: `${sequences.count} random sequences of 2 × ${sequences.length} tokens (no held-out text)`,
      sha256: null,
    };
  const held = await heldOutTokens(dir, { rows: request.rows, length: positions.late + 1, data: request.data });
  const rows = Array.from({ length: held.rows }, (_, r) =>
    Array.from(held.tokens.subarray(r * held.length, (r + 1) * held.length)),
  );
  return { rows, source: 'held-out', description: held.description, sha256: held.sha256 };
}

/** The context the checkpoint was trained on, and the study's repeated random sequences for it. */
function studySequences(ref: CheckpointRef, model: EvalModel, settings: HeadsStudySettings) {
  const contextLength = studyContext(ref.dir, model.config);
  const sequences = repeatedSequences(model.config, contextLength, {
    sequences: settings.repeatedSequences,
    length: settings.repeatedLength,
    seed: settings.seed,
  });
  return { contextLength, sequences };
}

function sequenceSettings(s: RepeatedSequences, contextLength: number) {
  return { context: contextLength, length: s.length, tokenLow: s.range.low, tokenHigh: s.range.high };
}

/** The three detectors' scores of every head at this checkpoint. */
export async function recordHeads(
  store: ResultsStore,
  ref: CheckpointRef,
  model: EvalModel,
  settings: HeadsStudySettings,
  context: StudyRuntime,
): Promise<boolean> {
  const { contextLength, sequences } = studySequences(ref, model, settings);
  const identity = studyIdentity({
    kind: 'heads',
    model: ref.model,
    step: ref.step,
    checkpointSha256: context.checkpointSha256,
    sequences: sequences.count,
    sampleSeed: sequences.seed,
    device: context.device,
    weights: EVAL_WEIGHTS,
    settings: sequenceSettings(sequences, contextLength),
  });
  const key = identityKey(identity);
  if (await store.hasStudy(key)) return false;
  const started = performance.now();
  const runner = activationRunner(model, context.runtime);
  try {
    const scores = await headScores(runner, sequences.rows);
    await store.writeStudy(
      { ...identity, study: key, batchSize: 1, threads: context.runtime.threads ?? null, seconds: seconds(started) },
      () =>
        store.insertObjects(
          'head_scores',
          scores.map((s) => ({
            study: key,
            model: ref.model,
            step: ref.step,
            layer: s.layer,
            head: s.head,
            previous_token: s.previousToken,
            duplicate_token: s.duplicateToken,
            induction: s.induction,
          })),
        ),
    );
    return true;
  } finally {
    await runner.release();
  }
}

/** The induction loss and the in-context-learning score at this checkpoint. */
export async function recordIcl(
  store: ResultsStore,
  ref: CheckpointRef,
  model: EvalModel,
  settings: HeadsStudySettings,
  context: StudyRuntime,
): Promise<boolean> {
  const { contextLength, sequences } = studySequences(ref, model, settings);
  const positions = iclPositions(contextLength);
  const text = await iclText(ref.dir, positions, { rows: settings.heldOutRows, data: settings.heldOutData }, sequences);
  const identity = studyIdentity({
    kind: 'icl',
    model: ref.model,
    step: ref.step,
    checkpointSha256: context.checkpointSha256,
    dataSha256: text.sha256,
    sequences: sequences.count,
    sampleSeed: sequences.seed,
    device: context.device,
    weights: EVAL_WEIGHTS,
    settings: {
      ...sequenceSettings(sequences, contextLength),
      earlyPosition: positions.early,
      latePosition: positions.late,
      text: text.source,
      textRows: text.rows.length,
    },
  });
  const key = identityKey(identity);
  if (await store.hasStudy(key)) return false;
  const started = performance.now();
  const scorer = await createScorer(model, context.runtime);
  try {
    const induction = await inductionLoss(scorer, sequences.rows);
    const icl = await iclScore(scorer, text.rows, positions);
    await store.writeStudy(
      { ...identity, study: key, batchSize: 1, threads: context.runtime.threads ?? null, seconds: seconds(started) },
      () =>
        store.insertObjects('icl_scores', [
          {
            study: key,
            model: ref.model,
            step: ref.step,
            induction_loss: induction,
            early_position: icl.early,
            late_position: icl.late,
            early_loss: icl.earlyLoss,
            late_loss: icl.lateLoss,
            icl_score: icl.score,
          },
        ]),
    );
    return true;
  } finally {
    scorer.release();
  }
}

function seconds(started: number): number {
  return (performance.now() - started) / 1000;
}
