/**
 * Rotary position tables, computed as HF GPT-NeoX computes them in float32:
 * inv_freq[i] = 1 / base^(2i/r), angle = fround(p · inv_freq[i]), tables [positions, r] holding
 * cos/sin of concat(angles, angles).
 */
import { ConfigError } from '../util/errors.js';

export function inverseFrequencies(rotaryDims: number, base: number): Float32Array {
  const half = rotaryDims / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) out[i] = 1 / base ** Math.fround((2 * i) / rotaryDims);
  return out;
}

/**
 * The most entries one table may have (2^24 floats, 64 MiB): far above any real model's
 * (Pythia-12b: 2048 positions × 32 rotary dimensions), low enough that a config.json asking for a billion
 * positions gets an error instead of an allocation that cannot succeed.
 */
export const MAX_TABLE_ENTRIES = 1 << 24;

function checkTableSize(positions: number, width: number): void {
  if (positions * width > MAX_TABLE_ENTRIES) {
    throw new ConfigError(
      `rotary tables for max_position_embeddings ${positions} × ${width} would hold ${positions * width} entries, more than the ${MAX_TABLE_ENTRIES} we allow: max_position_embeddings is too large for this model`,
    );
  }
}

export function rotaryTables(
  positions: number,
  rotaryDims: number,
  base: number,
): { cos: Float32Array; sin: Float32Array } {
  checkTableSize(positions, rotaryDims);
  const invFreq = inverseFrequencies(rotaryDims, base);
  const half = rotaryDims / 2;
  const cos = new Float32Array(positions * rotaryDims);
  const sin = new Float32Array(positions * rotaryDims);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(Math.fround(p) * invFreq[i]!);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[p * rotaryDims + i] = c;
      cos[p * rotaryDims + i + half] = c;
      sin[p * rotaryDims + i] = s;
      sin[p * rotaryDims + i + half] = s;
    }
  }
  return { cos, sin };
}

/** cos and sin [positions, r/2] of the rotary angles: the tables the fused rotary op reads. */
export function halfRotaryTables(
  positions: number,
  rotaryDims: number,
  base: number,
): { cos: Float32Array; sin: Float32Array } {
  const { cos, sin } = rotaryTables(positions, rotaryDims, base);
  const half = rotaryDims / 2;
  const firstHalves = (table: Float32Array): Float32Array => {
    const out = new Float32Array(positions * half);
    for (let p = 0; p < positions; p++) out.set(table.subarray(p * rotaryDims, p * rotaryDims + half), p * half);
    return out;
  };
  return { cos: firstHalves(cos), sin: firstHalves(sin) };
}

/** R [width, width] with x·R = rotate_half(x[:r]) on the first r dims and 0 elsewhere (width ≥ r). */
export function rotateHalfMatrix(rotaryDims: number, width: number): Float32Array {
  const R = new Float32Array(width * width);
  const half = rotaryDims / 2;
  for (let j = 0; j < half; j++) {
    R[(j + half) * width + j] = -1;
    R[j * width + j + half] = 1;
  }
  return R;
}
