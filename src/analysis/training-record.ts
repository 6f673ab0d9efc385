/**
 * What a checkpoint records about its training: the step and the settings of its data order,
 * read from the `trainer_state.json` that `pythia train` writes into every step folder. Real
 * Pythia checkpoints carry none; their settings are Pythia's (PYTHIA_DEFAULTS) and their step is
 * the `step<N>` of their folder or revision name.
 */
import { basename, resolve } from 'node:path';
import { stepOfFolder, trainerStateIfAny } from '../train/run-folder.js';

export interface TrainingRecord {
  /** Optimizer updates done: the checkpoint has trained on samples [0, step · trainBatchSize). */
  step?: number;
  trainBatchSize?: number;
  seqLength?: number;
  trainIters?: number;
  seed?: number;
  /** The prefix is where the dataset is now: relative to the step folder, else where it was written. */
  data?: { prefix: string; preshuffled: boolean; split?: string };
}

/** Reads `<dir>/trainer_state.json` (checked) when present, else takes the step from a `step<N>` folder name. */
export function readTrainingRecord(dir: string): TrainingRecord {
  const state = trainerStateIfAny(dir);
  if (!state) {
    const step = stepOfFolder(basename(resolve(dir)));
    return step !== undefined ? { step } : {};
  }
  const { recipe } = state;
  return {
    step: state.step,
    trainBatchSize: recipe.trainBatchSize,
    seqLength: recipe.seqLength,
    trainIters: recipe.trainIters,
    seed: recipe.seed,
    data: state.data,
  };
}
