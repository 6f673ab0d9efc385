/**
 * Adam with decoupled weight decay, in place on float32 parameters, in two flavours that differ
 * in rounding and operation order:
 *
 *  - 'apex': apex/DeepSpeed FusedAdam, ADAM_MODE_1 (what GPT-NeoX v1.0 trained Pythia with), all in
 *    float32, step t counted from 1:
 *        m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²
 *        update = (m/(1-β1^t)) / (sqrt(v/(1-β2^t)) + eps) + wd·p;  p = p - lr·update
 *  - 'torch': torch.optim.AdamW (single-tensor path, the CPU default), which decays first and folds
 *    the bias corrections into a step size and a denominator, the scalars in float64:
 *        p = p·(1 - lr·wd);  m = lerp(m, g, 1-β1);  v = β2·v + (1-β2)·g²
 *        p = p - (lr/(1-β1^t))·m / (sqrt(v)/sqrt(1-β2^t) + eps)
 *
 * The apex update runs as SIMD WebAssembly (src/train/kernels.wat), bit for bit the float32
 * formula above.
 *
 * Weight decay applies to every parameter except those named in `noWeightDecay`: biases and
 * LayerNorm parameters (GPT-NeoX `get_params_for_weight_decay_optimization`), as their
 * specs say (`weightDecay` in src/model/config.ts).
 */
import type { ParameterSpec } from '../model/config.js';
import { ConfigError } from '../util/errors.js';
import { adamApex } from './kernels.js';

const f32 = Math.fround;

export const ADAM_FLAVOURS = ['apex', 'torch'] as const;
export type AdamFlavour = (typeof ADAM_FLAVOURS)[number];

export interface AdamWOptions {
  betas: [number, number];
  eps: number;
  weightDecay: number;
  flavour: AdamFlavour;
}

export const PYTHIA_ADAM: AdamWOptions = { betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1, flavour: 'apex' };

/** The names of the parameters AdamW leaves undecayed (GPT-NeoX's `no_weight_decay_params` group). */
export function noWeightDecay(specs: readonly Pick<ParameterSpec, 'name' | 'weightDecay'>[]): Set<string> {
  return new Set(specs.filter((p) => !p.weightDecay).map((p) => p.name));
}

export interface AdamWState {
  /** Number of updates taken so far (the next update is step + 1). */
  step: number;
  /** First and second moments by parameter name. */
  expAvg: Map<string, Float32Array>;
  expAvgSq: Map<string, Float32Array>;
}

export class AdamW {
  readonly state: AdamWState;

  constructor(
    readonly options: AdamWOptions,
    params: Map<string, Float32Array>,
    /** Parameters without weight decay: `noWeightDecay(parameterShapes(config))`. */
    readonly undecayed: ReadonlySet<string>,
    state?: AdamWState,
  ) {
    const [b1, b2] = options.betas;
    if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1))
      throw new ConfigError(`betas: expected two numbers in [0, 1), got [${b1}, ${b2}]`);
    if (!(options.eps > 0)) throw new ConfigError(`eps: expected a positive number, got ${options.eps}`);
    if (!(options.weightDecay >= 0))
      throw new ConfigError(`weight-decay: expected a number >= 0, got ${options.weightDecay}`);
    if (state) {
      for (const [name, p] of params) {
        if (state.expAvg.get(name)?.length !== p.length || state.expAvgSq.get(name)?.length !== p.length)
          throw new ConfigError(`optimizer state: moments for ${name} are missing or have the wrong size`);
      }
      this.state = state;
    } else {
      const expAvg = new Map<string, Float32Array>();
      const expAvgSq = new Map<string, Float32Array>();
      for (const [name, p] of params) {
        expAvg.set(name, new Float32Array(p.length));
        expAvgSq.set(name, new Float32Array(p.length));
      }
      this.state = { step: 0, expAvg, expAvgSq };
    }
  }

  /** One update of every parameter in `params` with its gradient in `grads`, at learning rate `lr`. */
  step(params: Map<string, Float32Array>, grads: Map<string, Float32Array>, lr: number): void {
    this.state.step += 1;
    for (const [name, p] of params) {
      const g = grads.get(name);
      if (!g || g.length !== p.length) throw new Error(`AdamW: gradient for ${name} is missing or has the wrong size`);
      const wd = this.undecayed.has(name) ? 0 : this.options.weightDecay;
      const m = this.state.expAvg.get(name)!;
      const v = this.state.expAvgSq.get(name)!;
      if (this.options.flavour === 'apex') apexUpdate(p, g, m, v, lr, wd, this.options, this.state.step);
      else torchUpdate(p, g, m, v, lr, wd, this.options, this.state.step);
    }
  }
}

function apexUpdate(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  lr: number,
  wd: number,
  o: AdamWOptions,
  t: number,
): void {
  const b1 = f32(o.betas[0]);
  const b2 = f32(o.betas[1]);
  adamApex(p, g, m, v, {
    b1,
    oneMinusB1: f32(1 - b1),
    b2,
    oneMinusB2: f32(1 - b2),
    bc1: f32(1 - b1 ** t),
    bc2: f32(1 - b2 ** t),
    eps: f32(o.eps),
    decay: f32(wd),
    lr: f32(lr),
  });
}

function torchUpdate(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  lr: number,
  wd: number,
  o: AdamWOptions,
  t: number,
): void {
  const [beta1, beta2] = o.betas;
  const keep = f32(1 - lr * wd);
  const lerpWeight = f32(1 - beta1);
  const b2 = f32(beta2);
  const oneMinusB2 = f32(1 - beta2);
  const negStepSize = f32(-(lr / (1 - beta1 ** t)));
  const bc2Sqrt = f32(Math.sqrt(1 - beta2 ** t));
  const eps = f32(o.eps);
  for (let i = 0; i < p.length; i++) {
    const gi = g[i]!;
    const pi = wd !== 0 ? f32(p[i]! * keep) : p[i]!;
    // lerp with a small weight, m + w·(g - m), rounded once as torch's vectorised fmadd does.
    const mi = f32(m[i]! + lerpWeight * f32(gi - m[i]!));
    const vi = f32(f32(v[i]! * b2) + f32(f32(oneMinusB2 * gi) * gi));
    m[i] = mi;
    v[i] = vi;
    const denom = f32(f32(f32(Math.sqrt(vi)) / bc2Sqrt) + eps);
    p[i] = pi + f32(f32(negStepSize * mi) / denom);
  }
}
