/**
 * Which optimizer steps get a checkpoint, computed as GPT-NeoX v1.0 does from its keys
 * `checkpoint-factor`, `checkpoint-scale` and `extra-save-iters`, plus the final step that
 * GPT-NeoX always saves at the end of training.
 *
 * Pythia: factor 1000 (linear), extra [0, 1, 2, 4, ..., 512], 143000 iterations: 154 checkpoints.
 */
import { ConfigError } from '../util/errors.js';

export type CheckpointScale = 'linear' | 'log';

export interface CheckpointSchedule {
  /** Save every `checkpointFactor` steps (linear) or at its powers (log); undefined: none. */
  checkpointFactor?: number;
  checkpointScale: CheckpointScale;
  extraSaveIters: number[];
}

export const PYTHIA_CHECKPOINT_SCHEDULE: CheckpointSchedule = {
  checkpointFactor: 1000,
  checkpointScale: 'linear',
  extraSaveIters: [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
};

/**
 * Pythia's shape for a run of any length: step 0, the powers of two below the factor, then
 * every `factor = floor(trainIters / linearCheckpoints)` steps. `linearCheckpoints = 143` on
 * 143000 iterations gives Pythia's own schedule.
 */
export function scaledCheckpointSchedule(trainIters: number, linearCheckpoints = 8): CheckpointSchedule {
  const factor = Math.max(1, Math.floor(trainIters / linearCheckpoints));
  const extraSaveIters = [0];
  for (let p = 1; p < factor; p *= 2) extraSaveIters.push(p);
  return { checkpointFactor: factor, checkpointScale: 'linear', extraSaveIters };
}

export function validateCheckpointSchedule(s: CheckpointSchedule): void {
  const f = s.checkpointFactor;
  if (f !== undefined) {
    if (s.checkpointScale === 'linear' && !(Number.isInteger(f) && f >= 1))
      throw new ConfigError(`checkpoint-factor: expected a positive integer, got ${f}`);
    if (s.checkpointScale === 'log' && !(f > 1))
      throw new ConfigError(`checkpoint-factor: expected a number > 1 with checkpoint-scale log, got ${f}`);
  }
  if (s.checkpointScale !== 'linear' && s.checkpointScale !== 'log')
    throw new ConfigError(`checkpoint-scale: expected linear or log, got ${String(s.checkpointScale)}`);
  for (const it of s.extraSaveIters)
    if (!(Number.isInteger(it) && it >= 0))
      throw new ConfigError(`extra-save-iters: expected non-negative integers, got ${it}`);
}

/** The sorted, distinct steps saved by a run of `trainIters` steps (always including the last). */
export function saveIters(trainIters: number, s: CheckpointSchedule): number[] {
  validateCheckpointSchedule(s);
  const steps = new Set<number>(s.extraSaveIters.filter((it) => it <= trainIters));
  const f = s.checkpointFactor;
  if (f !== undefined) {
    for (let step = f; step < trainIters; step = s.checkpointScale === 'log' ? step * f : step + f) {
      steps.add(Math.floor(step));
    }
  }
  steps.add(trainIters);
  return [...steps].sort((a, b) => a - b);
}
