/**
 * The weights study (docs/analyses.md): at each checkpoint, per parameter group the norm and the
 * change from the model's previous checkpoint in this evaluation (`weight_stats`), and the hash of
 * the weights' values, flagged where it equals the previous checkpoint's (`weight_checkpoints`).
 * The previous checkpoint is loaded beside the current one: two checkpoints' parameters at most.
 */
import { weightStats, weightsSha256 } from '../analysis/weight-stats.js';
import type { CheckpointRef } from '../eval/checkpoints.js';
import type { EvalModel } from '../eval/run-task.js';
import { loadCheckpoint } from '../model/checkpoint.js';
import type { StudyRuntime } from './case-studies.js';
import { checkpointSha256, EVAL_WEIGHTS, identityKey, studyIdentity } from './identity.js';
import type { ResultsStore } from './store.js';

/**
 * The checkpoint a checkpoint is compared with: its model's checkpoint with the largest step below
 * its own among `checkpoints` (those of the evaluation, every shard's, after --models and --steps).
 */
export function previousCheckpoint(
  ref: CheckpointRef,
  checkpoints: readonly CheckpointRef[],
): CheckpointRef | undefined {
  let previous: CheckpointRef | undefined;
  for (const c of checkpoints)
    if (c.model === ref.model && c.step < ref.step && (!previous || c.step > previous.step)) previous = c;
  return previous;
}

/** Records the weights' norms, changes and hash at one checkpoint. */
export async function recordWeights(
  store: ResultsStore,
  ref: CheckpointRef,
  model: EvalModel,
  _settings: unknown,
  context: StudyRuntime,
): Promise<boolean> {
  const previous = previousCheckpoint(ref, context.checkpoints ?? []);
  const identity = studyIdentity({
    kind: 'weights',
    model: ref.model,
    step: ref.step,
    checkpointSha256: context.checkpointSha256,
    weights: EVAL_WEIGHTS,
    settings: {
      previousStep: previous?.step ?? null,
      previousSha256: previous ? await checkpointSha256(previous.dir) : null,
    },
  });
  const key = identityKey(identity);
  if (await store.hasStudy(key)) return false;
  const started = performance.now();
  let before = previous ? loadCheckpoint(previous.dir).params : undefined;
  const stats = weightStats(model.config, model.params, before);
  const previousSha256 = before ? weightsSha256(before) : null;
  before = undefined;
  const sha256 = weightsSha256(model.params);
  const at = { study: key, model: ref.model, step: ref.step, previous_step: previous?.step ?? null };
  await store.writeStudy(
    { ...identity, study: key, batchSize: null, threads: null, seconds: (performance.now() - started) / 1000 },
    async () => {
      await store.insertObjects(
        'weight_stats',
        stats.map((s) => ({
          ...at,
          param_group: s.group,
          norm: s.norm,
          relative_change: s.relativeChange,
          cosine: s.cosine,
        })),
      );
      await store.insertObjects('weight_checkpoints', [
        { ...at, weights_sha256: sha256, identical: previousSha256 === null ? null : previousSha256 === sha256 },
      ]);
    },
  );
  return true;
}
