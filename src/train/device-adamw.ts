/**
 * AdamW and global-norm clipping on the WebGPU device: parameters, moments and gradients stay in
 * GPU memory from step to step, and only scalars cross to the host (the learning rate and bias
 * corrections in, the per-tensor sums of squares of the norm out). The formulas and their float32
 * operation order are those of src/train/adamw.ts and src/train/grad-clip.ts, as graphs:
 *
 *  - `sums`: Σ (g·s)² for each gradient, s = 1/(micro-batches), brought to the host, where the norm
 *    and the clipping coefficient are taken in float64 as on the host path;
 *  - `update`: g' = (g·s)·coef, then the apex or torch update of every parameter and its moments;
 *  - `accumulate`: a + g over micro-batches.
 */
import { Graph, type Tensor } from '../graph/graph.js';
import * as op from '../graph/ops.js';
import type { ParameterSpec } from '../model/config.js';
import type { DeviceParams } from '../model/train-step.js';
import {
  type CompiledGraph,
  compile,
  type DeviceTensor,
  download,
  type HostTensor,
  upload,
} from '../runtime/session.js';
import type { AdamWOptions, AdamWState } from './adamw.js';

const f32 = Math.fround;

export class DeviceAdamW {
  private constructor(
    readonly options: AdamWOptions,
    private readonly shapes: readonly ParameterSpec[],
    private readonly state: AdamWState,
    readonly params: DeviceParams,
    private expAvg: Map<string, DeviceTensor>,
    private expAvgSq: Map<string, DeviceTensor>,
    private readonly sums: CompiledGraph,
    private readonly updater: CompiledGraph,
    private readonly accumulator: CompiledGraph,
  ) {}

  /**
   * Uploads `params` and the moments of `state` (which `step` keeps counting) to the device.
   * `undecayed`: the parameters without weight decay.
   */
  static async create(
    options: AdamWOptions,
    shapes: readonly ParameterSpec[],
    undecayed: ReadonlySet<string>,
    params: Map<string, Float32Array>,
    state: AdamWState,
  ): Promise<DeviceAdamW> {
    const host = (arrays: Map<string, Float32Array>): HostTensor[] =>
      shapes.map((s) => ({ data: arrays.get(s.name)!, dims: s.shape }));
    const onDevice = async (arrays: Map<string, Float32Array>): Promise<Map<string, DeviceTensor>> => {
      const tensors = await upload(host(arrays));
      return new Map(shapes.map((s, i) => [s.name, tensors[i]!]));
    };
    return new DeviceAdamW(
      options,
      shapes,
      state,
      await onDevice(params),
      await onDevice(state.expAvg),
      await onDevice(state.expAvgSq),
      await sumsGraph(shapes),
      await updateGraph(options, shapes, undecayed),
      await accumulateGraph(shapes),
    );
  }

  /** a + g for every gradient: the sum over micro-batches. Frees neither. */
  async accumulate(a: Map<string, DeviceTensor>, g: Map<string, DeviceTensor>): Promise<Map<string, DeviceTensor>> {
    const feeds = Object.fromEntries(
      this.shapes.flatMap(({ name }) => [
        [`a.${name}`, a.get(name)!],
        [`g.${name}`, g.get(name)!],
      ]),
    );
    const { device } = await this.accumulator.runOnDevice(feeds);
    return new Map(this.shapes.map(({ name }) => [name, device[`sum.${name}`]!]));
  }

  /**
   * One update from `grads` (summed over `microBatches`, each the mean over its tokens) at learning
   * rate `lr`, clipped to global norm `maxNorm` (<= 0: no clipping). Frees the old parameters and
   * moments; returns the norm of the averaged gradient before clipping.
   */
  async step(grads: Map<string, DeviceTensor>, lr: number, microBatches: number, maxNorm: number): Promise<number> {
    const scale = microBatches === 1 ? 1 : f32(1 / microBatches);
    const gradFeeds = Object.fromEntries(this.shapes.map(({ name }) => [`g.${name}`, grads.get(name)!]));
    const sums = await this.sums.run({ ...gradFeeds, scale: scalarFeed(scale) });
    let sumSq = 0;
    for (const { name } of this.shapes) sumSq += (sums[`sq.${name}`]!.data as Float32Array)[0]!;
    const norm = Math.sqrt(sumSq);
    const coef = maxNorm > 0 ? f32(maxNorm / f32(f32(norm) + f32(1e-6))) : 1;

    this.state.step += 1;
    const feeds: Record<string, HostTensor | DeviceTensor> = {
      ...gradFeeds,
      scale: scalarFeed(scale),
      coef: scalarFeed(Math.min(coef, 1)),
    };
    for (const [name, value] of Object.entries(updateScalars(this.options, lr, this.state.step)))
      feeds[name] = scalarFeed(value);
    for (const { name } of this.shapes) {
      feeds[`p.${name}`] = this.params.get(name)!;
      feeds[`m.${name}`] = this.expAvg.get(name)!;
      feeds[`v.${name}`] = this.expAvgSq.get(name)!;
    }
    const { device } = await this.updater.runOnDevice(feeds);
    for (const { name } of this.shapes) {
      this.params.get(name)!.dispose();
      this.expAvg.get(name)!.dispose();
      this.expAvgSq.get(name)!.dispose();
      this.params.set(name, device[`new_p.${name}`]!);
      this.expAvg.set(name, device[`new_m.${name}`]!);
      this.expAvgSq.set(name, device[`new_v.${name}`]!);
    }
    return norm;
  }

  /** Copies the parameters and moments into the host arrays (`params`, and the state's moments). */
  async toHost(params: Map<string, Float32Array>): Promise<void> {
    for (const [source, target] of [
      [this.params, params],
      [this.expAvg, this.state.expAvg],
      [this.expAvgSq, this.state.expAvgSq],
    ] as const) {
      const host = await download(this.shapes.map(({ name }) => source.get(name)!));
      this.shapes.forEach(({ name }, i) => {
        target.get(name)!.set(host[i]!.data as Float32Array);
      });
    }
  }

  /** Frees the device copies. */
  dispose(): void {
    for (const tensors of [this.params, this.expAvg, this.expAvgSq]) for (const t of tensors.values()) t.dispose();
  }
}

function scalarFeed(value: number): HostTensor {
  return { data: Float32Array.of(value), dims: [] };
}

/** The per-step scalars of each flavour, rounded as src/train/adamw.ts rounds them. */
function updateScalars(o: AdamWOptions, lr: number, t: number): Record<string, number> {
  if (o.flavour === 'apex') {
    const [b1, b2] = [f32(o.betas[0]), f32(o.betas[1])];
    return { lr: f32(lr), bc1: f32(1 - b1 ** t), bc2: f32(1 - b2 ** t) };
  }
  const [beta1, beta2] = o.betas;
  return {
    keep: f32(1 - lr * o.weightDecay),
    neg_step_size: f32(-(lr / (1 - beta1 ** t))),
    bc2_sqrt: f32(Math.sqrt(1 - beta2 ** t)),
  };
}

function gradientInputs(graph: Graph, shapes: readonly ParameterSpec[], prefix: string): Map<string, Tensor> {
  return new Map(shapes.map(({ name, shape }) => [name, graph.input(`${prefix}.${name}`, 'float32', shape)]));
}

async function sumsGraph(shapes: readonly ParameterSpec[]): Promise<CompiledGraph> {
  const graph = new Graph();
  const grads = gradientInputs(graph, shapes, 'g');
  const scale = graph.input('scale', 'float32', []);
  const outputs: Record<string, Tensor> = {};
  for (const [name, g] of grads) {
    const scaled = op.mul(g, scale);
    outputs[`sq.${name}`] = op.sum(op.mul(scaled, scaled));
  }
  return compile({ graph, outputs }, { provider: 'webgpu' });
}

async function accumulateGraph(shapes: readonly ParameterSpec[]): Promise<CompiledGraph> {
  const graph = new Graph();
  const a = gradientInputs(graph, shapes, 'a');
  const g = gradientInputs(graph, shapes, 'g');
  const outputs = Object.fromEntries(shapes.map(({ name }) => [`sum.${name}`, op.add(a.get(name)!, g.get(name)!)]));
  return compile({ graph, outputs }, { provider: 'webgpu', deviceOutputs: Object.keys(outputs) });
}

async function updateGraph(
  o: AdamWOptions,
  shapes: readonly ParameterSpec[],
  undecayed: ReadonlySet<string>,
): Promise<CompiledGraph> {
  const graph = new Graph();
  const scalar = (name: string): Tensor => graph.input(name, 'float32', []);
  const [scale, coef] = [scalar('scale'), scalar('coef')];
  const [b1, b2] = [f32(o.betas[0]), f32(o.betas[1])];
  const outputs: Record<string, Tensor> = {};
  const apex = o.flavour === 'apex' ? { lr: scalar('lr'), bc1: scalar('bc1'), bc2: scalar('bc2') } : undefined;
  const torch =
    o.flavour === 'torch'
      ? { keep: scalar('keep'), negStepSize: scalar('neg_step_size'), bc2Sqrt: scalar('bc2_sqrt') }
      : undefined;
  for (const { name, shape } of shapes) {
    const p = graph.input(`p.${name}`, 'float32', shape);
    const m = graph.input(`m.${name}`, 'float32', shape);
    const v = graph.input(`v.${name}`, 'float32', shape);
    const g = op.mul(op.mul(graph.input(`g.${name}`, 'float32', shape), scale), coef);
    const wd = undecayed.has(name) ? 0 : f32(o.weightDecay);
    let newP: Tensor;
    let newM: Tensor;
    const newV = op.add(op.mul(b2, v), op.mul(op.mul(f32(1 - b2), g), g));
    if (apex) {
      newM = op.add(op.mul(b1, m), op.mul(f32(1 - b1), g));
      const denom = op.add(op.sqrt(op.div(newV, apex.bc2)), f32(o.eps));
      const update = op.div(op.div(newM, apex.bc1), denom);
      newP = op.sub(p, op.mul(apex.lr, wd === 0 ? update : op.add(update, op.mul(wd, p))));
    } else {
      const decayed = wd === 0 ? p : op.mul(p, torch!.keep);
      newM = op.add(m, op.mul(f32(1 - o.betas[0]), op.sub(g, m)));
      const denom = op.add(op.div(op.sqrt(newV), torch!.bc2Sqrt), f32(o.eps));
      newP = op.add(decayed, op.div(op.mul(torch!.negStepSize, newM), denom));
    }
    outputs[`new_p.${name}`] = newP;
    outputs[`new_m.${name}`] = newM;
    outputs[`new_v.${name}`] = newV;
  }
  return compile({ graph, outputs }, { provider: 'webgpu', deviceOutputs: Object.keys(outputs) });
}
