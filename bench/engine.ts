/**
 * `npm run bench:engine`: float32 matmul GFLOP/s through the engine (graph → ONNX → session) next
 * to the same matmul in onnxruntime called directly on a hand-built one-node MatMul model, and the
 * per-call overhead of a tiny graph both ways. Same threads and session settings on both sides.
 */
import { availableParallelism } from 'node:os';
import ort from 'onnxruntime-node';
import { Graph } from '../src/graph/graph.js';
import * as op from '../src/graph/ops.js';
import { ProtoWriter } from '../src/graph/protobuf.js';
import { compile } from '../src/runtime/session.js';
import { loadNote, table } from './common.js';

const SIZES = [256, 512, 1024, 2048];
const threads = Number(process.env.BENCH_THREADS ?? availableParallelism());

/** A ModelProto with one node, `opType(a, b) → y`, all float32 [n, n] (or [n] for Add). */
function handBuiltModel(opType: 'MatMul' | 'Add', dims: number[]): Uint8Array {
  const valueInfo = (name: string): ProtoWriter => {
    const shape = new ProtoWriter();
    for (const d of dims) shape.message(1, new ProtoWriter().varint(1, d));
    const tensorType = new ProtoWriter().varint(1, 1).message(2, shape);
    return new ProtoWriter().string(1, name).message(2, new ProtoWriter().message(1, tensorType));
  };
  const node = new ProtoWriter().string(1, 'a').string(1, 'b').string(2, 'y').string(4, opType);
  const graph = new ProtoWriter()
    .message(1, node)
    .string(2, 'raw')
    .message(11, valueInfo('a'))
    .message(11, valueInfo('b'))
    .message(12, valueInfo('y'));
  return new ProtoWriter()
    .varint(1, 9)
    .message(7, graph)
    .message(8, new ProtoWriter().string(1, '').varint(2, 20))
    .finish();
}

function rawSession(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
}

function randomFloats(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  });
}

interface Timing {
  median: number;
  best: number;
}

/**
 * Seconds per call of each function (median and best), calls interleaved (a, b, a, b, ...) so
 * that load from other processes falls on both sides alike.
 */
async function interleavedTimes(fns: (() => Promise<unknown>)[], runs: number, warmup = 2): Promise<Timing[]> {
  const times = fns.map(() => [] as number[]);
  for (let r = 0; r < warmup + runs; r++) {
    for (const [i, fn] of fns.entries()) {
      const t0 = performance.now();
      await fn();
      if (r >= warmup) times[i]!.push((performance.now() - t0) / 1000);
    }
  }
  return times.map((t) => {
    t.sort((p, q) => p - q);
    return { median: t[Math.floor(t.length / 2)]!, best: t[0]! };
  });
}

async function matmulRow(n: number): Promise<(string | number)[]> {
  const a = randomFloats(n * n, 1);
  const b = randomFloats(n * n, 2);
  const flop = 2 * n ** 3;
  const runs = n >= 2048 ? 7 : n >= 1024 ? 11 : 31;

  const g = new Graph();
  const y = op.matmul(g.input('a', 'float32', [n, n]), g.input('b', 'float32', [n, n]));
  const engine = await compile({ graph: g, outputs: { y } }, { threads });
  const feeds = { a: { data: a, dims: [n, n] }, b: { data: b, dims: [n, n] } };
  const raw = await rawSession(handBuiltModel('MatMul', [n, n]));
  const rawFeeds = { a: new ort.Tensor('float32', a, [n, n]), b: new ort.Tensor('float32', b, [n, n]) };

  const [engine_, raw_] = (await interleavedTimes([() => engine.run(feeds), () => raw.run(rawFeeds)], runs)) as [
    Timing,
    Timing,
  ];
  const gflops = (seconds: number): number => flop / seconds / 1e9;
  const [e, r] = [gflops(engine_.median), gflops(raw_.median)];
  return [
    n,
    e.toFixed(1),
    r.toFixed(1),
    `${((e / r - 1) * 100).toFixed(1)}%`,
    gflops(engine_.best).toFixed(1),
    gflops(raw_.best).toFixed(1),
  ];
}

/** Median µs per call of each function, over interleaved batches of calls. */
async function overheads(calls: (() => Promise<unknown>)[]): Promise<number[]> {
  const batch = 500;
  const batches = calls.map((call) => async () => {
    for (let i = 0; i < batch; i++) await call();
  });
  return (await interleavedTimes(batches, 9, 1)).map((t) => (t.median / batch) * 1e6);
}

console.log(`bench:engine, onnxruntime-node ${ort.env.versions.common}, ${threads} intra-op threads; ${loadNote()}`);
const rows = [];
for (const n of SIZES) rows.push(await matmulRow(n));
console.log(
  '\nfloat32 matmul [n,n]·[n,n], GFLOP/s (both a one-node MatMul, which is how the engine lowers a plain product)',
);
console.log(table(['n', 'engine median', 'raw median', 'engine vs raw', 'engine best', 'raw best'], rows));

const g = new Graph();
const x = g.input('a', 'float32', [4]);
const tiny = await compile({ graph: g, outputs: { y: op.add(x, g.input('b', 'float32', [4])) } }, { threads });
const v = Float32Array.of(1, 2, 3, 4);
const raw = await rawSession(handBuiltModel('Add', [4]));
const t = new ort.Tensor('float32', v, [4]);
const [engineUs, rawUs] = (await overheads([
  () => tiny.run({ a: { data: v, dims: [4] }, b: { data: v, dims: [4] } }),
  () => raw.run({ a: t, b: t }),
])) as [number, number];
console.log('\nper-call overhead, a 4-element Add, median µs/call');
console.log(
  table(
    ['engine', 'raw onnxruntime', 'engine extra'],
    [[engineUs.toFixed(1), rawUs.toFixed(1), (engineUs - rawUs).toFixed(1)]],
  ),
);
