/**
 * `npm run bench:train`: training tokens/s, model FLOP/s as a fraction of the fp32 matmul peak,
 * and peak RSS of a whole optimizer step (forward, backward, global-norm clipping, AdamW) at the
 * side-by-side shapes, beside the faster installed PyTorch (../shared/bench/torch_gptneox.py through
 * bench/torch_train.py, pip's and Debian's). Each of our shapes runs in a fresh process so that its
 * peak RSS is its own.
 *
 * Model FLOPs per token: 6 × (parameters except the input embedding) for the matrix products of
 * forward and backward, plus 12 × L × T × d for attention scores and values (the PaLM count), the
 * same count for both sides. The kernel calls per step are onnxruntime's own count, from one
 * profiled step of the same graph (bench/kernels.ts) after the timed ones.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  benchSetup,
  configFor,
  flopsPerToken,
  matmulPeaks,
  median,
  peaksLine,
  SHAPES,
  table,
  wholeTrainingStep,
} from './common.js';
import { kernelCallsPerStep } from './kernels.js';

const GIB = 1024 ** 3;

interface ChildResult {
  seconds: number;
  rss: number;
  kernelCalls: number;
}

/**
 * In the child: the median seconds of `runs` steps after one warm-up, the peak RSS in bytes, and the
 * kernel calls of one step.
 */
async function measure(label: string, threads: number, runs: number): Promise<ChildResult> {
  const shape = SHAPES.find((s) => s.label === label)!;
  const step = await wholeTrainingStep(configFor(shape), shape.B, shape.T, threads);
  const times: number[] = [];
  for (let i = 0; i <= runs; i++) {
    const t0 = performance.now();
    await step();
    if (i > 0) times.push((performance.now() - t0) / 1000);
  }
  const rss = process.resourceUsage().maxRSS * 1024;
  return { seconds: median(times), rss, kernelCalls: await kernelCallsPerStep(shape, threads) };
}

const [flag, childLabel, childThreads, childRuns] = process.argv.slice(2);
if (flag === '--child') {
  console.log(JSON.stringify(await measure(childLabel!, Number(childThreads), Number(childRuns))));
} else {
  const { threads, torch } = benchSetup('bench:train');
  const peaks = await matmulPeaks(threads);
  const peak = peaks.best;
  console.log(`${peaksLine(peaks)}\n`);
  const header = [
    'shape',
    'tok/s',
    'kernels',
    'GFLOP/s',
    'of peak',
    'RSS GiB',
    'torch tok/s',
    'of peak',
    'torch RSS GiB',
    'ratio',
    'torch',
  ];
  const rows: (string | number)[][] = [];
  for (const shape of SHAPES) {
    const runs = shape.label === 'pythia-70m' ? 5 : 9;
    const child = spawnSync(
      process.execPath,
      [fileURLToPath(import.meta.url), '--child', shape.label, String(threads), String(runs)],
      { encoding: 'utf8' },
    );
    if (child.status !== 0) {
      console.log(`${shape.label} failed: ${child.stderr.trim().split('\n').at(-1)}`);
      continue;
    }
    const ours = JSON.parse(child.stdout.trim().split('\n').at(-1)!) as ChildResult;
    const tokS = (shape.B * shape.T) / ours.seconds;
    const gflops = (tokS * flopsPerToken(configFor(shape), shape.T)) / 1e9;
    const t = torch.results.find((r) => r.d === shape.d && r.L === shape.L);
    rows.push([
      shape.label,
      Math.round(tokS),
      ours.kernelCalls,
      gflops.toFixed(1),
      `${((100 * gflops) / peak).toFixed(0)}%`,
      (ours.rss / GIB).toFixed(2),
      t ? Math.round(t.train_tok_s) : '-',
      t ? `${((100 * t.train_gflops) / peak).toFixed(0)}%` : '-',
      t ? ((t.maxrss_kib * 1024) / GIB).toFixed(2) : '-',
      t ? `${(tokS / t.train_tok_s).toFixed(2)}×` : '-',
      t?.train_baseline ?? '-',
    ]);
    console.log(`${table(header, rows)}\n`);
  }
}
