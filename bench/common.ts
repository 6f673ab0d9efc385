/** Shared pieces of the benchmarks: shapes, random weights, timing, the PyTorch baseline, load. */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { type NeoXConfig, parameterShapes } from '../src/model/config.js';
import { pythiaArchitecture } from '../src/model/presets.js';
import type { Params } from '../src/model/params.js';
import { Prng } from '../src/util/prng.js';

/** The side-by-side shapes of ../shared/bench/torch_gptneox.py --bench (V, d, L, heads, T, B). */
export const SHAPES = [
  { label: 'd=64/L=2', V: 1024, d: 64, L: 2, h: 4, T: 128, B: 16 },
  { label: 'd=128/L=4', V: 1024, d: 128, L: 4, h: 4, T: 128, B: 16 },
  { label: 'd=256/L=4', V: 2048, d: 256, L: 4, h: 8, T: 256, B: 8 },
  { label: 'pythia-70m', V: 50304, d: 512, L: 6, h: 8, T: 512, B: 4 },
] as const;

export type BenchShape = (typeof SHAPES)[number];

export function configFor(s: BenchShape): NeoXConfig {
  return { ...pythiaArchitecture({ numLayers: s.L, hiddenSize: s.d, numHeads: s.h, vocabSize: s.V }), dtype: 'float32' };
}

export function randomParams(config: NeoXConfig, seed = 0): Params {
  const rng = new Prng(seed);
  const params: Params = new Map();
  for (const { name, shape } of parameterShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const isNorm = name.includes('layernorm') || name.includes('layer_norm');
    for (let i = 0; i < n; i++) data[i] = isNorm && name.endsWith('weight') ? 1 : isNorm ? 0 : 0.02 * rng.normal();
    params.set(name, data);
  }
  return params;
}

export function randomTokens(count: number, vocab: number, seed = 1): BigInt64Array {
  const rng = new Prng(seed);
  return BigInt64Array.from({ length: count }, () => BigInt(rng.int(vocab)));
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Median seconds of `runs` calls after `warmup` calls. */
export async function timeIt(fn: () => Promise<unknown>, runs = 5, warmup = 1): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

export function loadNote(): string {
  const load = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  const cores = availableParallelism();
  return load > 0.5 * cores
    ? `WARNING: load average ${load} on ${cores} cores: another busy process halves a 2-core result`
    : `load average ${load} on ${cores} cores`;
}

export interface TorchResult {
  d: number;
  L: number;
  train_tok_s: number;
  train_gflops: number;
  fwd_tok_s: number;
}

/** Runs ../shared/bench/torch_gptneox.py --bench when Debian's python3-torch is installed. */
export function torchBaseline(threads: number, sharedDir: string): { results: TorchResult[]; note: string } {
  const script = join(sharedDir, 'bench/torch_gptneox.py');
  const python = '/usr/bin/python3';
  if (!existsSync(script) || !existsSync(python)) return { results: [], note: 'PyTorch baseline: script or /usr/bin/python3 missing' };
  const probe = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    return { results: [], note: 'PyTorch baseline: not installed (apt-get install python3-torch libopenblas0-pthread); showing the figures the issues recorded on this class of machine' };
  }
  const r = spawnSync(python, [script, '--bench', '--threads', String(threads)], { encoding: 'utf8', timeout: 1_800_000 });
  const results = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as TorchResult);
  return { results, note: `PyTorch baseline measured now (${threads} threads)` };
}

export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) => r.map((c, i) => c.padStart(widths[i]!)).join('  ')).join('\n');
}

/** Thread count (BENCH_THREADS, default every core) and the header line, without a baseline. */
export function benchSetupThreads(name: string): number {
  const threads = Number(process.env.BENCH_THREADS ?? availableParallelism());
  console.log(`${name}, ${threads} threads; ${loadNote()}`);
  return threads;
}

/** Thread count (BENCH_THREADS, default every core), the header line, and the PyTorch baseline. */
export function benchSetup(name: string): { threads: number; torch: { results: TorchResult[]; note: string } } {
  const threads = Number(process.env.BENCH_THREADS ?? availableParallelism());
  console.log(`${name}, ${threads} threads; ${loadNote()}`);
  const torch = torchBaseline(threads, join(process.cwd(), '../shared'));
  console.log(torch.note);
  return { threads, torch };
}

/** Best float32 GFLOP/s of a 2048² matmul through the engine (onnxruntime): the machine's limit for our figures. */
export async function matmulPeak(threads: number, n = 2048, runs = 7): Promise<number> {
  const { Graph } = await import('../src/graph/graph.js');
  const op = await import('../src/graph/ops.js');
  const { compile } = await import('../src/runtime/session.js');
  const g = new Graph();
  const y = op.matmul(g.input('a', 'float32', [n, n]), g.input('b', 'float32', [n, n]));
  const session = await compile({ graph: g, outputs: { y } }, { threads });
  const rng = new Prng(3);
  const a = Float32Array.from({ length: n * n }, () => rng.float() - 0.5);
  const feeds = { a: { data: a, dims: [n, n] }, b: { data: a, dims: [n, n] } };
  let best = Infinity;
  for (let i = 0; i < runs + 2; i++) {
    const t0 = performance.now();
    await session.run(feeds);
    if (i >= 2) best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return (2 * n ** 3) / best / 1e9;
}

/** A Python with torch and transformers for the Hugging Face baselines: PYTHIA_BENCH_PYTHON, else python3. */
export function hfPython(): { python: string | undefined; note: string } {
  const candidates = [process.env.PYTHIA_BENCH_PYTHON, 'python3'].filter((p): p is string => !!p);
  for (const python of candidates) {
    const probe = spawnSync(python, ['-c', 'import torch, transformers; print(torch.__version__, transformers.__version__)'], { encoding: 'utf8' });
    if (probe.status === 0) return { python, note: `Hugging Face baseline: ${python} (torch, transformers ${probe.stdout.trim()})` };
  }
  return {
    python: undefined,
    note: 'Hugging Face baseline skipped: no Python with torch and transformers (python3 -m venv venv && venv/bin/pip install torch transformers, then PYTHIA_BENCH_PYTHON=venv/bin/python)',
  };
}
