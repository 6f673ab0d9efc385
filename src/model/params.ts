/** Model parameters: float32 arrays keyed by Hugging Face state-dict name. */
import type { Graph, Tensor } from '../graph/graph.js';
import { type DeviceTensor, type ExecutionProvider, type HostTensor, upload } from '../runtime/session.js';
import { ConfigError } from '../util/errors.js';
import { headDim, type NeoXConfig, parameterShapes } from './config.js';
import type { WeightLookup } from './gpt-neox.js';

export type Params = Map<string, Float32Array>;

/** Declares every parameter as a graph input named after it. */
export function parameterInputs(
  graph: Graph,
  config: NeoXConfig,
): { lookup: WeightLookup; tensors: Map<string, Tensor> } {
  const tensors = new Map<string, Tensor>();
  for (const { name, shape } of parameterShapes(config)) tensors.set(name, graph.input(name, 'float32', shape));
  const lookup: WeightLookup = (name) => {
    const t = tensors.get(name);
    if (!t) throw new ConfigError(`no parameter ${name} in this configuration`);
    return t;
  };
  return { lookup, tensors };
}

/** Feeds for the parameter inputs (zero-copy views of the arrays). */
export function parameterFeeds(config: NeoXConfig, params: Params): Record<string, HostTensor> {
  const feeds: Record<string, HostTensor> = {};
  for (const { name, shape } of parameterShapes(config)) feeds[name] = { data: params.get(name)!, dims: shape };
  return feeds;
}

/**
 * The parameter feeds for `provider`: on WebGPU uploaded once into GPU memory (free them with
 * `releaseFeeds`), so that a run does not send every weight to the card again; elsewhere views of
 * the host arrays.
 */
export async function residentParameterFeeds(
  config: NeoXConfig,
  params: Params,
  provider: ExecutionProvider | undefined,
): Promise<Record<string, HostTensor | DeviceTensor>> {
  const feeds = parameterFeeds(config, params);
  if (provider !== 'webgpu') return feeds;
  const names = Object.keys(feeds);
  const tensors = await upload(names.map((n) => feeds[n]!));
  return Object.fromEntries(names.map((n, i) => [n, tensors[i]!]));
}

/** Frees the device copies among `feeds`. */
export function releaseFeeds(feeds: Record<string, HostTensor | DeviceTensor>): void {
  for (const f of Object.values(feeds)) if ('dispose' in f) f.dispose();
}

/**
 * Declares every parameter as a constant of the graph: onnxruntime then pre-packs the weights once,
 * which pays for itself when one set of weights runs many times (generation: up to 1.7× per token
 * at the pythia-70m shape), at the cost of a session per set of weights.
 */
export function parameterConstants(graph: Graph, config: NeoXConfig, params: Params): WeightLookup {
  const tensors = new Map<string, Tensor>();
  for (const { name, shape } of parameterShapes(config))
    tensors.set(name, graph.initializer(name, params.get(name)!, shape));
  return (name) => {
    const t = tensors.get(name);
    if (!t) throw new ConfigError(`no parameter ${name} in this configuration`);
    return t;
  };
}

/**
 * `params` with every query_key_value weight and bias regrouped from HF's per-head rows
 * [heads, 3, head_dim] to [3, heads, head_dim], so q, k and v are three contiguous blocks: the
 * layout the fused attention path reads. The other arrays are shared, not copied.
 */
export function groupQkvRows(config: NeoXConfig, params: Params): Params {
  const nh = config.numHeads;
  const hd = headDim(config);
  const grouped: Params = new Map(params);
  for (const { name, shape, qkvPerHead } of parameterShapes(config)) {
    if (!qkvPerHead) continue;
    const src = params.get(name)!;
    const rowLength = shape.length === 2 ? shape[1]! : 1;
    const dst = new Float32Array(src.length);
    for (let h = 0; h < nh; h++) {
      for (let part = 0; part < 3; part++) {
        const from = (h * 3 + part) * hd * rowLength;
        dst.set(src.subarray(from, from + hd * rowLength), (part * nh + h) * hd * rowLength);
      }
    }
    grouped.set(name, dst);
  }
  return grouped;
}
