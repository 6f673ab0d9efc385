/**
 * scatterAdd with repeated indices at two intra-op threads: every update lands, summed in a fixed
 * order, so the bytes are the same on every run. onnxruntime 1.30's CPU ScatterND with reduction
 * 'add' splits the indices over threads that add into the same rows unsynchronised and loses updates
 * (the embedding gradient and the LM head's one-hot part go through this op).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Graph } from '../../src/graph/graph.js';
import * as op from '../../src/graph/ops.js';
import { compile, type HostTensor } from '../../src/runtime/session.js';
import { Rng } from '../support/random.js';

const [ROWS, D, N] = [64, 128, 8192];
const RUNS = 30;

/** Index i goes to row 0 every other time, otherwise to one of 50 rows: heavy repetition. */
const INDEX = Array.from({ length: N }, (_, i) => (i % 2 === 0 ? 0 : (i * 7) % 50));

/** Each table element plus its updates added one after another in index order, in float32. */
function inOrderFloat32(table: Float32Array, updates: Float32Array): Float32Array {
  const out = Float32Array.from(table);
  INDEX.forEach((row, i) => {
    for (let j = 0; j < D; j++) out[row * D + j] = Math.fround(out[row * D + j]! + updates[i * D + j]!);
  });
  return out;
}

/** The float64 sum of each table element and its updates, and Σ|terms| and the term count per element. */
function reference(
  table: Float32Array,
  updates: Float32Array,
): { sum: Float64Array; abs: Float64Array; terms: Int32Array } {
  const sum = Float64Array.from(table);
  const abs = Float64Array.from(table, Math.abs);
  const terms = new Int32Array(ROWS * D).fill(1);
  INDEX.forEach((row, i) => {
    for (let j = 0; j < D; j++) {
      const u = updates[i * D + j]!;
      sum[row * D + j]! += u;
      abs[row * D + j]! += Math.abs(u);
      terms[row * D + j]!++;
    }
  });
  return { sum, abs, terms };
}

/** Runs scatterAdd(table, INDEX, updates) RUNS times in one two-thread session (index as `dtype`). */
async function scatterRuns(
  table: Float32Array,
  updates: Float32Array,
  dtype: 'int64' | 'int32',
): Promise<Float32Array[]> {
  const g = new Graph();
  const t = g.input('table', 'float32', [ROWS, D]);
  const i = g.input('index', dtype, [N]);
  const u = g.input('updates', 'float32', [N, D]);
  const session = await compile({ graph: g, outputs: { y: op.scatterAdd(t, i, u) } }, { threads: 2, cache: false });
  const feeds: Record<string, HostTensor> = {
    table: { data: table, dims: [ROWS, D] },
    index: { data: dtype === 'int64' ? BigInt64Array.from(INDEX, BigInt) : Int32Array.from(INDEX), dims: [N] },
    updates: { data: updates, dims: [N, D] },
  };
  const outs: Float32Array[] = [];
  for (let r = 0; r < RUNS; r++) outs.push((await session.run(feeds)).y!.data as Float32Array);
  await session.release();
  return outs;
}

function assertSameBytes(outs: Float32Array[]): void {
  const first = Buffer.from(outs[0]!.buffer, outs[0]!.byteOffset, outs[0]!.byteLength);
  outs.forEach((o, r) => {
    const bytes = Buffer.from(o.buffer, o.byteOffset, o.byteLength);
    assert.ok(bytes.equals(first), `run ${r} differs from run 0 in its bytes`);
  });
}

describe('scatterAdd with repeated indices at 2 threads', () => {
  it('sums small integers exactly on every run', async () => {
    const table = Float32Array.from({ length: ROWS * D }, (_, k) => (k % 7) - 3);
    const updates = Float32Array.from({ length: N * D }, (_, k) => (k % 5) - 1);
    const { sum } = reference(table, updates);
    for (const dtype of ['int64', 'int32'] as const) {
      const outs = await scatterRuns(table, updates, dtype);
      outs.forEach((o, r) => {
        const k = o.findIndex((v, e) => v !== sum[e]);
        assert.equal(k, -1, `${dtype} run ${r}: element ${k} is ${o[k]}, the exact sum is ${sum[k]}`);
      });
    }
  });

  it('sums random floats in index order, within float32 rounding of the float64 sum, on every run', async () => {
    const rng = new Rng(21);
    const table = Float32Array.from(rng.floats(ROWS * D, -1, 1));
    const updates = Float32Array.from(rng.floats(N * D, -1, 1));
    const { sum, abs, terms } = reference(table, updates);
    const outs = await scatterRuns(table, updates, 'int64');
    outs.forEach((o, r) => {
      // Recursive summation of k float32 terms errs by at most (k − 1)·2⁻²⁴·Σ|terms| (plus the float32 result's rounding).
      const k = o.findIndex((v, e) => !(Math.abs(v - sum[e]!) <= terms[e]! * 2 ** -24 * abs[e]!));
      assert.equal(k, -1, `run ${r}: element ${k} is ${o[k]}, the float64 sum is ${sum[k]}`);
    });
    assertSameBytes(outs);
    const inOrder = inOrderFloat32(table, updates);
    const k = outs[0]!.findIndex((v, e) => v !== inOrder[e]);
    assert.equal(k, -1, `element ${k} is ${outs[0]![k]}, added in index order it is ${inOrder[k]}`);
  });
});
