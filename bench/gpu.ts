/**
 * `npm run bench:gpu -- [size ...] [--steps N]`: a whole training step on a GPU through
 * onnxruntime's WebGPU provider (parameters, gradients and AdamW state kept in GPU memory, as
 * `pythia train --device webgpu` runs), beside PyTorch CUDA fp32 on the same card
 * (bench/torch_cuda.py, TF32 off). Sizes are Pythia's (default 160m), at seq 512 and batch 4, or
 * the small shapes of bench/common.ts (`d=64/L=2`, ...) for a quick check.
 * The limit printed beside each side is its own fp32 matmul peak, measured in the same run: square
 * products of up to 4096² through WebGPU, and 4096² through cuBLAS.
 *
 * Without a Vulkan device (or without CUDA) that side prints one line and is left out. On Mesa's
 * software Vulkan device the WebGPU figures are the CPU's, through a GPU driver's interface.
 * PYTHIA_SHARED names the folder holding bench/torch_gptneox.py (default ../shared).
 * scripts/device-bundle.sh packs this benchmark for a GPU machine without Node.js or a network.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Graph } from '../src/graph/graph.js';
import * as op from '../src/graph/ops.js';
import type { NeoXConfig } from '../src/model/config.js';
import { pythiaPreset } from '../src/model/presets.js';
import { compile, upload } from '../src/runtime/session.js';
import { Prng } from '../src/util/prng.js';
import { configFor, flopsPerToken, REPO, SHAPES, table, wholeTrainingStep } from './common.js';

/** A Pythia size at seq 512, batch 4, or one of the side-by-side shapes of bench/common.ts (quick checks). */
function shapeOf(name: string): { config: NeoXConfig; T: number; B: number } {
  const small = SHAPES.find((s) => s.label === name);
  if (small) return { config: configFor(small), T: small.T, B: small.B };
  const preset = pythiaPreset(name);
  if (!preset)
    throw new Error(
      `bench:gpu: unknown size ${name} (a Pythia size, or one of ${SHAPES.map((s) => s.label).join(', ')})`,
    );
  return { config: { ...preset, dtype: 'float32' }, T: 512, B: 4 };
}

/**
 * WebGPU fp32 matmul GFLOP/s: chains of 10 products of device-resident operands, each chain ended by
 * reading back one value, best of 3. The size doubles from 1024 to at most 4096 while a product
 * takes under 20 ms (a software Vulkan device stays small).
 */
async function webgpuMatmulPeak(): Promise<{ gflops: number; n: number }> {
  let n = 1024;
  for (;;) {
    const seconds = await chainSeconds(n, 1);
    if (n >= 4096 || seconds > 0.02) break;
    n *= 2;
  }
  let best = Infinity;
  for (let round = 0; round < 3; round++) best = Math.min(best, await chainSeconds(n, 10));
  return { gflops: (2 * n ** 3) / best / 1e9, n };
}

/** Seconds per product of a chain of `runs` n×n products on the device. */
async function chainSeconds(n: number, runs: number): Promise<number> {
  const g = new Graph();
  const a = g.input('a', 'float32', [n, n]);
  const chained = await compile(
    { graph: g, outputs: { y: op.matmul(a, a) } },
    { provider: 'webgpu', deviceOutputs: ['y'] },
  );
  const sync = new Graph();
  const y = sync.input('y', 'float32', [n, n]);
  const corner = await compile(
    { graph: sync, outputs: { s: op.sum(op.slice(op.slice(y, 0, 0, 1), 1, 0, 1)) } },
    { provider: 'webgpu' },
  );
  const rng = new Prng(3);
  const [x] = await upload([
    { data: Float32Array.from({ length: n * n }, () => (rng.float() - 0.5) / n), dims: [n, n] },
  ]);
  await corner.run({ y: x! });
  const t0 = performance.now();
  let current = x!;
  for (let i = 0; i < runs; i++) {
    const { device } = await chained.runOnDevice({ a: current });
    if (current !== x) current.dispose();
    current = device.y!;
  }
  await corner.run({ y: current });
  const seconds = (performance.now() - t0) / 1000 / runs;
  current.dispose();
  x!.dispose();
  return seconds;
}

/** In the child: the WebGPU peak and seconds per whole training step (mean of `steps` after two). */
async function measure(size: string, steps: number): Promise<{ peak: number; peakSize: number; seconds: number }> {
  const { gflops: peak, n: peakSize } = await webgpuMatmulPeak();
  const { config, T, B } = shapeOf(size);
  const step = await wholeTrainingStep(config, B, T, 1, 'webgpu');
  await step();
  await step();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await step();
  return { peak, peakSize, seconds: (performance.now() - t0) / 1000 / steps };
}

interface TorchCuda {
  gpu?: string;
  torch?: string;
  matmul_gflops?: number;
  train_tok_s?: number;
  max_allocated_gib?: number;
  error?: string;
}

function torchCuda(size: string, steps: number): TorchCuda {
  const script = join(process.env.PYTHIA_SHARED ?? join(REPO, '../shared'), 'bench/torch_gptneox.py');
  if (!existsSync(script)) return { error: `${script} missing` };
  const python = process.env.PYTHIA_BENCH_PYTHON ?? 'python3';
  const { config: c, T, B } = shapeOf(size);
  const shape = [c.vocabSize, c.hiddenSize, c.numLayers, c.numHeads, T, B].map(String);
  const r = spawnSync(python, [join(REPO, 'bench/torch_cuda.py'), script, ...shape, '--steps', String(steps)], {
    encoding: 'utf8',
  });
  const line = r.stdout
    ?.trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .at(-1);
  if (r.status !== 0 || !line)
    return {
      error: `${python}: ${r.error?.message ?? r.stderr?.trim().split('\n').at(-1) ?? `exit ${r.status}`} (PYTHIA_BENCH_PYTHON names a Python with a CUDA torch)`,
    };
  return JSON.parse(line) as TorchCuda;
}

/** The Vulkan ICD manifests the loader would read: what to look at when WebGPU finds no adapter. */
function vulkanDrivers(): string {
  const dirs = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];
  return dirs.flatMap((d) => (existsSync(d) ? readdirSync(d).map((f) => join(d, f)) : [])).join(', ');
}

const args = process.argv.slice(2);
if (args[0] === '--child') {
  console.log(JSON.stringify(await measure(args[1]!, Number(args[2]))));
} else {
  const stepsAt = args.indexOf('--steps');
  const steps = stepsAt >= 0 ? Number(args[stepsAt + 1]) : 10;
  const sizes = args.filter((a, i) => !a.startsWith('--') && i !== stepsAt + 1);
  const rows: (string | number)[][] = [];
  for (const size of sizes.length > 0 ? sizes : ['160m']) {
    const { config, T, B } = shapeOf(size);
    const flops = flopsPerToken(config, T);
    const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', size, String(steps)], {
      encoding: 'utf8',
    });
    const line = child.stdout?.trim().split('\n').at(-1);
    let ours: { peak: number; peakSize: number; seconds: number } | undefined;
    if (child.status === 0 && line) {
      ours = JSON.parse(line) as { peak: number; peakSize: number; seconds: number };
      console.log(`WebGPU at ${size}: matmul peak measured on ${ours.peakSize}² products`);
    } else {
      console.log(`pythia-ts (webgpu) at ${size}: ${child.stderr?.trim().split('\n').at(-1)}`);
      console.log(`Vulkan drivers (ICD files) found: ${vulkanDrivers() || 'none'}`);
    }
    const torch = torchCuda(size, steps);
    if (torch.error) console.log(`PyTorch CUDA at ${size}: ${torch.error}`);
    else console.log(`PyTorch ${torch.torch} on ${torch.gpu}`);
    const oursTokS = ours ? (B * T) / ours.seconds : undefined;
    const pct = (gflops: number, peak: number) => `${((100 * gflops) / peak).toFixed(0)}%`;
    rows.push([
      size,
      ours ? Math.round(oursTokS!) : '-',
      ours ? ((oursTokS! * flops) / 1e9).toFixed(0) : '-',
      ours ? ours.peak.toFixed(0) : '-',
      ours ? pct((oursTokS! * flops) / 1e9, ours.peak) : '-',
      torch.train_tok_s ? Math.round(torch.train_tok_s) : '-',
      torch.train_tok_s ? ((torch.train_tok_s * flops) / 1e9).toFixed(0) : '-',
      torch.matmul_gflops ? torch.matmul_gflops.toFixed(0) : '-',
      torch.train_tok_s && torch.matmul_gflops ? pct((torch.train_tok_s * flops) / 1e9, torch.matmul_gflops) : '-',
      torch.max_allocated_gib ? torch.max_allocated_gib.toFixed(2) : '-',
      ours && torch.train_tok_s ? `${(oursTokS! / torch.train_tok_s).toFixed(2)}×` : '-',
    ]);
  }
  const header = [
    'shape',
    'tok/s',
    'GFLOP/s',
    'WebGPU peak',
    'of peak',
    'torch tok/s',
    'GFLOP/s',
    'cuBLAS peak',
    'of peak',
    'torch GiB',
    'ratio',
  ];
  console.log(
    `\ntraining step, float32, Pythia sizes at seq 512 and batch 4 (${steps} steps after 2)\n${table(header, rows)}`,
  );
}
