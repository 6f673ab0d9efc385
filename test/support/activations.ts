/** Helpers of the named-activation tests: a fixture's model and token rows, and tensor comparisons. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openSafetensors } from '../../src/formats/index.js';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import type { NeoXConfig } from '../../src/model/config.js';
import type { Activation } from '../../src/model/hooks.js';
import type { Params } from '../../src/model/params.js';
import { fixtureDir } from './paths.js';
import type { Nd } from './reference.js';

export interface FixtureModel {
  config: NeoXConfig;
  params: Params;
  /** The fixture's token rows. */
  rows: number[][];
  /** [batch, seq] as int64. */
  ids: BigInt64Array;
  /** HF's hidden_states.N, N = 0..L. */
  hiddenStates: Float32Array[];
}

export function fixtureModel(name: string): FixtureModel {
  const dir = fixtureDir(name);
  const { config, params } = loadCheckpoint(join(dir, 'model'));
  const expected = openSafetensors(join(dir, 'expected.safetensors'));
  const raw = expected.readRaw('input_ids');
  const ids = new BigInt64Array(raw.data.buffer.slice(raw.data.byteOffset, raw.data.byteOffset + raw.data.byteLength));
  const [batch, seq] = raw.shape as [number, number];
  const rows = Array.from({ length: batch }, (_, b) => Array.from(ids.subarray(b * seq, (b + 1) * seq), Number));
  const hiddenStates = Array.from({ length: config.numLayers + 1 }, (_, i) =>
    expected.readFloat32(`hidden_states.${i}`),
  );
  expected.close();
  return { config, params, rows, ids, hiddenStates };
}

/**
 * Asserts `actual` equals `expected` within `rtol` of the largest |expected| (at least 1); float32
 * against the float64 reference stays under 4e-7 on the fixtures. −inf (masked scores) must be −inf in both.
 */
export function assertActivationClose(actual: Activation, expected: Nd, label: string, rtol = 1e-5): void {
  assert.deepEqual(actual.dims, expected.dims, `${label}: dims`);
  let scale = 1;
  for (const e of expected.data) if (Number.isFinite(e)) scale = Math.max(scale, Math.abs(e));
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.data.length; i++) {
    const [a, e] = [actual.data[i]!, expected.data[i]!];
    if (!Number.isFinite(e)) {
      assert.equal(a, e, `${label}[${i}]: got ${a}, expected ${e}`);
      continue;
    }
    const d = Math.abs(a - e);
    if (!(d <= worst)) [worst, at] = [d, i];
  }
  assert.ok(worst <= rtol * scale, `${label}: max |Δ| ${worst} at ${at} (scale ${scale}, rtol ${rtol})`);
}
