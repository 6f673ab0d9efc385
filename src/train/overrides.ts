/**
 * Laying command-line values (named as GPT-NeoX's config keys) over a preset's recipe, with the
 * batch arithmetic of one process: train-batch-size = micro-batch × gradient-accumulation-steps.
 */
import { ConfigError } from '../util/errors.js';
import type { AdamFlavour } from './adamw.js';
import { validateCheckpointSchedule, type CheckpointScale } from './checkpoint-schedule.js';
import type { LrDecayStyle } from './lr-schedule.js';
import { gradientAccumulationSteps, validateRecipe, type ModelPreset, type TrainRecipe } from './recipes.js';

export interface RecipeOverrides {
  seqLength?: number;
  trainBatchSize?: number;
  microBatchSize?: number;
  gradientAccumulationSteps?: number;
  trainIters?: number;
  lrDecayIters?: number;
  lr?: number;
  minLr?: number;
  lrDecayStyle?: LrDecayStyle;
  warmup?: number;
  weightDecay?: number;
  gradientClipping?: number;
  seed?: number;
  checkpointFactor?: number;
  checkpointScale?: CheckpointScale;
  extraSaveIters?: number[];
  optimizer?: AdamFlavour;
}

/** Global batch and micro-batch from whichever of the three values are given. */
export function resolveBatch(base: TrainRecipe, o: RecipeOverrides): { trainBatchSize: number; microBatchSize: number } {
  const { trainBatchSize: total, microBatchSize: micro, gradientAccumulationSteps: gas } = o;
  if (total !== undefined && micro !== undefined) {
    if (gas !== undefined && micro * gas !== total)
      throw new ConfigError(`--train-batch-size ${total} is not --train-micro-batch-size-per-gpu ${micro} x --gradient-accumulation-steps ${gas}`);
    return { trainBatchSize: total, microBatchSize: micro };
  }
  if (total !== undefined && gas !== undefined) {
    if (total % gas !== 0) throw new ConfigError(`--train-batch-size ${total} is not a multiple of --gradient-accumulation-steps ${gas}`);
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

export function applyOverrides(preset: ModelPreset, o: RecipeOverrides): ModelPreset {
  const base = preset.recipe;
  const trainIters = o.trainIters ?? base.trainIters;
  const seqLength = o.seqLength ?? base.seqLength;
  const recipe: TrainRecipe = {
    ...base,
    ...resolveBatch(base, o),
    seqLength,
    trainIters,
    lrDecayIters: o.lrDecayIters ?? (o.trainIters !== undefined ? trainIters : base.lrDecayIters),
    lr: o.lr ?? base.lr,
    minLr: o.minLr ?? base.minLr,
    lrDecayStyle: o.lrDecayStyle ?? base.lrDecayStyle,
    warmup: o.warmup ?? base.warmup,
    weightDecay: o.weightDecay ?? base.weightDecay,
    gradientClipping: o.gradientClipping ?? base.gradientClipping,
    seed: o.seed ?? base.seed,
    optimizer: o.optimizer ?? base.optimizer,
    checkpoint: {
      checkpointFactor: o.checkpointFactor ?? base.checkpoint.checkpointFactor,
      checkpointScale: o.checkpointScale ?? base.checkpoint.checkpointScale,
      extraSaveIters: o.extraSaveIters ?? base.checkpoint.extraSaveIters,
    },
  };
  validateRecipe(recipe);
  validateCheckpointSchedule(recipe.checkpoint);
  const config = { ...preset.config };
  // A longer sequence needs positions for it; Pythia sets max-position-embeddings = seq-length.
  if (seqLength > config.maxPositions) config.maxPositions = seqLength;
  return { ...preset, config, recipe };
}
