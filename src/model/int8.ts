/**
 * int8 weights: every linear layer's weight (the LM head's too) quantized per output channel at
 * load, for onnxruntime's CPU integer product (DynamicQuantizeMatMul, through the quantizedLinear
 * op). The embedding lookup, LayerNorms and biases stay float32. A quarter of float32's memory for
 * the matrices that hold nearly all the parameters; how much it costs in accuracy is measured in
 * docs/performance.md.
 */
import type { Graph, Tensor } from '../graph/graph.js';
import type { DeviceTensor, ExecutionProvider, HostTensor } from '../runtime/session.js';
import { ConfigError } from '../util/errors.js';
import { type NeoXConfig, parameterShapes } from './config.js';
import type { WeightLookup } from './gpt-neox.js';
import { type Params, parameterInputs, residentParameterFeeds } from './params.js';

export const WEIGHT_FORMATS = ['float32', 'int8'] as const;
export type WeightFormat = (typeof WEIGHT_FORMATS)[number];

/**
 * The largest |q|: 63, not 127. On x86 CPUs without VNNI, onnxruntime's uint8 × int8 kernel adds
 * pairs of products in int16 (AVX2's vpmaddubsw), which saturates past 32767; with |q| ≤ 63 a pair
 * is at most 2·255·63 = 32130, so the integer product is exact on every CPU (onnxruntime's own
 * quantizer calls this `reduce_range`). Measured here: with |q| up to 127, two activations at 255
 * against two weights at 127 gave 128.5 where 254 was right.
 */
export const QUANT_MAX = 63;

/** A weight w [out, in] as int8: w[o, i] ≈ scale[o]·q[i, o], q stored transposed [in, out] as the product reads it. */
export interface QuantizedMatrix {
  q: Int8Array;
  scale: Float32Array;
  out: number;
  in: number;
}

/**
 * Symmetric per-output-channel quantization of w [out, in] (row-major): each row's scale is its
 * largest |w| / QUANT_MAX, q = round(w / scale) half away from zero (a row of zeros gets scale 0
 * and q 0). Rows are quantized in place order, then transposed in tiles, so both passes read and
 * write memory in runs.
 */
export function quantizeRows(w: Float32Array, out: number, inFeatures: number): QuantizedMatrix {
  if (w.length !== out * inFeatures)
    throw new ConfigError(`quantize: ${w.length} values do not fill [${out}, ${inFeatures}]`);
  const rows = new Int8Array(out * inFeatures);
  const scale = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    const base = o * inFeatures;
    let max = 0;
    for (let i = 0; i < inFeatures; i++) {
      const a = Math.abs(w[base + i]!);
      if (!(a <= max)) {
        if (!Number.isFinite(a)) throw new ConfigError(`quantize: row ${o} holds ${w[base + i]}`);
        max = a;
      }
    }
    const s = Math.fround(max / QUANT_MAX);
    scale[o] = s;
    if (s === 0) continue;
    for (let i = 0; i < inFeatures; i++) {
      const r = w[base + i]! / s;
      const a = r < 0 ? -r : r;
      // Rounds |r| half up, then puts the sign back. The check undoes a + 0.5 rounding up to the next integer.
      let v = (a + 0.5) | 0;
      if (v - a > 0.5) v--;
      if (v > QUANT_MAX) v = QUANT_MAX;
      rows[base + i] = r < 0 ? -v : v;
    }
  }
  return { q: transposeInt8(rows, out, inFeatures), scale, out, in: inFeatures };
}

const TILE = 64;

/** [rows, cols] → [cols, rows], tile by tile. */
function transposeInt8(a: Int8Array, rows: number, cols: number): Int8Array {
  const t = new Int8Array(a.length);
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) t[c * rows + r] = a[r * cols + c]!;
    }
  }
  return t;
}

/** The float32 weight [out, in] a quantized matrix stands for. */
export function dequantize(m: QuantizedMatrix): Float32Array {
  const w = new Float32Array(m.out * m.in);
  for (let o = 0; o < m.out; o++) for (let i = 0; i < m.in; i++) w[o * m.in + i] = m.scale[o]! * m.q[i * m.out + o]!;
  return w;
}

/** The LM head's weight: embed_out, or embed_in when the embeddings are tied (then quantized as a second copy). */
export function headWeightName(config: NeoXConfig): string {
  return config.tieWordEmbeddings ? 'gpt_neox.embed_in.weight' : 'embed_out.weight';
}

/** The parameters held as int8: every linear layer's weight and the LM head's. */
export function quantizedWeightNames(config: NeoXConfig): Set<string> {
  const names = new Set<string>();
  for (const { name } of parameterShapes(config)) {
    if (/\.(query_key_value|dense|dense_h_to_4h|dense_4h_to_h)\.weight$/.test(name)) names.add(name);
  }
  names.add(headWeightName(config));
  return names;
}

const qName = (name: string): string => `${name}:int8`;
const scaleName = (name: string): string => `${name}:scale`;

/**
 * Declares the parameters as graph inputs, the quantized ones as int8 [in, out] and their scales
 * [out]: `lookup` gives the float32 ones, `lookup.quantized` the int8 ones (gpt-neox.ts then uses
 * quantizedLinear for them).
 */
export function quantizedParameterInputs(graph: Graph, config: NeoXConfig): WeightLookup {
  const quantized = quantizedWeightNames(config);
  const float = new Map<string, Tensor>();
  const int8 = new Map<string, { q: Tensor; scale: Tensor }>();
  for (const { name, shape } of parameterShapes(config)) {
    if (!quantized.has(name) || name === 'gpt_neox.embed_in.weight')
      float.set(name, graph.input(name, 'float32', shape));
    if (quantized.has(name)) {
      const [out, inFeatures] = shape as [number, number];
      int8.set(name, {
        q: graph.input(qName(name), 'int8', [inFeatures, out]),
        scale: graph.input(scaleName(name), 'float32', [out]),
      });
    }
  }
  const lookup = ((name: string) => {
    const t = float.get(name);
    if (t) return t;
    if (int8.has(name)) throw new ConfigError(`parameter ${name} is int8 here; this computation needs float32 weights`);
    throw new ConfigError(`no parameter ${name} in this configuration`);
  }) as WeightLookup;
  lookup.quantized = (name) => int8.get(name);
  return lookup;
}

/** Weights as `--weights int8` holds them: the quantized matrices, and float32 the rest (the embedding, LayerNorms, biases). */
export interface Int8Weights {
  float: Params;
  quantized: Map<string, QuantizedMatrix>;
}

/** Int8 bytes of the quantized matrices and float32 bytes of the rest: what int8 weights hold in memory. */
export function int8WeightBytes(config: NeoXConfig): number {
  const quantized = quantizedWeightNames(config);
  let bytes = 0;
  for (const { name, shape } of parameterShapes(config)) {
    const n = shape.reduce((a, d) => a * d, 1);
    if (quantized.has(name)) bytes += n + 4 * shape[0]!;
    if (!quantized.has(name) || name === 'gpt_neox.embed_in.weight') bytes += 4 * n;
  }
  return bytes;
}

/**
 * Int8 weights from float32 parameters taken one at a time: each linear weight is quantized and its
 * float32 array let go before the next is taken; the rest are kept (the embedding, quantized as the
 * tied LM head, is both). Given a lazy sequence, only one float32 matrix is held at a time.
 */
export function quantizeEach(config: NeoXConfig, params: Iterable<[string, Float32Array]>): Int8Weights {
  const quantized = quantizedWeightNames(config);
  const shapes = new Map(parameterShapes(config).map((p) => [p.name, p.shape]));
  const weights: Int8Weights = { float: new Map(), quantized: new Map() };
  for (const [name, data] of params) {
    if (!quantized.has(name) || name === 'gpt_neox.embed_in.weight') weights.float.set(name, data);
    if (quantized.has(name)) {
      const [out, inFeatures] = shapes.get(name)!;
      weights.quantized.set(name, quantizeRows(data, out!, inFeatures!));
    }
  }
  return weights;
}

/** Every linear weight of float32 `params` quantized (the rest are the same arrays). */
export function quantizeParams(config: NeoXConfig, params: Params): Int8Weights {
  return quantizeEach(
    config,
    parameterShapes(config).map(({ name }): [string, Float32Array] => [name, params.get(name)!]),
  );
}

/** The feeds of `quantizedParameterInputs`. */
export function int8Feeds(config: NeoXConfig, weights: Int8Weights): Record<string, HostTensor> {
  const feeds: Record<string, HostTensor> = {};
  for (const { name, shape } of parameterShapes(config)) {
    const data = weights.float.get(name);
    if (data) feeds[name] = { data, dims: shape };
    const m = weights.quantized.get(name);
    if (m) {
      feeds[qName(name)] = { data: m.q, dims: [m.in, m.out] };
      feeds[scaleName(name)] = { data: m.scale, dims: [m.out] };
    }
  }
  return feeds;
}

/** The feeds of `quantizedParameterInputs`: quantizes each linear weight of `params` (float32 ones are views). */
export function quantizedParameterFeeds(config: NeoXConfig, params: Params): Record<string, HostTensor> {
  return int8Feeds(config, quantizeParams(config, params));
}

/** Whether `weights` are already int8 (from `loadInt8Checkpoint` or `quantizeParams`), not float32 parameters. */
export function isInt8Weights(weights: Params | Int8Weights): weights is Int8Weights {
  return !(weights instanceof Map);
}

/** What `--weights int8` does, for the commands to say on stderr. */
export const INT8_NOTICE =
  'int8 weights: every linear layer and the LM head quantized per output channel (|q| ≤ 63), activations per tensor to uint8 as they run; the embedding lookup, LayerNorms and biases stay float32';

/** Throws unless `format` is a weight format that runs on `provider` (int8: the CPU only). */
export function checkWeightFormat(format: string | undefined, provider: ExecutionProvider | undefined): void {
  if (format === undefined) return;
  if (!(WEIGHT_FORMATS as readonly string[]).includes(format))
    throw new ConfigError(`weights: expected one of ${WEIGHT_FORMATS.join(', ')}, got ${format}`);
  if (format === 'int8' && provider !== undefined && provider !== 'cpu')
    throw new ConfigError(`--weights int8 runs on the CPU only (onnxruntime's DynamicQuantizeMatMul), not ${provider}`);
}

/** The parameter inputs of a graph in `format`. */
export function formatParameterInputs(graph: Graph, config: NeoXConfig, format: WeightFormat): WeightLookup {
  return format === 'int8' ? quantizedParameterInputs(graph, config) : parameterInputs(graph, config).lookup;
}

/** The feeds of `formatParameterInputs` (int8: CPU only; WebGPU and CUDA are refused with one line). */
export async function formatParameterFeeds(
  config: NeoXConfig,
  params: Params | Int8Weights,
  format: WeightFormat,
  provider: ExecutionProvider | undefined,
): Promise<Record<string, HostTensor | DeviceTensor>> {
  checkWeightFormat(format, provider);
  if (isInt8Weights(params)) {
    if (format !== 'int8') throw new ConfigError(`these weights are int8; a ${format} graph needs float32 weights`);
    return int8Feeds(config, params);
  }
  if (format === 'float32') return residentParameterFeeds(config, params, provider);
  return quantizedParameterFeeds(config, params);
}
