/**
 * onnxruntime's own per-node profile of training steps (forward, backward and the loss; not the
 * optimizer, which runs in JavaScript): every kernel call with its operator type and time. Used by
 * bench:profile for where the time goes and by bench:train for the kernel calls per step.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrainStep } from '../src/model/train-step.js';
import { type BenchShape, configFor, randomParams, randomTokens } from './common.js';

export interface KernelCall {
  /** onnxruntime's operator type, e.g. `Mul`. */
  op: string;
  /** The node's name in the optimised graph. */
  node: string;
  us: number;
}

export interface StepProfile {
  steps: number;
  /** Mean wall milliseconds of a profiled step. */
  wallMs: number;
  calls: KernelCall[];
}

interface TraceEvent {
  cat: string;
  name: string;
  dur: number;
  args?: { op_name?: string };
}

/** Runs `steps` training steps of `shape` with profiling on and returns their kernel calls. */
export async function profileTrainSteps(shape: BenchShape, threads: number, steps: number): Promise<StepProfile> {
  const config = configFor(shape);
  const params = randomParams(config);
  const tokens = Int32Array.from(randomTokens(shape.B * (shape.T + 1), shape.V), Number);
  const dir = mkdtempSync(join(tmpdir(), 'pythia-profile-'));
  try {
    const step = await TrainStep.create(
      config,
      { batch: shape.B, seq: shape.T },
      { threads, profile: join(dir, 'step') },
    );
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await step.run(params, tokens);
    const wallMs = (performance.now() - t0) / steps;
    step.endProfiling();
    const file = readdirSync(dir).find((f) => f.endsWith('.json'));
    if (!file) throw new Error(`onnxruntime wrote no profile in ${dir}`);
    const events = JSON.parse(readFileSync(join(dir, file), 'utf8')) as TraceEvent[];
    const calls = events
      .filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'))
      .map((e) => ({ op: e.args?.op_name ?? '?', node: e.name.replace(/_kernel_time$/, ''), us: e.dur }));
    return { steps, wallMs, calls };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Kernel calls in one training step of `shape` (the same every step: the graph runs whole). */
export async function kernelCallsPerStep(shape: BenchShape, threads: number): Promise<number> {
  return (await profileTrainSteps(shape, threads, 1)).calls.length;
}
