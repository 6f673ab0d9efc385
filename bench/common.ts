/** Shared pieces of the benchmarks: shapes, random weights, timing, FLOP counts, the PyTorch baselines, load. */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countParameters, type NeoXConfig, parameterShapes } from '../src/model/config.js';
import type { Params } from '../src/model/params.js';
import { pythiaArchitecture } from '../src/model/presets.js';
import type { ScoreRequest } from '../src/model/score.js';
import type { ExecutionProvider } from '../src/runtime/session.js';
import { AdamW, noWeightDecay, PYTHIA_ADAM } from '../src/train/adamw.js';
import { createUpdateStep } from '../src/train/update-step.js';
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
  return {
    ...pythiaArchitecture({ numLayers: s.L, hiddenSize: s.d, numHeads: s.h, vocabSize: s.V }),
    dtype: 'float32',
  };
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

/** Model FLOPs per token (the PaLM count): 2 × (parameters except the input embedding) for the
 * matrix products plus 4 × L × T × d for attention scores and values; a training step is 3× the forward. */
export function flopsPerToken(config: NeoXConfig, seq: number, mode: 'train' | 'forward' = 'train'): number {
  const matmulParams = countParameters(config).total - config.vocabSize * config.hiddenSize;
  return (mode === 'train' ? 3 : 1) * (2 * matmulParams + 4 * config.numLayers * seq * config.hiddenSize);
}

/** A PyTorch to compare against: its Python and the environment its processes run in. */
export interface TorchBaseline {
  /** Where it comes from and its torch version, e.g. `pip torch 2.13.0+cpu`. */
  name: string;
  python: string;
  env: NodeJS.ProcessEnv;
}

/**
 * The Pythons the baselines may run in: pip's (PYTHIA_BENCH_PYTHON) and Debian's, the latter with
 * OpenBLAS left to pick its kernels.
 */
function benchPythons(): { source: string; python: string | undefined; env: NodeJS.ProcessEnv; install: string }[] {
  const { OPENBLAS_CORETYPE: _c, OPENBLAS_L2_SIZE: _l, ...unforced } = process.env;
  return [
    {
      source: 'pip',
      python: process.env.PYTHIA_BENCH_PYTHON,
      env: process.env,
      install:
        'python3 -m venv venv && venv/bin/pip install torch transformers, then PYTHIA_BENCH_PYTHON=venv/bin/python',
    },
    { source: 'debian', python: '/usr/bin/python3', env: unforced, install: 'apt-get install python3-torch' },
  ];
}

/** The PyTorch installs to try: pip's and Debian's (benchPythons). */
export function torchBaselines(): { baselines: TorchBaseline[]; notes: string[] } {
  const baselines: TorchBaseline[] = [];
  const notes: string[] = [];
  for (const { source, python, env, install } of benchPythons()) {
    const probe = python
      ? spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', env })
      : undefined;
    if (python && probe?.status === 0) baselines.push({ name: `${source} torch ${probe.stdout.trim()}`, python, env });
    else notes.push(`PyTorch baseline (${source}) not installed: ${install}`);
  }
  return { baselines, notes };
}

export interface TorchShape {
  V: number;
  d: number;
  L: number;
  h: number;
  T: number;
  B: number;
}

/** One run of bench/torch_train.py; train_* absent for a forward-only run. */
export interface TorchRun extends TorchShape {
  params: number;
  train_tok_s?: number;
  fwd_tok_s: number;
  maxrss_kib: number;
  baseline: string;
}

/** The repository's root (this file is dist/bench/common.js). */
export const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** ../shared/bench/torch_gptneox.py at one shape in a fresh process (bench/torch_train.py); undefined when it fails. */
export function runTorch(
  baseline: TorchBaseline,
  script: string,
  s: TorchShape,
  options: { steps: number; threads: number; forwardOnly?: boolean },
): TorchRun | undefined {
  const args = [join(REPO, 'bench/torch_train.py'), script, ...[s.V, s.d, s.L, s.h, s.T, s.B].map(String)];
  args.push(
    '--steps',
    String(options.steps),
    '--threads',
    String(options.threads),
    ...(options.forwardOnly ? ['--forward-only'] : []),
  );
  const r = spawnSync(baseline.python, args, { encoding: 'utf8', env: baseline.env, timeout: 1_800_000 });
  const line = r.stdout
    ?.trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .at(-1);
  if (r.status !== 0 || !line) {
    console.log(
      `${baseline.name} failed at d=${s.d}/L=${s.L}: ${r.error?.message ?? r.stderr?.trim().split('\n').at(-1) ?? `signal ${r.signal}`}`,
    );
    return undefined;
  }
  return { ...(JSON.parse(line) as Omit<TorchRun, 'baseline'>), baseline: baseline.name };
}

export interface TorchResult {
  d: number;
  L: number;
  train_tok_s: number;
  /** With our FLOP count (flopsPerToken), not the script's, which also counts the input embedding. */
  train_gflops: number;
  fwd_tok_s: number;
  /** Of the training run. */
  maxrss_kib: number;
  /** Which baseline measured train_tok_s, and which fwd_tok_s: the faster of those installed at each. */
  train_baseline: string;
  fwd_baseline: string;
}

/** The SHAPES through every installed PyTorch baseline, keeping the faster at each shape and measure. */
export function torchBaseline(threads: number, sharedDir: string): { results: TorchResult[]; note: string } {
  const script = join(sharedDir, 'bench/torch_gptneox.py');
  if (!existsSync(script)) return { results: [], note: `PyTorch baseline: ${script} missing` };
  const { baselines, notes } = torchBaselines();
  if (baselines.length === 0)
    return {
      results: [],
      note: [...notes, 'showing the PyTorch figures the issues recorded on this class of machine'].join('\n'),
    };
  const results: TorchResult[] = [];
  for (const shape of SHAPES) {
    const runs = baselines.map((b) => runTorch(b, script, shape, { steps: 5, threads })).filter((r) => r !== undefined);
    if (runs.length === 0) continue;
    const train = fastest(runs, (r) => r.train_tok_s!);
    const fwd = fastest(runs, (r) => r.fwd_tok_s);
    results.push({
      d: shape.d,
      L: shape.L,
      train_tok_s: train.train_tok_s!,
      train_gflops: (train.train_tok_s! * flopsPerToken(configFor(shape), shape.T)) / 1e9,
      fwd_tok_s: fwd.fwd_tok_s,
      maxrss_kib: train.maxrss_kib,
      train_baseline: train.baseline,
      fwd_baseline: fwd.baseline,
    });
    notes.push(`PyTorch at ${shape.label}: training ${train.baseline}, forward ${fwd.baseline}`);
  }
  return { results, note: [`PyTorch baselines measured now (${threads} threads)`, ...notes].join('\n') };
}

export function fastest<T>(runs: readonly T[], tokS: (r: T) => number): T {
  return runs.reduce((a, b) => (tokS(b) > tokS(a) ? b : a));
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

/** `count` random scoring requests of 113 context and 16 continuation tokens (128-token rows), seeded. */
export function randomScoreRequests(vocabSize: number, count: number): ScoreRequest[] {
  const rng = new Prng(5);
  return Array.from({ length: count }, () => ({
    context: Array.from({ length: 113 }, () => rng.int(vocabSize)),
    continuation: Array.from({ length: 16 }, () => rng.int(vocabSize)),
  }));
}

export interface MatmulPeaks {
  onnxruntime: number;
  numpy?: number;
  torch?: number;
  /** The best of the three: the limit our figures are a fraction of. */
  best: number;
}

/**
 * The fp32 2048² product's best GFLOP/s through onnxruntime, numpy and PyTorch, in this run
 * (bench/matmul_peak.py in each installed Python: pip's and Debian's, the faster kept per library).
 */
export async function matmulPeaks(threads: number): Promise<MatmulPeaks> {
  const peaks: MatmulPeaks = { onnxruntime: await matmulPeak(threads), best: 0 };
  for (const { python, env } of benchPythons()) {
    if (!python) continue;
    const r = spawnSync(python, [join(REPO, 'bench/matmul_peak.py'), String(threads)], { encoding: 'utf8', env });
    const line = r.stdout?.trim().split('\n').at(-1);
    if (r.status !== 0 || !line?.startsWith('{')) continue;
    const found = JSON.parse(line) as { numpy?: number; torch?: number };
    for (const lib of ['numpy', 'torch'] as const) {
      const value = found[lib];
      if (value !== undefined && value > (peaks[lib] ?? 0)) peaks[lib] = value;
    }
  }
  peaks.best = Math.max(peaks.onnxruntime, peaks.numpy ?? 0, peaks.torch ?? 0);
  return peaks;
}

/** The peaks in one line. */
export function peaksLine(p: MatmulPeaks): string {
  const part = (name: string, v: number | undefined) =>
    v === undefined ? `${name} not installed` : `${name} ${v.toFixed(1)}`;
  return `fp32 matmul peak (2048², best of 7): ${part('onnxruntime', p.onnxruntime)}, ${part('numpy', p.numpy)}, ${part('PyTorch', p.torch)} GFLOP/s; the limit: ${p.best.toFixed(1)}`;
}

/** A Python with torch and transformers for the Hugging Face baselines: PYTHIA_BENCH_PYTHON, else python3. */
export function hfPython(): { python: string | undefined; note: string } {
  const candidates = [process.env.PYTHIA_BENCH_PYTHON, 'python3'].filter((p): p is string => !!p);
  for (const python of candidates) {
    const probe = spawnSync(
      python,
      ['-c', 'import torch, transformers; print(torch.__version__, transformers.__version__)'],
      { encoding: 'utf8' },
    );
    if (probe.status === 0)
      return { python, note: `Hugging Face baseline: ${python} (torch, transformers ${probe.stdout.trim()})` };
  }
  return {
    python: undefined,
    note: 'Hugging Face baseline skipped: no Python with torch and transformers (python3 -m venv venv && venv/bin/pip install torch transformers, then PYTHIA_BENCH_PYTHON=venv/bin/python)',
  };
}

/**
 * One whole optimizer step as `pythia train` runs it (forward, backward, clipping at 1.0, AdamW) on
 * random weights and tokens, through the trainer's own update step: on the CPU, or with the
 * parameters and optimizer state kept in GPU memory under `provider: 'webgpu'`.
 */
export async function wholeTrainingStep(
  config: NeoXConfig,
  batch: number,
  seq: number,
  threads: number,
  provider: ExecutionProvider = 'cpu',
): Promise<() => Promise<void>> {
  const params = randomParams(config);
  const optimizer = new AdamW(PYTHIA_ADAM, params, noWeightDecay(parameterShapes(config)));
  const step = await createUpdateStep({
    config,
    params,
    optimizer,
    micro: batch,
    seq,
    maxNorm: 1.0,
    validation: false,
    runtime: { threads, provider },
  });
  const tokens = Int32Array.from(randomTokens(batch * (seq + 1), config.vocabSize), Number);
  return async () => {
    await step.update([tokens], 1e-4, 'a random batch');
  };
}
