/**
 * The optimizer's elementwise loops (apex AdamW, the sum of squares of the gradient norm, the
 * clipping scale) as 128-bit SIMD WebAssembly, src/train/kernels.wat. Float32 arrays pass through
 * the module's memory a block at a time; results are bit for bit those of scalar float32 loops,
 * but for `sumSquares`, which adds in four running float64 sums instead of one.
 */
import { KERNELS_WASM_BASE64 } from './kernels-wasm.js';

const BLOCK = 16384;

/** The part of the WebAssembly global used here (Node's own; @types/node 20 does not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}
const { Module, Instance } = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface KernelExports {
  memory: { buffer: ArrayBuffer };
  adamApex(
    n: number,
    b1: number,
    c1: number,
    b2: number,
    c2: number,
    bc1: number,
    bc2: number,
    eps: number,
    wd: number,
    lr: number,
  ): void;
  sumSquares(n: number): number;
  scale(n: number, coef: number): void;
}

interface Kernels {
  run: KernelExports;
  p: Float32Array;
  g: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

let loaded: Kernels | undefined;

function kernels(): Kernels {
  if (!loaded) {
    const run = new Instance(new Module(Buffer.from(KERNELS_WASM_BASE64, 'base64'))).exports as KernelExports;
    const block = (i: number): Float32Array => new Float32Array(run.memory.buffer, i * BLOCK * 4, BLOCK);
    loaded = { run, p: block(0), g: block(1), m: block(2), v: block(3) };
  }
  return loaded;
}

/** Lanes of whole 4-float vectors covering `n` floats. */
const lanes = (n: number): number => (n + 3) & ~3;

export interface ApexConstants {
  b1: number;
  oneMinusB1: number;
  b2: number;
  oneMinusB2: number;
  bc1: number;
  bc2: number;
  eps: number;
  decay: number;
  lr: number;
}

/** One apex AdamW update of p, m and v in place (src/train/adamw.ts gives the formula). */
export function adamApex(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, c: ApexConstants): void {
  const k = kernels();
  for (let start = 0; start < p.length; start += BLOCK) {
    const end = Math.min(p.length, start + BLOCK);
    k.p.set(p.subarray(start, end));
    k.g.set(g.subarray(start, end));
    k.m.set(m.subarray(start, end));
    k.v.set(v.subarray(start, end));
    k.run.adamApex(lanes(end - start), c.b1, c.oneMinusB1, c.b2, c.oneMinusB2, c.bc1, c.bc2, c.eps, c.decay, c.lr);
    p.set(k.p.subarray(0, end - start), start);
    m.set(k.m.subarray(0, end - start), start);
    v.set(k.v.subarray(0, end - start), start);
  }
}

/** Σ g² in float64. */
export function sumSquares(g: Float32Array): number {
  const k = kernels();
  let sum = 0;
  for (let start = 0; start < g.length; start += BLOCK) {
    const end = Math.min(g.length, start + BLOCK);
    k.g.set(g.subarray(start, end));
    k.g.fill(0, end - start, lanes(end - start));
    sum += k.run.sumSquares(lanes(end - start));
  }
  return sum;
}

/** g = g·coef in float32, in place. */
export function scaleInPlace(g: Float32Array, coef: number): void {
  const k = kernels();
  for (let start = 0; start < g.length; start += BLOCK) {
    const end = Math.min(g.length, start + BLOCK);
    k.g.set(g.subarray(start, end));
    k.run.scale(lanes(end - start), coef);
    g.set(k.g.subarray(0, end - start), start);
  }
}
