/**
 * `npm run bench:scaling`: how cost grows with size. Tokens/s and peak RSS of a whole training step
 * (forward, backward, clipping, AdamW) at the pythia-70m, 160m and 410m shapes, and of the forward
 * alone up to 1b (seq 512, batch 4, random weights), each in a fresh process so that the peak RSS is
 * that shape's; beside the faster installed PyTorch (bench/torch_train.py) on the same shapes.
 * Writes bench/results/scaling.json and docs/img/scaling.svg; `-- 70m 160m` runs only those sizes, `-- forward` only that mode, `-- 70m forward` both limits, keeping the other recorded rows;
 * `-- --chart` redraws the chart from the JSON.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countParameters } from '../src/model/config.js';
import { pythiaPreset } from '../src/model/presets.js';
import { Scorer } from '../src/model/score.js';
import { DASH_LEGEND } from '../src/report/charts.js';
import { renderSvg, toVega } from '../src/report/render.js';
import {
  benchSetupThreads,
  fastest,
  flopsPerToken,
  matmulPeak,
  REPO,
  randomParams,
  randomTokens,
  runTorch,
  type TorchBaseline,
  table,
  torchBaselines,
  wholeTrainingStep,
} from './common.js';

const T = 512;
const B = 4;
type Mode = 'train' | 'forward';
/** Timed steps after one warm-up: a 410m training step takes tens of seconds on 2 cores. */
const PLAN: { size: string; mode: Mode; steps: number }[] = [
  { size: '70m', mode: 'train', steps: 3 },
  { size: '160m', mode: 'train', steps: 2 },
  { size: '410m', mode: 'train', steps: 2 },
  { size: '70m', mode: 'forward', steps: 3 },
  { size: '160m', mode: 'forward', steps: 2 },
  { size: '410m', mode: 'forward', steps: 2 },
  { size: '1b', mode: 'forward', steps: 1 },
];

interface Row {
  size: string;
  mode: Mode;
  params: number;
  tok_s: number;
  gflops: number;
  rss_gib: number;
  /** The faster PyTorch baseline at this shape. */
  torch?: TorchFigures;
  /** Every installed baseline's figures. */
  torch_all: TorchFigures[];
  /** /proc/loadavg (1, 5, 15 minutes) just before this row's runs. */
  load: string;
}

interface TorchFigures {
  baseline: string;
  tok_s: number;
  rss_gib: number;
}

const RESULTS = join(REPO, 'bench/results/scaling.json');
const CHART = join(REPO, 'docs/img/scaling.svg');
const GIB_PER_KIB = 1 / 1024 ** 2;

function configOf(size: string) {
  return { ...pythiaPreset(size)!, dtype: 'float32' as const };
}

/** In the child: seconds per step (mean of `steps` after one warm-up) and the process's peak RSS. */
async function measure(
  size: string,
  mode: Mode,
  steps: number,
  threads: number,
): Promise<{ seconds: number; maxrss_kib: number }> {
  const config = configOf(size);
  let step: () => Promise<unknown>;
  if (mode === 'train') {
    step = await wholeTrainingStep(config, B, T, threads);
  } else {
    const scorer = await Scorer.create(config, randomParams(config), { threads });
    const tokens = randomTokens(B * (T + 1), config.vocabSize);
    const requests = Array.from({ length: B }, (_, b) => {
      const row = Array.from(tokens.subarray(b * (T + 1), (b + 1) * (T + 1)), Number);
      return { context: row.slice(0, 1), continuation: row.slice(1) };
    });
    step = () => scorer.score(requests, B);
  }
  await step();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await step();
  return { seconds: (performance.now() - t0) / 1000 / steps, maxrss_kib: process.resourceUsage().maxRSS };
}

/** Ours at one shape in a fresh node process. */
function ours(
  size: string,
  mode: Mode,
  steps: number,
  threads: number,
): { seconds: number; maxrss_kib: number } | undefined {
  const r = spawnSync(
    process.execPath,
    [fileURLToPath(import.meta.url), '--child', size, mode, String(steps), String(threads)],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) {
    console.log(`pythia-ts failed at ${size} ${mode}: ${r.stderr.trim().split('\n').at(-1) ?? `signal ${r.signal}`}`);
    return undefined;
  }
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { seconds: number; maxrss_kib: number };
}

function chart(rows: readonly Row[]): Record<string, unknown> {
  const measures = ['seconds per token', 'peak RSS (GiB)'];
  const values = rows.flatMap((r) =>
    [
      { system: 'pythia-ts', tok_s: r.tok_s, rss_gib: r.rss_gib },
      ...(r.torch ? [{ system: 'PyTorch', ...r.torch }] : []),
    ].flatMap(({ system, tok_s, rss_gib }) => [
      {
        size: r.size,
        params: r.params,
        mode: r.mode === 'train' ? 'training step' : 'forward',
        system,
        measure: measures[0],
        value: 1 / tok_s,
      },
      {
        size: r.size,
        params: r.params,
        mode: r.mode === 'train' ? 'training step' : 'forward',
        system,
        measure: measures[1],
        value: rss_gib,
      },
    ]),
  );
  return {
    data: { values },
    facet: {
      column: { field: 'measure', type: 'nominal', sort: measures, title: null, header: { labelFontSize: 13 } },
    },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 330,
      height: 260,
      mark: { type: 'line', point: { filled: false, size: 40 } },
      encoding: {
        x: {
          field: 'params',
          type: 'quantitative',
          scale: { type: 'log', nice: false, padding: 12 },
          title: 'parameters (log scale)',
          axis: { values: [...new Set(rows.map((r) => r.params))], format: '.3s' },
        },
        y: { field: 'value', type: 'quantitative', scale: { type: 'log', nice: false, padding: 12 }, title: null },
        color: { field: 'system', type: 'nominal', title: null, scale: { domain: ['pythia-ts', 'PyTorch'] } },
        strokeDash: {
          field: 'mode',
          type: 'nominal',
          title: null,
          scale: {
            domain: ['training step', 'forward'],
            range: [
              [1, 0],
              [4, 3],
            ],
          },
          legend: DASH_LEGEND,
        },
        tooltip: [
          { field: 'size' },
          { field: 'system' },
          { field: 'mode' },
          { field: 'value', type: 'quantitative', format: '.3g' },
        ],
      },
    },
  };
}

async function writeChart(rows: readonly Row[]): Promise<void> {
  const title = `Cost against size: seq ${T}, batch ${B}, float32, 2 CPU threads`;
  writeFileSync(CHART, await renderSvg(toVega(chart(rows), title)));
  console.log(`wrote ${CHART}`);
}

function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

function printTable(rows: readonly Row[], peak: number): void {
  const header = [
    'shape',
    'mode',
    'params',
    'tok/s',
    'GFLOP/s',
    'of peak',
    'RSS GiB',
    'torch tok/s',
    'torch RSS GiB',
    'ratio',
    'torch',
    'load',
  ];
  const cells = rows.map((r) => [
    `pythia-${r.size}`,
    r.mode,
    `${(r.params / 1e6).toFixed(0)}M`,
    r.tok_s.toFixed(r.tok_s < 100 ? 1 : 0),
    r.gflops.toFixed(1),
    `${((100 * r.gflops) / peak).toFixed(0)}%`,
    r.rss_gib.toFixed(2),
    r.torch ? r.torch.tok_s.toFixed(r.torch.tok_s < 100 ? 1 : 0) : '-',
    r.torch ? r.torch.rss_gib.toFixed(2) : '-',
    r.torch ? `${(r.tok_s / r.torch.tok_s).toFixed(2)}×` : '-',
    r.torch?.baseline ?? '-',
    r.load,
  ]);
  console.log(`${table(header, cells)}\n`);
}

/** Sizes and modes a run may be limited to: `-- 70m forward` runs the 70m forward alone. */
const KINDS = [PLAN.map((p) => p.size), ['train', 'forward']];

async function main(args: readonly string[]): Promise<void> {
  const threads = benchSetupThreads('bench:scaling');
  // The peak is measured before every shape and at the end, and the best kept: the cores are shared.
  let peak = 0;
  const script = join(REPO, '../shared/bench/torch_gptneox.py');
  const { baselines, notes } = existsSync(script)
    ? torchBaselines()
    : { baselines: [], notes: [`PyTorch columns skipped: ${script} missing`] };
  for (const n of notes) console.log(n);
  // Every installed baseline runs at the first shape of each mode; the faster one then runs the larger shapes
  // (BENCH_ALL_BASELINES=1: every baseline at every shape, which doubles the time).
  const chosen: Record<Mode, TorchBaseline[]> = { train: baselines, forward: baselines };
  const rows: Row[] = [];
  const start = performance.now();
  for (const { size, mode, steps } of PLAN.filter((p) =>
    [p.size, p.mode].every((v, i) => !args.some((a) => KINDS[i]!.includes(a)) || args.includes(v)),
  )) {
    peak = Math.max(peak, await matmulPeak(threads));
    const config = configOf(size);
    const load = loadAverage();
    const run = ours(size, mode, steps, threads);
    if (!run) continue;
    const tokS = (B * T) / run.seconds;
    const shape = { V: config.vocabSize, d: config.hiddenSize, L: config.numLayers, h: config.numHeads, T, B };
    const torchAll = chosen[mode]
      .map((b) => runTorch(b, script, shape, { steps, threads, forwardOnly: mode === 'forward' }))
      .filter((r) => r !== undefined)
      .map((r) => ({
        baseline: r.baseline,
        tok_s: mode === 'train' ? r.train_tok_s! : r.fwd_tok_s,
        rss_gib: r.maxrss_kib * GIB_PER_KIB,
      }));
    console.log(
      torchAll
        .map((r) => `  ${size} ${mode}, ${r.baseline}: ${r.tok_s.toFixed(1)} tok/s, ${r.rss_gib.toFixed(2)} GiB`)
        .join('\n'),
    );
    const torch = torchAll.length > 0 ? fastest(torchAll, (r) => r.tok_s) : undefined;
    if (torch && !process.env.BENCH_ALL_BASELINES) chosen[mode] = baselines.filter((b) => b.name === torch.baseline);
    rows.push({
      size,
      mode,
      params: countParameters(config).total,
      tok_s: tokS,
      gflops: (tokS * flopsPerToken(config, T, mode)) / 1e9,
      rss_gib: run.maxrss_kib * GIB_PER_KIB,
      ...(torch ? { torch } : {}),
      torch_all: torchAll,
      load,
    });
    printTable(rows, peak);
    console.log(
      `matmul peak so far ${peak.toFixed(1)} GFLOP/s; ${((performance.now() - start) / 60_000).toFixed(1)} min so far\n`,
    );
  }
  peak = Math.max(peak, await matmulPeak(threads));
  console.log(
    `fp32 matmul peak (2048², onnxruntime, best of one measurement before each shape and one at the end): ${peak.toFixed(1)} GFLOP/s`,
  );
  printTable(rows, peak);
  mkdirSync(join(REPO, 'bench/results'), { recursive: true });
  // A partial run keeps the recorded rows it did not measure.
  const recorded =
    args.length > 0 && existsSync(RESULTS)
      ? (JSON.parse(readFileSync(RESULTS, 'utf8')) as { rows: Row[]; matmul_peak_gflops: number })
      : undefined;
  const earlier = recorded?.rows ?? [];
  peak = Math.max(peak, recorded?.matmul_peak_gflops ?? 0);
  const kept = earlier.filter((e) => !rows.some((r) => r.size === e.size && r.mode === e.mode));
  const all = [...rows, ...kept].sort(
    (a, b) =>
      PLAN.findIndex((p) => p.size === a.size && p.mode === a.mode) -
      PLAN.findIndex((p) => p.size === b.size && p.mode === b.mode),
  );
  const record = {
    date: new Date().toISOString(),
    threads,
    seq: T,
    batch: B,
    matmul_peak_gflops: peak,
    rows: all.map((r) => ({ ...r, peak_fraction: r.gflops / peak })),
  };
  writeFileSync(RESULTS, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`wrote ${RESULTS}`);
  await writeChart(all);
}

const [flag, size, mode, steps, threads] = process.argv.slice(2);
if (flag === '--child') console.log(JSON.stringify(await measure(size!, mode as Mode, Number(steps), Number(threads))));
else if (flag === '--chart') await writeChart((JSON.parse(readFileSync(RESULTS, 'utf8')) as { rows: Row[] }).rows);
else await main(process.argv.slice(2));
