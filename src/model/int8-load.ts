/**
 * A checkpoint loaded straight to int8 weights: each tensor is read and widened to float32 on its
 * own, quantized if it is a linear weight, and its float32 copy dropped before the next is read, so
 * the peak is the int8 weights and one float32 tensor, never the whole model in float32.
 */
import { openCheckpointWeights } from '../formats/index.js';
import { checkFinite, readConfig, storedParameters, tokenizerOf } from './checkpoint.js';
import type { NeoXConfig } from './config.js';
import { type Int8Weights, quantizeEach } from './int8.js';

export interface Int8Checkpoint {
  dir: string;
  config: NeoXConfig;
  weights: Int8Weights;
  tokenizerPath?: string;
}

/** Loads `dir`'s weights quantized as `--weights int8` runs them; non-finite weights are refused. */
export function loadInt8Checkpoint(dir: string): Int8Checkpoint {
  const config = readConfig(dir);
  const source = openCheckpointWeights(dir);
  try {
    function* read(): Generator<[string, Float32Array]> {
      for (const { stored, name } of storedParameters(source, config, dir)) {
        const values = source.readFloat32(stored);
        checkFinite(source.file, stored, values);
        yield [name, values];
      }
    }
    return { dir, config, weights: quantizeEach(config, read()), tokenizerPath: tokenizerOf(dir) };
  } finally {
    source.close();
  }
}
