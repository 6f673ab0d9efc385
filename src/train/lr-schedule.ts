/**
 * GPT-NeoX v1.0 `AnnealingLR.get_lr`, evaluated in float64 in the same operation order.
 *
 * Two traps, both reproduced on purpose:
 *  - the cosine divides the post-warmup iteration count by the *total* iterations, not by
 *    (total - warmup), so the curve is floored at `minLr` well before the last step (for the
 *    Pythia recipe from n ≈ 115,139 of 143,000 on);
 *  - optimizer update k (1-based) uses lr(n = k - 1): the very first update uses lr(0) = 0.
 */
import { ConfigError } from '../util/errors.js';

export const LR_DECAY_STYLES = ['constant', 'linear', 'cosine', 'exponential'] as const;
export type LrDecayStyle = (typeof LR_DECAY_STYLES)[number];

export interface LrSchedule {
  /** Peak learning rate (GPT-NeoX `optimizer.params.lr`). */
  lr: number;
  /** Floor (GPT-NeoX `min_lr`). */
  minLr: number;
  /** Warmup as a fraction of `decayIters` (GPT-NeoX `warmup`). */
  warmup: number;
  /** GPT-NeoX `lr-decay-iters`, which defaults to `train-iters`. */
  decayIters: number;
  decayStyle: LrDecayStyle;
}

export function validateLrSchedule(s: LrSchedule): void {
  if (!(s.lr >= 0) || !Number.isFinite(s.lr)) throw new ConfigError(`lr: expected a finite number >= 0, got ${s.lr}`);
  if (!(s.minLr >= 0) || !Number.isFinite(s.minLr))
    throw new ConfigError(`min_lr: expected a finite number >= 0, got ${s.minLr}`);
  if (!(s.warmup >= 0 && s.warmup <= 1))
    throw new ConfigError(`warmup: expected a fraction in [0, 1], got ${s.warmup}`);
  if (!(Number.isInteger(s.decayIters) && s.decayIters > 0))
    throw new ConfigError(`lr-decay-iters: expected a positive integer, got ${s.decayIters}`);
  if (!LR_DECAY_STYLES.includes(s.decayStyle))
    throw new ConfigError(`lr-decay-style: expected one of ${LR_DECAY_STYLES.join(', ')}, got ${String(s.decayStyle)}`);
}

/** The scheduler's learning rate after `n` scheduler steps (GPT-NeoX `num_iters = n`). */
export function learningRateAt(s: LrSchedule, n: number): number {
  const end = s.decayIters;
  const warm = s.warmup * end; // a float, as in GPT-NeoX: 0.01 * 143000 = 1430.0
  let n_ = Math.min(n, end - warm);
  if (warm > 0 && n <= warm) return (s.lr * n_) / warm;
  n_ = n_ - warm;
  let lr: number;
  switch (s.decayStyle) {
    case 'linear':
      lr = (s.lr * (end - n_)) / end;
      break;
    case 'cosine':
      lr = (s.lr / 2) * (Math.cos((Math.PI * n_) / end) + 1);
      break;
    case 'exponential':
      // biome-ignore lint/suspicious/noApproximativeNumericConstant: GPT-NeoX writes 0.693, not ln 2; the schedule must match it
      lr = s.lr * Math.exp((-0.693 * n_) / end);
      break;
    case 'constant':
      lr = s.lr;
      break;
  }
  return Math.max(lr, s.minLr);
}

/** The learning rate that optimizer update `k` (1-based, as in the checkpoint name `step<k>`) applies. */
export function learningRateForUpdate(s: LrSchedule, k: number): number {
  return learningRateAt(s, k - 1);
}
