/**
 * One optimizer update of the training loop: the gradients of a batch's micro-batches, their mean,
 * global-norm clipping and AdamW. On the CPU the parameters, gradients and moments are host arrays
 * (the optimizer as SIMD WebAssembly); with WebGPU they stay in GPU memory from step to step
 * (src/train/device-adamw.ts) and come back to the host only for a checkpoint (`toHost`).
 */
import type { NeoXConfig } from '../model/config.js';
import { parameterShapes } from '../model/config.js';
import type { Params } from '../model/params.js';
import { TrainStep } from '../model/train-step.js';
import type { DeviceTensor, RuntimeOptions } from '../runtime/session.js';
import type { AdamW } from './adamw.js';
import { DeviceAdamW } from './device-adamw.js';
import { clipGradNorm } from './grad-clip.js';
import { scaleInPlace } from './kernels.js';

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
  return new HostUpdate(await TrainStep.create(o.config, shape, o.runtime), evalStep, o.optimizer, o.params, o.maxNorm);
}

class HostUpdate implements UpdateStep {
  constructor(
    private readonly step: TrainStep,
    private readonly evalStep: TrainStep | undefined,
    private readonly optimizer: AdamW,
    private readonly params: Params,
    private readonly maxNorm: number,
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
      if (microBatches.length === 1) grads = r.grads;
      else if (!grads) grads = new Map([...r.grads].map(([n, g]) => [n, Float32Array.from(g)]));
      else for (const [n, g] of r.grads) addInto(grads.get(n)!, g);
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

function addInto(acc: Float32Array, g: Float32Array): void {
  for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! + g[i]!;
}
