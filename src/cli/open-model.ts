/** A checkpoint opened for a command that scores or reads activations, saying on stderr when it streams. */
import { type ModelWeights, openModelWeights } from '../model/model-weights.js';

export function openForCommand(command: string, dir: string, maxMemory: number | undefined): ModelWeights {
  const weights = openModelWeights(dir, maxMemory);
  if (weights.kind === 'streamed')
    process.stderr.write(`pythia ${command}: ${weights.plan.reason}: streaming one layer at a time\n`);
  return weights;
}
