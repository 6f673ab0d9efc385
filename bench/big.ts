/**
 * `npm run bench:big`: scoring checkpoints of the big Pythia shapes on this machine. The bench writes
 * random float16 checkpoints (Hugging Face layout, 2 GiB shards, kept in BENCH_BIG_DIR for the next
 * run) at the 1b, 1.4b, 2.8b and 6.9b shapes, then scores the same ITEMS random items of 128 tokens
 * (the log-likelihood of the last 16, batches of 8) in a fresh process per way of running:
 *
 *   resident     the float32 weights loaded whole (where they fit in memory);
 *   streamed     a layer at a time from the shards, under --max-memory BENCH_BIG_MAX_MEMORY (6GB),
 *                as `pythia eval --max-memory` runs it;
 *   int8         linear weights quantized per output channel as they are read (`--weights int8`);
 *   hf-float32   Hugging Face transformers, float32 (where it fits);
 *   hf-bfloat16  transformers in bfloat16;
 *   hf-offload   transformers in bfloat16 with accelerate's disk offload under the same budget
 *                (where nothing else fits, or when BENCH_BIG_MODES names it).
 *
 * Each row: load and scoring seconds, scoring tokens/s, peak RSS, and the largest difference of an
 * item's log-likelihood from the float32 reference (resident where it ran, else streamed). Beside
 * them, the float32 matmul peaks of onnxruntime and PyTorch measured in the same run, and the
 * issue's three targets. Rows are kept in bench/results/big.json (a rerun replaces a row of the
 * same shape, mode and item count), so the long runs can be made one at a time:
 *
 *   BENCH_BIG_SHAPES=6.9b BENCH_BIG_MODES=streamed BENCH_BIG_ITEMS=1000 npm run bench:big
 *
 * BENCH_BIG_MODES=none only writes the checkpoints (about 24 GiB for the four shapes). A shape
 * `6.9b-2L` is 6.9b's first 2 layers: the same stages and activations as the whole model, so a
 * streamed run holds the same memory, at 1/16 of the compute.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { f32ToF16 } from '../src/formats/float16.js';
import { writeSafetensors } from '../src/formats/index.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { type NeoXConfig, parameterShapes, toHfConfig } from '../src/model/config.js';
import { loadInt8Checkpoint } from '../src/model/int8-load.js';
import { LayerStream } from '../src/model/layer-stream.js';
import {
  float32WeightBytes,
  formatBytes,
  parseMemorySize,
  streamedActivationBytes,
} from '../src/model/memory-budget.js';
import { pythiaPreset } from '../src/model/presets.js';
import { type ScoreRequest, Scorer } from '../src/model/score.js';
import { Prng } from '../src/util/prng.js';
import { hfPython, loadNote, matmulPeak, REPO, randomScoreRequests, table } from './common.js';

const MODES = ['resident', 'streamed', 'int8', 'hf-float32', 'hf-bfloat16', 'hf-offload'] as const;
type Mode = (typeof MODES)[number];

const threads = Number(process.env.BENCH_THREADS ?? 2);
const ITEMS = Number(process.env.BENCH_BIG_ITEMS ?? 32);
const BATCH = 8;
const ROW_TOKENS = 128;
const MAX_MEMORY = parseMemorySize(process.env.BENCH_BIG_MAX_MEMORY ?? '6GB');
const DIR = process.env.BENCH_BIG_DIR ?? join(tmpdir(), 'pythia-bench-big');
const SHARD_BYTES = 2 * 2 ** 30;
const RESULTS = join(REPO, 'bench/results/big.json');
const GiB = 2 ** 30;

interface Measured {
  loadSeconds: number;
  scoreSeconds: number;
  maxRss: number;
  logprobs: number[];
}

interface Row extends Measured {
  shape: string;
  mode: Mode;
  items: number;
  threads: number;
  when: string;
  load: string;
  matmulGflops: number;
  torch?: string;
}

/**
 * A Pythia size's config, or with `-<n>L` its first n layers: every stage the same size as the
 * whole model's (a streamed run holds one at a time) and the same activations, at n/L of the
 * compute, for measuring a streamed run's memory over many items in little time.
 */
function bigConfig(shape: string): NeoXConfig {
  const m = /^(.+?)(?:-(\d+)L)?$/.exec(shape)!;
  const preset = pythiaPreset(m[1]!);
  if (!preset)
    throw new Error(`BENCH_BIG_SHAPES: unknown shape ${shape} (a Pythia size such as 1b, optionally -<layers>L)`);
  return { ...preset, numLayers: m[2] ? Number(m[2]) : preset.numLayers, dtype: 'float16' };
}

/**
 * A random float16 checkpoint of `config` in `dir`, in Hugging Face's sharded layout: LayerNorm
 * weights 1 and biases 0, every other value uniform with standard deviation 0.02. Written into a
 * temporary folder renamed at the end, so a folder with an index is whole.
 */
async function writeRandomCheckpoint(dir: string, config: NeoXConfig): Promise<boolean> {
  if (existsSync(join(dir, 'model.safetensors.index.json'))) return false;
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeFileSync(join(tmp, 'config.json'), JSON.stringify({ ...toHfConfig(config), torch_dtype: 'float16' }, null, 2));
  const shards: { name: string; shape: number[] }[][] = [[]];
  let bytes = 0;
  for (const p of parameterShapes(config)) {
    const size = 2 * p.shape.reduce((a, d) => a * d, 1);
    if (bytes + size > SHARD_BYTES && shards.at(-1)!.length > 0) {
      shards.push([]);
      bytes = 0;
    }
    shards.at(-1)!.push(p);
    bytes += size;
  }
  const rng = new Prng(11);
  const half = 0.02 * Math.sqrt(3);
  const weightMap: Record<string, string> = {};
  for (const [s, shard] of shards.entries()) {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
    const tensors = shard.map(({ name, shape }) => {
      const values = new Float32Array(shape.reduce((a, d) => a * d, 1));
      const norm = /layernorm|layer_norm/.test(name);
      if (norm) values.fill(name.endsWith('weight') ? 1 : 0);
      else for (let i = 0; i < values.length; i++) values[i] = half * (2 * rng.float() - 1);
      weightMap[name] = file;
      return { name, dtype: 'F16' as const, shape, data: f32ToF16(values) };
    });
    await writeSafetensors(join(tmp, file), tensors);
  }
  writeFileSync(join(tmp, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  renameSync(tmp, dir);
  return true;
}

function requestsFor(config: NeoXConfig): ScoreRequest[] {
  return randomScoreRequests(config.vocabSize, ITEMS);
}

/** The child's work: load `dir` as `mode` says, score the requests, print what was measured. */
async function worker(mode: Mode, dir: string, requestsPath: string): Promise<void> {
  const requests = JSON.parse(readFileSync(requestsPath, 'utf8')) as ScoreRequest[];
  const runtime = { threads };
  const t0 = performance.now();
  let scorer: Scorer;
  let stream: LayerStream | undefined;
  if (mode === 'resident') {
    const checkpoint = loadCheckpoint(dir);
    scorer = await Scorer.create(checkpoint.config, checkpoint.params, runtime);
  } else if (mode === 'int8') {
    const checkpoint = loadInt8Checkpoint(dir);
    scorer = await Scorer.create(checkpoint.config, checkpoint.weights, runtime, 'int8');
  } else {
    stream = LayerStream.open(dir);
    scorer = await Scorer.streamed(stream, runtime, streamedActivationBytes(MAX_MEMORY, stream.bufferBytes));
  }
  const loadSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const results = await scorer.score(requests, BATCH);
  const scoreSeconds = (performance.now() - t1) / 1000;
  await stream?.close();
  const measured: Measured = {
    loadSeconds,
    scoreSeconds,
    maxRss: process.resourceUsage().maxRSS * 1024,
    logprobs: results.map((r) => r.logprob),
  };
  console.log(JSON.stringify(measured));
}

function lastJsonLine(stdout: string): unknown {
  return JSON.parse(stdout.trim().split('\n').at(-1)!);
}

function runOurs(mode: Mode, dir: string, requestsPath: string): Measured {
  const r = spawnSync(process.execPath, [process.argv[1]!, '--worker', mode, dir, requestsPath], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 28,
  });
  if (r.status !== 0) throw new Error(`bench:big ${mode} on ${dir} exited with ${r.status ?? r.signal}`);
  return lastJsonLine(r.stdout) as Measured;
}

function runHf(
  python: string,
  mode: Mode,
  dir: string,
  requestsPath: string,
): Measured & { torch: string; matmulGflops: number } {
  const offload = join(DIR, 'hf-offload');
  rmSync(offload, { recursive: true, force: true });
  const args = [join(REPO, 'bench/hf_big.py'), dir, requestsPath, String(threads), String(BATCH), mode.slice(3)];
  // accelerate's budget is for the weights: the same share of the budget that ours gives them.
  if (mode === 'hf-offload') args.push(((MAX_MEMORY * 0.5) / GiB).toFixed(2), offload);
  const r = spawnSync(python, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 28,
    cwd: join(REPO, 'bench'),
  });
  rmSync(offload, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`bench:big ${mode} on ${dir} exited with ${r.status ?? r.signal}`);
  return lastJsonLine(r.stdout) as Measured & { torch: string; matmulGflops: number };
}

/** The ways to run `config` by default: float32 where it fits in 80% of this machine's memory, offload where nothing does. */
function defaultModes(config: NeoXConfig): Mode[] {
  const room = 0.8 * totalmem();
  const float32 = float32WeightBytes(config);
  const modes: Mode[] = [];
  if (float32 < room) modes.push('resident');
  modes.push('streamed', 'int8');
  if (float32 < room) modes.push('hf-float32');
  if (float32 / 2 < room) modes.push('hf-bfloat16');
  else modes.push('hf-offload');
  return modes;
}

function readRows(): Row[] {
  return existsSync(RESULTS) ? (JSON.parse(readFileSync(RESULTS, 'utf8')) as Row[]) : [];
}

function saveRow(row: Row): void {
  const rows = readRows().filter((r) => !(r.shape === row.shape && r.mode === row.mode && r.items === row.items));
  rows.push(row);
  const tmp = `${RESULTS}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(rows, null, 2)}\n`);
  renameSync(tmp, RESULTS);
}

const tokS = (r: Row): number => (r.items * (ROW_TOKENS - 1)) / r.scoreSeconds;

function maxDifference(a: readonly number[], b: readonly number[]): number {
  return Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
}

function report(shapes: readonly string[]): void {
  const rows = readRows().filter((r) => shapes.includes(r.shape));
  const body = rows.map((r) => {
    const same = rows.filter((o) => o.shape === r.shape && o.items === r.items);
    const reference = same.find((o) => o.mode === 'resident') ?? same.find((o) => o.mode === 'streamed');
    const resident = same.find((o) => o.mode === 'resident');
    return [
      r.shape,
      r.mode,
      r.items,
      r.loadSeconds.toFixed(1),
      r.scoreSeconds.toFixed(1),
      tokS(r).toFixed(1),
      (r.maxRss / GiB).toFixed(2),
      reference && reference !== r ? maxDifference(r.logprobs, reference.logprobs).toExponential(1) : '',
      resident ? (tokS(r) / tokS(resident)).toFixed(2) : '',
      r.matmulGflops.toFixed(0),
      r.when,
    ];
  });
  console.log(
    table(
      [
        'shape',
        'mode',
        'items',
        'load s',
        'score s',
        'tok/s',
        'peak RSS GiB',
        'max |Δ logprob|',
        'vs resident',
        'peak GFLOP/s',
        'measured',
      ],
      body,
    ),
  );
  const find = (shape: string, mode: Mode): Row[] => rows.filter((r) => r.shape === shape && r.mode === mode);
  for (const shape of ['6.9b', '6.9b-2L']) {
    const big = find(shape, 'streamed').sort((a, b) => b.items - a.items)[0];
    if (big)
      console.log(
        `target: ${shape} streamed, 1,000 items under 6 GB peak RSS: ${big.items} items, ${(big.maxRss / 1e9).toFixed(2)} GB (${big.maxRss < 6e9 ? 'under' : 'over'})`,
      );
  }
  for (const [shape, mode, target, label] of [
    ['2.8b', 'streamed', 1 / 1.3, 'streamed within 1.3x of resident'],
    ['1b', 'int8', 1.8, 'int8 at least 1.8x float32'],
  ] as const) {
    for (const r of find(shape, mode)) {
      const resident = rows.find((o) => o.shape === shape && o.mode === 'resident' && o.items === r.items);
      if (resident)
        console.log(
          `target: ${shape} ${label}: ${(tokS(r) / tokS(resident)).toFixed(2)}x (${tokS(r) / tokS(resident) >= target ? 'met' : 'not met'})`,
        );
    }
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--worker') return worker(argv[1] as Mode, argv[2]!, argv[3]!);
  const shapes = (process.env.BENCH_BIG_SHAPES ?? '1b,1.4b,2.8b,6.9b').split(',');
  // BENCH_BIG_MODES=none writes the checkpoints and measures nothing.
  const chosen = process.env.BENCH_BIG_MODES?.split(',').filter((m) => m !== 'none') as Mode[] | undefined;
  for (const m of chosen ?? []) if (!MODES.includes(m)) throw new Error(`BENCH_BIG_MODES: unknown mode ${m}`);
  const { python, note } = hfPython();
  console.log(
    `bench:big, ${threads} threads, ${ITEMS} items of ${ROW_TOKENS - 1} tokens, streamed under ${formatBytes(MAX_MEMORY)}; checkpoints in ${DIR}; ${loadNote()}`,
  );
  console.log(note);
  const peak = await matmulPeak(threads);
  console.log(`onnxruntime float32 matmul peak: ${peak.toFixed(1)} GFLOP/s`);
  for (const shape of shapes) {
    const config = bigConfig(shape);
    const dir = join(DIR, shape);
    const t = performance.now();
    if (await writeRandomCheckpoint(dir, config))
      console.log(`wrote ${dir} in ${((performance.now() - t) / 1000).toFixed(0)} s`);
    const requestsPath = join(DIR, `requests-${shape}-${ITEMS}.json`);
    writeFileSync(requestsPath, JSON.stringify(requestsFor(config)));
    for (const mode of chosen ?? defaultModes(config)) {
      if (mode.startsWith('hf-') && !python) continue;
      const when = new Date().toISOString().slice(0, 16);
      const load = loadNote();
      console.log(`${shape} ${mode}: ${ITEMS} items…`);
      const measured = mode.startsWith('hf-')
        ? runHf(python!, mode, dir, requestsPath)
        : { ...runOurs(mode, dir, requestsPath), matmulGflops: peak };
      saveRow({ shape, mode, items: ITEMS, threads, when, load, ...measured });
    }
  }
  console.log(`\nfiles: ${shapes.map((s) => `${s} ${(dirBytes(join(DIR, s)) / GiB).toFixed(1)} GiB`).join(', ')}`);
  report(shapes);
}

function dirBytes(dir: string): number {
  const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8')) as {
    weight_map: Record<string, string>;
  };
  return [...new Set(Object.values(index.weight_map))].reduce((a, f) => a + statSync(join(dir, f)).size, 0);
}

await main();
