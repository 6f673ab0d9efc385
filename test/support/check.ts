/**
 * Comparison helpers and a finite-difference checker for vector–Jacobian products: the engine's
 * gradient of ⟨seed, f(x)⟩ against central differences of the same float64 graph.
 */
import assert from 'node:assert/strict';
import { type DType, dtypeOfArray, type TypedArray } from '../../src/graph/dtype.js';
import { grad } from '../../src/graph/grad.js';
import { Graph, type Tensor } from '../../src/graph/graph.js';
import { compile, evaluate, type HostTensor } from '../../src/runtime/session.js';
import { Rng } from './random.js';
import type { Nd } from './reference.js';

export interface Tolerance {
  rtol?: number;
  atol?: number;
}

/** Asserts |actual − expected| ≤ atol + rtol·|expected| elementwise, naming the first index that fails. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: Tolerance,
  label: string,
): void {
  const { rtol = 1e-12, atol = 1e-12 } = tol;
  assert.equal(actual.length, expected.length, `${label}: ${actual.length} values, expected ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      assert.fail(`${label}[${i}]: got ${a}, expected ${e} (rtol ${rtol}, atol ${atol})`);
    }
  }
}

export function assertNdClose(actual: HostTensor, expected: Nd, tol: Tolerance, label: string): void {
  assert.deepEqual([...actual.dims], expected.dims, `${label}: dims`);
  assertClose(toNumbers(actual.data), expected.data, tol, label);
}

export function toNumbers(data: TypedArray): number[] {
  return Array.from(data as ArrayLike<number | bigint>, Number);
}

export function f64(nd: Nd): HostTensor {
  return { data: nd.data, dims: nd.dims };
}

export function f32(nd: Nd): HostTensor {
  return { data: Float32Array.from(nd.data), dims: nd.dims };
}

export function i64(values: readonly number[], dims: readonly number[] = [values.length]): HostTensor {
  return { data: BigInt64Array.from(values.map(BigInt)), dims };
}

export function i32(values: readonly number[], dims: readonly number[] = [values.length]): HostTensor {
  return { data: Int32Array.from(values), dims };
}

export function dtypeOf(t: HostTensor): DType {
  return dtypeOfArray(t.data);
}

/** Builds a fresh graph with one input per feed (named and typed after it) and evaluates `build`. */
export async function run(
  feeds: Record<string, HostTensor>,
  build: (x: Record<string, Tensor>, g: Graph) => Tensor | Record<string, Tensor>,
): Promise<Record<string, HostTensor>> {
  const g = new Graph();
  const x = Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, g.input(name, dtypeOf(t), t.dims)]));
  const built = build(x, g);
  const outputs = 'graph' in built ? { y: built as Tensor } : (built as Record<string, Tensor>);
  return evaluate({ graph: g, outputs }, feeds);
}

export interface VjpCase {
  /** float64 inputs to differentiate; no zeros unless the op needs them. */
  wrt: Record<string, Nd>;
  /** Other inputs (indices, masks), fed as they are. */
  fixed?: Record<string, HostTensor>;
  build: (x: Record<string, Tensor>, g: Graph) => Tensor;
  seedValues?: Float64Array;
  /** Step of the central difference, relative to max(1, |x|). */
  step?: number;
  tol?: Tolerance;
  seed?: number;
}

/**
 * Checks grad(y, wrt, seed) = ∂⟨seed, y⟩/∂x for every element of every wrt input, the right side by
 * central differences (x ± h) of the forward graph. Keep inputs small: it runs 2·(inputs) forwards.
 */
export async function checkVjp(c: VjpCase): Promise<void> {
  const g = new Graph();
  const feeds: Record<string, HostTensor> = { ...c.fixed };
  const x: Record<string, Tensor> = {};
  for (const [name, v] of Object.entries(c.wrt)) {
    x[name] = g.input(name, 'float64', v.dims);
    feeds[name] = { data: Float64Array.from(v.data), dims: v.dims };
  }
  for (const [name, t] of Object.entries(c.fixed ?? {})) x[name] = g.input(name, dtypeOf(t), t.dims);
  const y = c.build(x, g);
  assert.equal(y.dtype, 'float64', 'checkVjp needs a float64 output');
  const yDims = y.shape as number[];
  const count = yDims.reduce((p, q) => p * q, 1);
  // A scalar output is differentiated as a loss is, with grad's own seed of 1.
  const scalar = yDims.length === 0 && !c.seedValues;
  const seedData = scalar ? Float64Array.of(1) : (c.seedValues ?? seededCotangent(count, c.seed ?? 1));
  const names = Object.keys(c.wrt);
  const wrtTensors = names.map((n) => x[n]!);
  const grads = scalar ? grad(y, wrtTensors) : grad(y, wrtTensors, g.input('vjp_seed', 'float64', yDims));
  const outputs: Record<string, Tensor> = { y };
  names.forEach((n, i) => {
    outputs[`grad_${n}`] = grads[i]!;
  });
  const withSeed = { ...feeds, vjp_seed: { data: seedData, dims: yDims } };
  const analytic = await (await compile({ graph: g, outputs })).run(withSeed);
  const forward = await compile({ graph: g, outputs: { y } });

  const dot = (values: TypedArray): number => {
    let s = 0;
    for (let i = 0; i < count; i++) s += seedData[i]! * (values[i] as number);
    return s;
  };
  const step = c.step ?? 1e-6;
  for (const name of names) {
    const data = feeds[name]!.data as Float64Array;
    const got = analytic[`grad_${name}`]!;
    assert.deepEqual([...got.dims], [...c.wrt[name]!.dims], `gradient of ${name}: dims`);
    const numeric = new Float64Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const x0 = data[i]!;
      const h = step * Math.max(1, Math.abs(x0));
      data[i] = x0 + h;
      const plus = dot((await forward.run(feeds)).y!.data);
      data[i] = x0 - h;
      const minus = dot((await forward.run(feeds)).y!.data);
      data[i] = x0;
      numeric[i] = (plus - minus) / (2 * h);
    }
    assertClose(got.data as Float64Array, numeric, c.tol ?? { rtol: 1e-6, atol: 1e-7 }, `gradient of ${name}`);
  }
}

function seededCotangent(n: number, seed: number): Float64Array {
  return new Rng(seed).nonzero(n, 0.5, 1.5);
}

/** ‖actual − expected‖₂ / ‖expected‖₂, the fixtures' gradient and weight metric. */
export function relativeL2(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < expected.length; i++) {
    num += (actual[i]! - expected[i]!) ** 2;
    den += expected[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

/**
 * relativeL2 of a trained parameter, leaving out the key part of a query_key_value bias: its
 * gradient is exactly zero (softmax is unchanged when every score shifts by q·b_k), so Adam turns
 * its rounding noise into ±lr steps. The fused layout is per head [q, k, v], each `headDim` wide.
 */
export function trainedRelativeL2(
  name: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  headDim: number,
): number {
  const keyBias = name.endsWith('query_key_value.bias');
  let num = 0;
  let den = 0;
  for (let i = 0; i < expected.length; i++) {
    if (keyBias && Math.floor(i / headDim) % 3 === 1) continue;
    num += (actual[i]! - expected[i]!) ** 2;
    den += expected[i]! ** 2;
  }
  return den === 0 ? (num === 0 ? 0 : Infinity) : Math.sqrt(num / den);
}
