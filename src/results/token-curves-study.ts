/**
 * The token-curves study (docs/analyses.md): at each checkpoint, the loss of every held-out token
 * (analysis/token-curves.ts) into `token_losses`, one FLOAT row per token. Which tokens were
 * learned, forgotten or never learned is the report's query over these rows (studies.ts), with the
 * threshold recorded in each run's settings.
 */
import { heldOutTokens } from '../analysis/held-out.js';
import { lossBatchRows, scorableLength, tokenLosses } from '../analysis/token-curves.js';
import { readTrainingRecord } from '../analysis/training-record.js';
import type { CheckpointRef } from '../eval/checkpoints.js';
import { createScorer, type EvalModel } from '../eval/run-task.js';
import { ConfigError } from '../util/errors.js';
import type { MemorizationStudy, StudyRuntime } from './case-studies.js';
import { EVAL_WEIGHTS, identityKey, studyIdentity } from './identity.js';
import { tableSpec } from './schema.js';
import type { ResultsStore } from './store.js';
import type { HeldOutStudy } from './studies.js';

export interface TokenCurvesStudy {
  /**
   * A token is below threshold at a checkpoint when its loss is under this fraction of its step-0
   * loss; learned when below at its model's last studied checkpoint (docs/analyses.md).
   */
  learnedRatio: number;
}

const TOKEN_LOSSES_COLUMNS = ['study', 'model', 'step', 'row', 'position', 'loss'];

/**
 * Appends one row per token (position p of row r: the token predicted from positions 0…p−1) through
 * DuckDB's appender, inside the caller's transaction: a rollback leaves none of them.
 */
export async function appendTokenLosses(
  store: ResultsStore,
  at: { study: string; model: string; step: number },
  length: number,
  losses: Float32Array,
): Promise<void> {
  const { columns } = tableSpec('token_losses');
  if (columns.join() !== TOKEN_LOSSES_COLUMNS.join())
    throw new Error(
      `token_losses: columns ${columns.join(', ')}, the appender writes ${TOKEN_LOSSES_COLUMNS.join(', ')}`,
    );
  const appender = await store.connection.createAppender('token_losses');
  try {
    const per = length - 1;
    for (let i = 0; i < losses.length; i++) {
      appender.appendVarchar(at.study);
      appender.appendVarchar(at.model);
      appender.appendInteger(at.step);
      appender.appendInteger(Math.floor(i / per));
      appender.appendInteger((i % per) + 1);
      appender.appendFloat(losses[i]!);
      appender.endRow();
    }
  } finally {
    appender.closeSync();
  }
}

/** Scores the held-out tokens at one checkpoint and writes their losses. */
export async function recordTokenCurves(
  store: ResultsStore,
  ref: CheckpointRef,
  model: EvalModel,
  settings: HeldOutStudy & TokenCurvesStudy & Pick<MemorizationStudy, 'batchSize'>,
  context: StudyRuntime,
): Promise<boolean> {
  const { config } = model;
  const record = settings.heldOutData === undefined ? readTrainingRecord(ref.dir) : undefined;
  const length = scorableLength(settings.heldOutLength, config.maxPositions, record?.seqLength);
  if (length < 2)
    throw new ConfigError(`--held-out-length: ${length} token per row leaves no token to predict; give at least 2`);
  const held = await heldOutTokens(ref.dir, { rows: settings.heldOutRows, length, data: settings.heldOutData });
  const identity = studyIdentity({
    kind: 'token_curves',
    model: ref.model,
    step: ref.step,
    checkpointSha256: context.checkpointSha256,
    dataSha256: held.sha256,
    device: context.device,
    weights: EVAL_WEIGHTS,
    settings: { heldOutRows: held.rows, heldOutLength: held.length, learnedRatio: settings.learnedRatio },
  });
  const key = identityKey(identity);
  if (await store.hasStudy(key)) return false;
  const started = performance.now();
  const batchRows = lossBatchRows(held.length, config.vocabSize, settings.batchSize);
  const scorer = await createScorer(model, context.runtime);
  let losses: Float32Array;
  try {
    losses = await tokenLosses(scorer, held, batchRows);
  } finally {
    scorer.release();
  }
  await store.writeStudy(
    {
      ...identity,
      study: key,
      batchSize: batchRows,
      threads: context.runtime.threads ?? null,
      seconds: (performance.now() - started) / 1000,
    },
    () => appendTokenLosses(store, { study: key, model: ref.model, step: ref.step }, held.length, losses),
  );
  return true;
}
