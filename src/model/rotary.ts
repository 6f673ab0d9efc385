/**
 * Rotary position tables, computed as HF GPT-NeoX computes them in float32:
 * inv_freq[i] = 1 / base^(2i/r), angle = fround(p · inv_freq[i]), tables [positions, r] holding
 * cos/sin of concat(angles, angles).
 */
export function inverseFrequencies(rotaryDims: number, base: number): Float32Array {
  const half = rotaryDims / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) out[i] = 1 / Math.pow(base, Math.fround((2 * i) / rotaryDims));
  return out;
}

export function rotaryTables(positions: number, rotaryDims: number, base: number): { cos: Float32Array; sin: Float32Array } {
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
