/**
 * Where an intervention run starts. Pythia continued its deduped runs from a checkpoint with the
 * pronouns swapped to the end of training: from step 133,000 of 143,000 (the last ~7%) and, for the
 * long 1.4b run, from 113,000 (~21%). `--intervention-from` names that point as a fraction of
 * train-iters (0.93, 0.79) or as a step; the run continues from the baseline's checkpoint nearest
 * to it, by |step − target|, ties to the earlier step.
 */
import { ConfigError } from '../util/errors.js';
import { saveIters } from './checkpoint-schedule.js';
import type { TrainRecipe } from './recipes.js';

export type InterventionFrom = { fraction: number } | { step: number };

/** A sibling run's model folder name beside its baseline's. */
export function interventionName(baseline: string): string {
  return `${baseline}-intervention`;
}

/** `--intervention-from` text: an integer is a step, anything else a fraction in (0, 1). */
export function parseInterventionFrom(text: string): InterventionFrom {
  const t = text.trim();
  if (/^\d+$/.test(t)) return { step: Number(t) };
  const x = Number(t);
  if (t !== '' && x > 0 && x < 1) return { fraction: x };
  throw new ConfigError(
    `--intervention-from ${text}: expected a fraction of train-iters in (0, 1), such as 0.93, or an integer step`,
  );
}

export function describeInterventionFrom(from: InterventionFrom): string {
  return 'fraction' in from ? `${from.fraction}` : `${from.step}`;
}

/** The step the intervention aims at: fraction × train-iters (not rounded), or the step itself. */
export function interventionTarget(from: InterventionFrom, trainIters: number): number {
  if ('fraction' in from) {
    if (!(from.fraction > 0 && from.fraction < 1))
      throw new ConfigError(`--intervention-from ${from.fraction}: a fraction of train-iters must lie in (0, 1)`);
    return from.fraction * trainIters;
  }
  if (!(Number.isSafeInteger(from.step) && from.step >= 0))
    throw new ConfigError(`--intervention-from ${from.step}: a step must be a non-negative integer`);
  if (from.step > trainIters)
    throw new ConfigError(`--intervention-from ${from.step}: past the end of training (train-iters is ${trainIters})`);
  return from.step;
}

/** The step nearest `target` by |step − target|; ties go to the earlier step. */
export function nearestCheckpoint(target: number, steps: readonly number[]): number {
  let best: number | undefined;
  for (const s of steps) {
    if (
      best === undefined ||
      Math.abs(s - target) < Math.abs(best - target) ||
      (Math.abs(s - target) === Math.abs(best - target) && s < best)
    )
      best = s;
  }
  if (best === undefined) throw new ConfigError('--intervention-from: the run saves no checkpoints to continue from');
  return best;
}

/**
 * The baseline checkpoint an intervention continues from: the one on the recipe's checkpoint
 * schedule nearest the target. The last step is refused: nothing would be left to train.
 */
export function interventionStart(
  from: InterventionFrom,
  recipe: Pick<TrainRecipe, 'trainIters' | 'checkpoint'>,
): { target: number; step: number } {
  const target = interventionTarget(from, recipe.trainIters);
  const step = nearestCheckpoint(target, saveIters(recipe.trainIters, recipe.checkpoint));
  if (step === recipe.trainIters)
    throw new ConfigError(
      `--intervention-from ${describeInterventionFrom(from)}: the nearest checkpoint is step ${step}, the end of training, so nothing is left to train with the swap; choose an earlier point`,
    );
  return { target, step };
}
