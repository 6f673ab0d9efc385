/**
 * `forward` for a checkpoint streamed a layer at a time (no gradients): the logits and each block's
 * input residual through the streamed ActivationRunner, and the mean next-token loss from the
 * logits (summed in float64).
 */
import type { RuntimeOptions } from '../runtime/session.js';
import { ConfigError } from '../util/errors.js';
import { ActivationRunner } from './activations.js';
import type { ForwardResult } from './forward.js';
import type { LayerStream } from './layer-stream.js';

export interface StreamedForwardOptions {
  /** The residual stream entering each block (HF's hidden_states[0..L−1], blocks.N.hook_resid_pre). */
  hiddenStates?: boolean;
  loss?: boolean;
}

export async function streamedForward(
  stream: LayerStream,
  ids: BigInt64Array,
  batch: number,
  options: StreamedForwardOptions = {},
  runtime: RuntimeOptions = {},
): Promise<ForwardResult> {
  const { config } = stream;
  const seq = ids.length / batch;
  if (options.loss && seq < 2) throw new ConfigError('the loss needs sequences of at least 2 tokens');
  const runner = new ActivationRunner(config, stream, runtime);
  try {
    const names = options.hiddenStates ? ['blocks.*.hook_resid_pre'] : [];
    const { cache, logits } = await runner.run(ids, batch, { names, logits: 'all' });
    const result: ForwardResult = { logits: logits!.data };
    if (options.hiddenStates) result.hiddenStates = [...cache.values()].map((a) => a.data);
    if (options.loss) result.loss = meanNextTokenLoss(logits!.data, ids, batch, seq, config.vocabSize);
    return result;
  } finally {
    await runner.release();
  }
}

/** Mean over rows and positions t < seq−1 of −log softmax(logits[t])[ids[t+1]]. */
export function meanNextTokenLoss(
  logits: Float32Array,
  ids: BigInt64Array,
  batch: number,
  seq: number,
  vocab: number,
): number {
  let sum = 0;
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < seq - 1; t++) {
      const row = logits.subarray((b * seq + t) * vocab, (b * seq + t + 1) * vocab);
      let max = -Infinity;
      for (const v of row) if (v > max) max = v;
      let total = 0;
      for (const v of row) total += Math.exp(v - max);
      sum += max + Math.log(total) - row[Number(ids[b * seq + t + 1])]!;
    }
  }
  return sum / (batch * (seq - 1));
}
