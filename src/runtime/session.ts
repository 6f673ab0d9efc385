/**
 * Runs graphs with onnxruntime-node: compile once (lower, encode, create a session), run many
 * times. Sessions are cached by the encoded model and options. `run` is synchronous inside
 * onnxruntime and blocks the event loop while it computes: long work belongs in a worker thread.
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import ort from 'onnxruntime-node';
import { type DType, type TypedArray, dtypeOfArray } from '../graph/dtype.js';
import { type ModelSpec, toOnnx } from '../graph/onnx.js';

export type ExecutionProvider = 'cpu' | 'cuda' | 'webgpu';

export interface RuntimeOptions {
  /** Threads inside one op; default: every core. */
  threads?: number;
  provider?: ExecutionProvider;
}

/** A tensor's data on the host: a typed array in row-major order with its dims. */
export interface HostTensor {
  data: TypedArray;
  dims: readonly number[];
}

const ORT_TYPE: Record<DType, ort.Tensor.Type> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float16',
  int64: 'int64',
  int32: 'int32',
  bool: 'bool',
};

export class RuntimeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RuntimeError';
  }
}

function toOrt(name: string, t: HostTensor): ort.Tensor {
  const dtype = dtypeOfArray(t.data);
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (count !== t.data.length) {
    throw new RuntimeError(`input ${name}: ${t.data.length} values do not fill dims [${t.dims.join(',')}]`);
  }
  return new ort.Tensor(ORT_TYPE[dtype], t.data as never, t.dims as number[]);
}

/** A graph compiled into an onnxruntime session. */
export class CompiledGraph {
  constructor(
    private readonly session: ort.InferenceSession,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
  ) {}

  /** Runs with the given inputs (extra names are ignored) and returns every output. */
  async run(feeds: Readonly<Record<string, HostTensor>>, fetch?: readonly string[]): Promise<Record<string, HostTensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const name of this.inputNames) {
      const t = feeds[name];
      if (!t) throw new RuntimeError(`missing input ${name} (the graph needs: ${this.inputNames.join(', ')})`);
      ortFeeds[name] = toOrt(name, t);
    }
    let results: ort.InferenceSession.ReturnType;
    try {
      results = fetch ? await this.session.run(ortFeeds, [...fetch]) : await this.session.run(ortFeeds);
    } catch (e) {
      throw new RuntimeError(`onnxruntime: ${(e as Error).message.split('\n')[0]}`);
    }
    const out: Record<string, HostTensor> = {};
    for (const [name, t] of Object.entries(results)) {
      out[name] = { data: t.data as TypedArray, dims: t.dims };
    }
    return out;
  }
}

const cache = new Map<string, Promise<CompiledGraph>>();

/**
 * onnxruntime rewrites that read a float64 constant as float32: NoopElimination drops `x·c` and
 * `x+c` when c rounds to 1 or 0 (the float64 erf series lost its terms), MatMulScaleFusion folds a
 * scale into a float32 alpha. Exact for float32 graphs, so they are switched off only for float64 ones.
 */
const FLOAT64_UNSAFE_REWRITES = ['NoopElimination', 'MatMulScaleFusion'];

function usesFloat64(spec: ModelSpec): boolean {
  const { graph } = spec;
  return graph.inputs.some((t) => t.dtype === 'float64') || graph.nodes.some((n) => n.outputs.some((t) => t.dtype === 'float64'));
}

function sessionOptions(options: RuntimeOptions, float64: boolean): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [options.provider ?? 'cpu'],
    intraOpNumThreads: options.threads ?? availableParallelism(),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    ...(float64 && { extra: { optimization: { disable_specified_optimizers: FLOAT64_UNSAFE_REWRITES.join(';') } } }),
  };
}

/** Compiles (or fetches from the cache) the part of a graph that computes `spec.outputs`. */
export function compile(spec: ModelSpec, options: RuntimeOptions = {}): Promise<CompiledGraph> {
  const model = toOnnx(spec);
  const key = createHash('sha256')
    .update(model.bytes)
    .update(JSON.stringify([options.threads ?? 0, options.provider ?? 'cpu']))
    .digest('hex');
  let entry = cache.get(key);
  if (!entry) {
    entry = createSession(model.bytes, sessionOptions(options, usesFloat64(spec))).then((s) => new CompiledGraph(s, model.inputNames, model.outputNames));
    entry.catch(() => cache.delete(key));
    cache.set(key, entry);
  }
  return entry;
}

async function createSession(bytes: Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(bytes, options);
  } catch (e) {
    throw new RuntimeError(`onnxruntime rejected the graph: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** Compiles and runs once: convenient for tests and one-off evaluations. */
export async function evaluate(
  spec: ModelSpec,
  feeds: Readonly<Record<string, HostTensor>> = {},
  options: RuntimeOptions = {},
): Promise<Record<string, HostTensor>> {
  return (await compile(spec, options)).run(feeds);
}
