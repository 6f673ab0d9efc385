/**
 * Global-norm gradient clipping, as torch.nn.utils.clip_grad_norm_ and the DeepSpeed engine do
 * it: the norm over all gradients together (accumulated here in float64), and when it exceeds
 * `maxNorm` every gradient is scaled by maxNorm / (norm + 1e-6) in float32.
 */
import { scaleInPlace, sumSquares } from './kernels.js';

const f32 = Math.fround;

export function globalGradNorm(grads: Iterable<Float32Array>): number {
  let sumSq = 0;
  for (const g of grads) sumSq += sumSquares(g);
  return Math.sqrt(sumSq);
}

/** Clips in place and returns the norm before clipping. maxNorm <= 0 disables clipping. */
export function clipGradNorm(grads: Map<string, Float32Array>, maxNorm: number): number {
  const norm = globalGradNorm(grads.values());
  if (maxNorm <= 0) return norm;
  const coef = f32(maxNorm / f32(f32(norm) + f32(1e-6)));
  if (coef < 1) for (const g of grads.values()) scaleInPlace(g, coef);
  return norm;
}
