/**
 * The optimizer's elementwise loops (apex AdamW, the sum of squares of the gradient norm, the
 * clipping scale) as 128-bit SIMD WebAssembly, src/train/kernels.wat. Float32 arrays pass through
 * the module's memory a block at a time, unless they live there already (`residentArrays`): then
 * the kernels update them in place. Results are bit for bit those of scalar float32 loops, but for
 * `sumSquares`, which adds in four running float64 sums instead of one (the same sums either way).
 */
import { KERNELS_WASM_BASE64 } from './kernels-wasm.js';

const BLOCK = 16384;

/** The part of the WebAssembly global used here (Node's own; @types/node 20 does not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}
const { Module, Instance } = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** apex AdamW's constants as the kernels take them, after the lengths and offsets. */
type ApexArguments = [
  b1: number,
  c1: number,
  b2: number,
  c2: number,
  bc1: number,
  bc2: number,
  eps: number,
  wd: number,
  lr: number,
];

interface KernelExports {
  adamApex(n: number, ...constants: ApexArguments): void;
  sumSquares(n: number): number;
  scale(n: number, coef: number): void;
  adamApexAt(p: number, g: number, m: number, v: number, n: number, ...constants: ApexArguments): void;
  sumSquaresAt(g: number, n: number): number;
  scaleAt(g: number, n: number, coef: number): void;
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
}

interface Kernels {
  run: KernelExports;
  p: Float32Array;
  g: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

let module: object | undefined;

function instantiate(): KernelExports {
  module ??= new Module(Buffer.from(KERNELS_WASM_BASE64, 'base64'));
  return new Instance(module).exports as KernelExports;
}

let loaded: Kernels | undefined;

function kernels(): Kernels {
  if (!loaded) {
    const run = instantiate();
    const block = (i: number): Float32Array => new Float32Array(run.memory.buffer, i * BLOCK * 4, BLOCK);
    loaded = { run, p: block(0), g: block(1), m: block(2), v: block(3) };
  }
  return loaded;
}

/** Lanes of whole 4-float vectors covering `n` floats. */
const lanes = (n: number): number => (n + 3) & ~3;

const PAGE = 65536;

/** The instances whose memory holds resident arrays, by that memory's buffer. */
const residents = new WeakMap<ArrayBuffer, KernelExports>();

/**
 * Zero-filled float32 arrays of the given lengths in the memory of a kernel instance of their
 * own, each on a 16-byte boundary and followed by zeros up to a whole 4-float vector. The kernels
 * update such arrays in place instead of copying them through blocks. The memory is grown once,
 * here, so the arrays stay valid for as long as they are referenced.
 */
export function residentArrays(lengths: readonly number[]): Float32Array[] {
  const run = instantiate();
  const bytes = lengths.reduce((sum, n) => sum + lanes(n) * 4, 0);
  const pages = Math.ceil(bytes / PAGE) - run.memory.buffer.byteLength / PAGE;
  if (pages > 0) run.memory.grow(pages);
  const buffer = run.memory.buffer;
  residents.set(buffer, run);
  let offset = 0;
  return lengths.map((n) => {
    const array = new Float32Array(buffer, offset, n);
    offset += lanes(n) * 4;
    return array;
  });
}

/** The instance holding all of `arrays` in its memory, if one does. */
function residentOf(...arrays: Float32Array[]): KernelExports | undefined {
  const run = residents.get(arrays[0]!.buffer as ArrayBuffer);
  return run && arrays.every((a) => a.buffer === arrays[0]!.buffer) ? run : undefined;
}

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

const apexArguments = (c: ApexConstants): ApexArguments => [
  c.b1,
  c.oneMinusB1,
  c.b2,
  c.oneMinusB2,
  c.bc1,
  c.bc2,
  c.eps,
  c.decay,
  c.lr,
];

/** One apex AdamW update of p, m and v in place (src/train/adamw.ts gives the formula). */
export function adamApex(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, c: ApexConstants): void {
  const run = residentOf(p, g, m, v);
  if (run) {
    const [pp, gp, mp, vp] = [p, g, m, v].map((a) => a.byteOffset) as [number, number, number, number];
    run.adamApexAt(pp, gp, mp, vp, lanes(p.length), ...apexArguments(c));
    return;
  }
  const k = kernels();
  for (let start = 0; start < p.length; start += BLOCK) {
    const end = Math.min(p.length, start + BLOCK);
    k.p.set(p.subarray(start, end));
    k.g.set(g.subarray(start, end));
    k.m.set(m.subarray(start, end));
    k.v.set(v.subarray(start, end));
    k.run.adamApex(lanes(end - start), ...apexArguments(c));
    p.set(k.p.subarray(0, end - start), start);
    m.set(k.m.subarray(0, end - start), start);
    v.set(k.v.subarray(0, end - start), start);
  }
}

/** Σ g² in float64. */
export function sumSquares(g: Float32Array): number {
  const run = residentOf(g);
  let sum = 0;
  if (run) {
    // Block by block, as below, so that the sums are the same.
    for (let start = 0; start < g.length; start += BLOCK)
      sum += run.sumSquaresAt(g.byteOffset + start * 4, lanes(Math.min(g.length, start + BLOCK) - start));
    return sum;
  }
  const k = kernels();
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
  const run = residentOf(g);
  if (run) {
    run.scaleAt(g.byteOffset, lanes(g.length), coef);
    return;
  }
  const k = kernels();
  for (let start = 0; start < g.length; start += BLOCK) {
    const end = Math.min(g.length, start + BLOCK);
    k.g.set(g.subarray(start, end));
    k.run.scale(lanes(end - start), coef);
    g.set(k.g.subarray(0, end - start), start);
  }
}
