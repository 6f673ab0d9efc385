/** A checkpoint opened for a command that scores or reads activations, saying on stderr when it streams. */
import { streamingMessage } from '../model/memory-budget.js';
import { closeModelWeights, type ModelWeights, openModelWeights } from '../model/model-weights.js';

export function openForCommand(command: string, dir: string, maxMemory: number | undefined): ModelWeights {
  const weights = openModelWeights(dir, maxMemory);
  if (weights.kind === 'streamed')
    process.stderr.write(`pythia ${command}: ${streamingMessage(weights.plan, weights.stream.bufferBytes)}\n`);
  return weights;
}

/** Runs `fn` on the checkpoint opened for `command`, and closes it (its stream, where it streams) after. */
export async function withModelWeights(
  command: string,
  dir: string,
  maxMemory: number | undefined,
  fn: (model: ModelWeights) => Promise<void>,
): Promise<void> {
  const model = openForCommand(command, dir, maxMemory);
  try {
    await fn(model);
  } finally {
    await closeModelWeights(model);
  }
}
