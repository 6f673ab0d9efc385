/**
 * One optimizer update of the training loop: the gradients of a batch's micro-batches, their mean,
 * global-norm clipping and AdamW. On the CPU the parameters, gradients and moments are host arrays
 * (the optimizer as SIMD WebAssembly); with WebGPU they stay in GPU memory from step to step
 * (src/train/device-adamw.ts) and come back to the host only for a checkpoint (`toHost`).
 *
 * On the CPU, a model of up to RESIDENT_PARAMETERS parameters has its parameters, moments and a
 * copy of its gradients moved into the optimizer kernels' own memory (`residentArrays`), where
 * clipping and AdamW update them in place: the entries of `params` and of the optimizer's moments
 * are replaced by arrays of the same values there. Larger models keep their arrays, which the
 * kernels copy through in blocks (at 1.85 million parameters the copies were 10 of AdamW's 12.7 ms).
 */
import type { NeoXConfig } from '../model/config.js';
import { parameterShapes } from '../model/config.js';
import type { Params } from '../model/params.js';
import { TrainStep } from '../model/train-step.js';
import type { DeviceTensor, RuntimeOptions } from '../runtime/session.js';
import type { AdamW } from './adamw.js';
import { DeviceAdamW } from './device-adamw.js';
import { clipGradNorm } from './grad-clip.js';
import { residentArrays, scaleInPlace } from './kernels.js';

/** Models up to this many parameters keep p, g, m and v in the kernels' memory: 256 MiB at most. */
export const RESIDENT_PARAMETERS = 1 << 24;

export interface UpdateStep {
  /** Trains on `microBatches` (each [micro, seq + 1] tokens) at `lr`: the mean loss and the gradient norm before clipping. */
  update(microBatches: readonly Int32Array[], lr: number, source: string): Promise<{ loss: number; gradNorm: number }>;
  /** The loss alone of one micro-batch (validation). */
  loss(tokens: Int32Array, source: string): Promise<number>;
  /** Brings the parameters and the optimizer's moments into the host arrays the step started from. */
  toHost(): Promise<void>;
  /** Frees what the step holds on a device. */
  dispose(): void;
}

export interface UpdateStepOptions {
  config: NeoXConfig;
  params: Params;
  optimizer: AdamW;
  micro: number;
  seq: number;
  /** Global-norm clipping threshold (<= 0: none). */
  maxNorm: number;
  /** Also compile the loss-only step for validation. */
  validation: boolean;
  runtime: RuntimeOptions;
}

export async function createUpdateStep(o: UpdateStepOptions): Promise<UpdateStep> {
  const shape = { batch: o.micro, seq: o.seq };
  const evalStep = o.validation
    ? await TrainStep.create(o.config, { ...shape, gradients: false }, o.runtime)
    : undefined;
  if (o.runtime.provider === 'webgpu') {
    const step = await TrainStep.create(o.config, { ...shape, gradientsOnDevice: true }, o.runtime);
    const optimizer = await DeviceAdamW.create(
      o.optimizer.options,
      parameterShapes(o.config),
      o.optimizer.undecayed,
      o.params,
      o.optimizer.state,
    );
    return new DeviceUpdate(step, evalStep, optimizer, o.params, o.maxNorm);
  }
  const step = await TrainStep.create(o.config, shape, o.runtime);
  const grads = moveResident(
    parameterShapes(o.config).map((p) => p.name),
    o.params,
    o.optimizer,
  );
  return new HostUpdate(step, evalStep, o.optimizer, o.params, o.maxNorm, grads);
}

/**
 * For a model of up to RESIDENT_PARAMETERS parameters: its parameters and moments moved into the
 * kernels' memory (the maps' entries replaced), and arrays there for the gradients, in the order of
 * `names` (the step's own, which the gradient norm adds in: a checkpoint's maps may hold another);
 * else undefined.
 */
function moveResident(
  names: readonly string[],
  params: Params,
  optimizer: AdamW,
): Map<string, Float32Array> | undefined {
  const lengths = names.map((n) => params.get(n)!.length);
  if (lengths.reduce((a, b) => a + b, 0) > RESIDENT_PARAMETERS) return undefined;
  const { expAvg, expAvgSq } = optimizer.state;
  const arrays = residentArrays([...lengths, ...lengths, ...lengths, ...lengths]);
  const grads = new Map<string, Float32Array>();
  names.forEach((name, i) => {
    for (const [k, map] of [params, expAvg, expAvgSq].entries()) {
      const resident = arrays[k * names.length + i]!;
      resident.set(map.get(name)!);
      map.set(name, resident);
    }
    grads.set(name, arrays[3 * names.length + i]!);
  });
  return grads;
}

class HostUpdate implements UpdateStep {
  constructor(
    private readonly step: TrainStep,
    private readonly evalStep: TrainStep | undefined,
    private readonly optimizer: AdamW,
    private readonly params: Params,
    private readonly maxNorm: number,
    /** The gradients' arrays in the kernels' memory (moveResident), if the model's are there. */
    private readonly residentGrads: Map<string, Float32Array> | undefined,
  ) {}

  async update(
    microBatches: readonly Int32Array[],
    lr: number,
    source: string,
  ): Promise<{ loss: number; gradNorm: number }> {
    let loss = 0;
    let grads: Map<string, Float32Array> | undefined;
    for (const tokens of microBatches) {
      const r = await this.step.run(this.params, tokens, source);
      loss += r.loss;
      if (grads) for (const [n, g] of r.grads) addInto(grads.get(n)!, g);
      else if (this.residentGrads) grads = copyInto(this.residentGrads, r.grads);
      else if (microBatches.length === 1) grads = r.grads;
      else grads = new Map([...r.grads].map(([n, g]) => [n, Float32Array.from(g)]));
    }
    loss /= microBatches.length;
    if (microBatches.length > 1) for (const g of grads!.values()) scaleInPlace(g, Math.fround(1 / microBatches.length));
    const gradNorm = clipGradNorm(grads!, this.maxNorm);
    this.optimizer.step(this.params, grads!, lr);
    return { loss, gradNorm };
  }

  loss(tokens: Int32Array, source: string): Promise<number> {
    return this.evalStep!.loss(this.params, tokens, source);
  }

  async toHost(): Promise<void> {}

  dispose(): void {}
}

class DeviceUpdate implements UpdateStep {
  constructor(
    private readonly step: TrainStep,
    private readonly evalStep: TrainStep | undefined,
    private readonly optimizer: DeviceAdamW,
    private readonly params: Params,
    private readonly maxNorm: number,
  ) {}

  async update(
    microBatches: readonly Int32Array[],
    lr: number,
    source: string,
  ): Promise<{ loss: number; gradNorm: number }> {
    let loss = 0;
    let grads: Map<string, DeviceTensor> | undefined;
    for (const tokens of microBatches) {
      const r = await this.step.runOnDevice(this.optimizer.params, tokens, source);
      loss += r.loss;
      if (!grads) {
        grads = r.grads;
      } else {
        const sum = await this.optimizer.accumulate(grads, r.grads);
        for (const t of [...grads.values(), ...r.grads.values()]) t.dispose();
        grads = sum;
      }
    }
    loss /= microBatches.length;
    const gradNorm = await this.optimizer.step(grads!, lr, microBatches.length, this.maxNorm);
    for (const t of grads!.values()) t.dispose();
    return { loss, gradNorm };
  }

  loss(tokens: Int32Array, source: string): Promise<number> {
    return this.evalStep!.loss(this.optimizer.params, tokens, source);
  }

  toHost(): Promise<void> {
    return this.optimizer.toHost(this.params);
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}

function copyInto(target: Map<string, Float32Array>, source: Map<string, Float32Array>): Map<string, Float32Array> {
  for (const [n, g] of source) target.get(n)!.set(g);
  return target;
}

function addInto(acc: Float32Array, g: Float32Array): void {
  for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! + g[i]!;
}
