import { headDim, type NeoXConfig } from '../../src/model/config.js';
import type { HostTensor } from '../../src/runtime/session.js';
import type { Rng } from './random.js';

/**
 * Feeds of one cached decoding step: `seq` random tokens of `batch` rows at positions past..past+seq,
 * a zero attention bias, and a random key and value cache of `past` positions per layer.
 */
export function cachedStepFeeds(
  config: NeoXConfig,
  rng: Rng,
  [batch, seq, past]: [number, number, number],
): Record<string, HostTensor> {
  const cacheDims = [batch, config.numHeads, past, headDim(config)];
  const feeds: Record<string, HostTensor> = {
    ids: {
      data: BigInt64Array.from({ length: batch * seq }, () => BigInt(rng.int(0, config.vocabSize))),
      dims: [batch, seq],
    },
    positions: {
      data: BigInt64Array.from({ length: batch * seq }, (_, i) => BigInt(past + (i % seq))),
      dims: [batch, seq],
    },
    bias: { data: new Float32Array(batch * seq * (past + seq)), dims: [batch, 1, seq, past + seq] },
  };
  for (let i = 0; i < config.numLayers; i++)
    for (const kv of ['key', 'value'])
      feeds[`past.${i}.${kv}`] = {
        data: Float32Array.from(rng.floats(batch * config.numHeads * past * headDim(config), -1, 1)),
        dims: cacheDims,
      };
  return feeds;
}
