/**
 * Laying settings (from the command line or a GPT-NeoX config, see settings.ts) over a preset's
 * recipe, with the batch arithmetic of one process resolved in one place:
 * train-batch-size = micro-batch × gradient-accumulation-steps.
 */
import { ConfigError } from '../util/errors.js';
import { validateCheckpointSchedule } from './checkpoint-schedule.js';
import { gradientAccumulationSteps, type ModelPreset, type TrainRecipe, validateRecipe } from './recipes.js';
import { RECIPE_SETTINGS, type RecipeOverrides } from './settings.js';

export type { RecipeOverrides } from './settings.js';

/**
 * Global batch and micro-batch from whichever of the three values are given, as GPT-NeoX v1.0's
 * `calculate_batch_parameters` does with one data-parallel rank; what is not given keeps the
 * base recipe's.
 */
export function resolveBatch(
  base: TrainRecipe,
  o: RecipeOverrides,
): { trainBatchSize: number; microBatchSize: number } {
  const { trainBatchSize: total, microBatchSize: micro, gradientAccumulationSteps: gas } = o;
  if (total !== undefined && micro !== undefined) {
    if (gas !== undefined && micro * gas !== total)
      throw new ConfigError(
        `train-batch-size ${total} is not train-micro-batch-size-per-gpu ${micro} x gradient-accumulation-steps ${gas}`,
      );
    return { trainBatchSize: total, microBatchSize: micro };
  }
  if (total !== undefined && gas !== undefined) {
    if (total % gas !== 0)
      throw new ConfigError(`train-batch-size ${total} is not a multiple of gradient-accumulation-steps ${gas}`);
    return { trainBatchSize: total, microBatchSize: total / gas };
  }
  if (micro !== undefined && gas !== undefined) return { trainBatchSize: micro * gas, microBatchSize: micro };
  if (total !== undefined) {
    const keep = base.microBatchSize <= total && total % base.microBatchSize === 0;
    return { trainBatchSize: total, microBatchSize: keep ? base.microBatchSize : total };
  }
  if (micro !== undefined) return { trainBatchSize: micro * gradientAccumulationSteps(base), microBatchSize: micro };
  if (gas !== undefined) return { trainBatchSize: base.microBatchSize * gas, microBatchSize: base.microBatchSize };
  return { trainBatchSize: base.trainBatchSize, microBatchSize: base.microBatchSize };
}

/** The base recipe with every given override set, checked. */
export function overrideRecipe(base: TrainRecipe, o: RecipeOverrides): TrainRecipe {
  const recipe: TrainRecipe = { ...structuredClone(base), ...resolveBatch(base, o) };
  for (const setting of RECIPE_SETTINGS) {
    const value = o[setting.field];
    if (value !== undefined && setting.set) setting.set(recipe, value as never);
  }
  // GPT-NeoX's lr-decay-iters defaults to train-iters.
  if (o.trainIters !== undefined && o.lrDecayIters === undefined) recipe.schedule.decayIters = recipe.trainIters;
  validateRecipe(recipe);
  validateCheckpointSchedule(recipe.checkpoint);
  return recipe;
}

export function applyOverrides(preset: ModelPreset, o: RecipeOverrides): ModelPreset {
  const recipe = overrideRecipe(preset.recipe, o);
  const config = { ...preset.config };
  // A longer sequence needs positions for it; Pythia sets max-position-embeddings = seq-length.
  if (recipe.seqLength > config.maxPositions) config.maxPositions = recipe.seqLength;
  return { ...preset, config, recipe };
}
