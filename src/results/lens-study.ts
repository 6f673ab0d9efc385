/**
 * The logit-lens study (docs/analyses.md): at one checkpoint, the logit lens over held-out text
 * (analysis/held-out.ts), per layer KL(final ‖ lens), cross-entropy, entropy, top-1 agreement, and
 * KL and cross-entropy in bits per byte, into `lens_layers` with lens 'logit'. Identified by the
 * checkpoint, the held-out tokens (their sha256, rows and length) and the tokenizer that counted
 * their bytes; a rerun with the same inputs is skipped.
 */
import { bitsPerByteFactor, hasOwnHeldOut, heldOutTokens, longestHeldOutRow } from '../analysis/held-out.js';
import type { CheckpointRef } from '../eval/checkpoints.js';
import { activationRunner, type EvalModel, headParameters } from '../eval/run-task.js';
import { logitLens } from '../model/logit-lens.js';
import type { StudyRuntime } from './case-studies.js';
import { EVAL_WEIGHTS, identityKey, studyIdentity } from './identity.js';
import type { ResultsStore } from './store.js';
import type { HeldOutStudy } from './studies.js';

/**
 * The length of the held-out rows a lens study reads at `ref` (as long as asked, at most a training
 * sample or the context + 1), or undefined, with one warning line, where there is no held-out text.
 */
export function lensRowLength(
  kind: 'logit-lens' | 'tuned-lens',
  ref: CheckpointRef,
  model: EvalModel,
  study: HeldOutStudy,
  context: StudyRuntime,
): number | undefined {
  if (study.heldOutData === undefined && !hasOwnHeldOut(ref.dir)) {
    context.warn?.(
      `${kind} skipped for ${ref.model}: no training record to take held-out text from; give --held-out-data <prefix>`,
    );
    return undefined;
  }
  return Math.min(study.heldOutLength, longestHeldOutRow(ref.dir, model.config.maxPositions, study.heldOutData));
}

/** Records the logit lens at one checkpoint; false where it was there already, or there is no held-out text. */
export async function recordLogitLens(
  store: ResultsStore,
  ref: CheckpointRef,
  model: EvalModel,
  study: HeldOutStudy,
  context: StudyRuntime,
): Promise<boolean> {
  const length = lensRowLength('logit-lens', ref, model, study, context);
  if (length === undefined) return false;
  const held = await heldOutTokens(ref.dir, { rows: study.heldOutRows, length, data: study.heldOutData });
  const factor = bitsPerByteFactor(model.tokenizer, held.tokens, held.rows);
  const identity = studyIdentity({
    kind: 'logit_lens',
    model: ref.model,
    step: ref.step,
    checkpointSha256: context.checkpointSha256,
    tokenizerSha256: factor === undefined ? null : context.tokenizerSha256,
    dataSha256: held.sha256,
    device: context.device,
    weights: EVAL_WEIGHTS,
    settings: { rows: held.rows, length: held.length, lens: 'logit' },
  });
  const key = identityKey(identity);
  if (await store.hasStudy(key)) return false;
  const started = performance.now();
  const runner = activationRunner(model, context.runtime);
  try {
    const ids = BigInt64Array.from(held.tokens, (t) => BigInt(t));
    const layers = await logitLens(runner, headParameters(model), ids, held.rows, { runtime: context.runtime });
    await store.writeStudy(
      {
        ...identity,
        study: key,
        batchSize: null,
        threads: context.runtime.threads ?? null,
        seconds: (performance.now() - started) / 1000,
      },
      () =>
        store.insertObjects(
          'lens_layers',
          layers.map((l) => ({
            study: key,
            model: ref.model,
            step: ref.step,
            lens: 'logit',
            layer: l.layer,
            kl: l.kl,
            ce: l.ce,
            entropy: l.entropy,
            top1: l.top1,
            kl_bpb: factor === undefined ? null : l.kl * factor,
            ce_bpb: factor === undefined ? null : l.ce * factor,
          })),
        ),
    );
    return true;
  } finally {
    await runner.release();
  }
}
