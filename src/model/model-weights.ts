/**
 * A checkpoint opened for scoring or reading activations: loaded whole when its float32 weights fit
 * the memory budget, else opened for layer streaming (memory-budget.ts decides).
 */
import type { RuntimeOptions } from '../runtime/session.js';
import { ActivationRunner } from './activations.js';
import { type Checkpoint, loadCheckpoint, readConfig, tokenizerOf } from './checkpoint.js';
import type { NeoXConfig } from './config.js';
import { LayerStream } from './layer-stream.js';
import { type MemoryPlan, planMemory, streamedActivationBytes } from './memory-budget.js';
import type { Params } from './params.js';
import { Scorer } from './score.js';

export type ModelWeights =
  | { kind: 'resident'; config: NeoXConfig; checkpoint: Checkpoint; plan: MemoryPlan }
  | { kind: 'streamed'; config: NeoXConfig; stream: LayerStream; plan: MemoryPlan; activationBytes: number };

/** Opens `dir` resident or streamed, against `maxMemory` (bytes; the peak to stay under) or the available memory. */
export function openModelWeights(dir: string, maxMemory?: number): ModelWeights {
  return loadModelWeights(dir, planMemory(readConfig(dir), maxMemory));
}

/** Opens `dir` as `plan` says: loaded whole, or streamed with what the plan's budget leaves for activations. */
export function loadModelWeights(dir: string, plan: MemoryPlan): ModelWeights {
  if (!plan.stream) {
    const checkpoint = loadCheckpoint(dir);
    return { kind: 'resident', config: checkpoint.config, checkpoint, plan };
  }
  const stream = LayerStream.open(dir);
  const activationBytes = streamedActivationBytes(plan.budget, stream.bufferBytes);
  return { kind: 'streamed', config: stream.config, stream, plan, activationBytes };
}

export function modelTokenizerPath(weights: ModelWeights): string | undefined {
  return weights.kind === 'resident' ? weights.checkpoint.tokenizerPath : tokenizerOf(weights.stream.dir);
}

/** An ActivationRunner on the parameters, or on the stream with its activation budget. */
export function activationRunner(weights: ModelWeights, runtime: RuntimeOptions = {}): ActivationRunner {
  return weights.kind === 'resident'
    ? new ActivationRunner(weights.config, weights.checkpoint.params, runtime)
    : new ActivationRunner(weights.config, weights.stream, runtime, weights.activationBytes);
}

/**
 * The parameters of the final LayerNorm and the unembedding (what the lenses read beside the
 * activations): among the resident ones, or read from the stream's files.
 */
export function headParams(weights: ModelWeights): Params {
  return weights.kind === 'resident' ? weights.checkpoint.params : weights.stream.readHeadParams();
}

export function scorerFor(weights: ModelWeights, runtime: RuntimeOptions = {}): Promise<Scorer> {
  return weights.kind === 'resident'
    ? Scorer.create(weights.config, weights.checkpoint.params, runtime)
    : Scorer.streamed(weights.stream, runtime, weights.activationBytes);
}

/** Closes a streamed checkpoint's files (a resident one holds none). */
export async function closeModelWeights(weights: ModelWeights): Promise<void> {
  if (weights.kind === 'streamed') await weights.stream.close();
}
