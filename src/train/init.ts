/**
 * GPT-NeoX v1.0 weight initialisation for HF-named GPTNeoXForCausalLM parameters
 * (megatron/model/init_functions.py; which layer gets which in megatron/model/transformer.py
 * and gpt2_model.py; biases zero in mpu/layers.py), following each parameter's `init` rule
 * (src/model/config.ts):
 *
 *   input  (init_method)               embed_in, query_key_value, dense_h_to_4h, embed_out
 *   output (output_layer_init_method)  attention.dense, mlp.dense_4h_to_h
 *   zeros                              every bias
 *   ones                               LayerNorm weights
 *
 * with σ = sqrt(2/(5H)) for small_init, 2/(L·sqrt(H)) for wang_init, `std` (0.02) for normal and
 * std/sqrt(2L) for scaled_normal. Values are drawn from our own Prng (prng.ts), one stream in
 * parameter order, so only the distributions match GPT-NeoX, not its exact numbers.
 */
import type { ParameterSpec } from '../model/config.js';
import { Prng } from '../util/prng.js';

export const INIT_METHODS = ['small_init', 'wang_init', 'normal', 'scaled_normal'] as const;
export type InitMethod = (typeof INIT_METHODS)[number];

export interface InitRecipe {
  initMethod: InitMethod;
  outputLayerInitMethod: InitMethod;
  /** GPT-NeoX `init_method_std`, used by normal and scaled_normal. */
  initMethodStd: number;
}

/** Pythia 70m..2.8b. */
export const PYTHIA_INIT: InitRecipe = {
  initMethod: 'small_init',
  outputLayerInitMethod: 'wang_init',
  initMethodStd: 0.02,
};
/** GPT-NeoX's defaults, which Pythia 6.9b and 12b got because their configs set no init keys. */
export const NEOX_DEFAULT_INIT: InitRecipe = {
  initMethod: 'normal',
  outputLayerInitMethod: 'scaled_normal',
  initMethodStd: 0.02,
};

export interface InitDims {
  hiddenSize: number;
  numLayers: number;
}

export function initStd(method: InitMethod, dims: InitDims, initMethodStd = 0.02): number {
  const { hiddenSize: h, numLayers: l } = dims;
  switch (method) {
    case 'small_init':
      return Math.sqrt(2 / (5 * h));
    case 'wang_init':
      return 2 / (l * Math.sqrt(h));
    case 'normal':
      return initMethodStd;
    case 'scaled_normal':
      return initMethodStd / Math.sqrt(2 * l);
  }
}

/** Fresh parameters in the order given, deterministic in `seed` (or drawn from `rng`). */
export function initParameters(
  specs: readonly Pick<ParameterSpec, 'name' | 'shape' | 'init'>[],
  dims: InitDims,
  recipe: InitRecipe,
  seed: number | Prng,
): Map<string, Float32Array> {
  const rng = typeof seed === 'number' ? new Prng(seed) : seed;
  const inputStd = initStd(recipe.initMethod, dims, recipe.initMethodStd);
  const outputStd = initStd(recipe.outputLayerInitMethod, dims, recipe.initMethodStd);
  const params = new Map<string, Float32Array>();
  for (const { name, shape, init } of specs) {
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (init === 'input') rng.fillNormal(values, inputStd);
    else if (init === 'output') rng.fillNormal(values, outputStd);
    else if (init === 'ones') values.fill(1);
    params.set(name, values);
  }
  return params;
}
