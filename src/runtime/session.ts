/**
 * Runs graphs with onnxruntime-node: compile once (lower, encode, create a session), run many
 * times. Sessions are cached by the encoded model and options. onnxruntime-node computes a run on
 * the calling thread, so the event loop waits for each run; long loops get their timers, progress
 * and signals in between runs.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import ort from 'onnxruntime-node';
import { type DType, dtypeOfArray, type TypedArray } from '../graph/dtype.js';
import { Graph } from '../graph/graph.js';
import { type ModelSpec, toOnnx } from '../graph/onnx.js';
import { formatShape, type Shape } from '../graph/shape.js';
import { PythiaError } from '../util/errors.js';

export const EXECUTION_PROVIDERS = ['cpu', 'webgpu', 'cuda'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

export interface RuntimeOptions {
  /** Threads inside one op; default: every core. */
  threads?: number;
  provider?: ExecutionProvider;
  /**
   * Keep the compiled session for the next `compile` of the same graph (default). Graphs that
   * carry large weights as constants are compiled once and released by their owner instead.
   */
  cache?: boolean;
  /** Write onnxruntime's per-node profile (Chrome trace JSON) to files starting with this path; `endProfiling()` closes one. */
  profile?: string;
  /**
   * Outputs left in GPU memory (WebGPU only): `runOnDevice` returns them as DeviceTensors, which
   * later runs of any WebGPU session take as inputs without a copy through the host.
   */
  deviceOutputs?: readonly string[];
}

/** A tensor in the execution provider's memory (a WebGPU buffer). Free it with `dispose()`. */
export class DeviceTensor {
  constructor(
    readonly value: ort.Tensor,
    readonly dtype: DType,
  ) {}

  get dims(): readonly number[] {
    return this.value.dims;
  }

  dispose(): void {
    this.value.dispose();
  }
}

/** What a run takes for an input: host data, or a tensor a WebGPU run left on the device. */
export type Feed = HostTensor | DeviceTensor;

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
  int8: 'int8',
  bool: 'bool',
};

export class RuntimeError extends PythiaError {}

/** A graph input as the compiled graph expects it. */
export interface InputSignature {
  name: string;
  dtype: DType;
  shape: Shape;
}

/**
 * Checks one feed against its input: dtype, rank, static sizes, and that each symbolic dimension
 * has one size across all inputs of a run (`sizes` collects them). onnxruntime's own messages for
 * these do not always name the input.
 */
function toOrt(input: InputSignature, t: Feed, sizes: Map<string, number>): ort.Tensor {
  const { name, shape } = input;
  const dtype = t instanceof DeviceTensor ? t.dtype : dtypeOfArray(t.data);
  const got = `${dtype}[${t.dims.join(',')}]`;
  if (dtype !== input.dtype || t.dims.length !== shape.length) {
    throw new RuntimeError(`input ${name}: expected ${input.dtype}${formatShape(shape)}, got ${got}`);
  }
  shape.forEach((d, i) => {
    const size = t.dims[i]!;
    const bound = typeof d === 'string' ? sizes.get(d) : d;
    if (bound !== undefined && bound !== size) {
      const why = typeof d === 'string' ? ` (${d} is ${bound} in another input)` : '';
      throw new RuntimeError(`input ${name}: expected ${input.dtype}${formatShape(shape)}, got ${got}${why}`);
    }
    if (typeof d === 'string') sizes.set(d, size);
  });
  if (t instanceof DeviceTensor) return t.value;
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (count !== t.data.length) {
    throw new RuntimeError(`input ${name}: ${t.data.length} values do not fill dims [${t.dims.join(',')}]`);
  }
  return new ort.Tensor(ORT_TYPE[dtype], t.data as never, t.dims as number[]);
}

/** A graph compiled into an onnxruntime session. */
export class CompiledGraph {
  readonly inputNames: readonly string[];

  constructor(
    private readonly session: ort.InferenceSession,
    readonly inputs: readonly InputSignature[],
    readonly outputNames: readonly string[],
  ) {
    this.inputNames = inputs.map((i) => i.name);
  }

  /** Frees onnxruntime's memory for this session (only for sessions compiled with `cache: false`). */
  async release(): Promise<void> {
    await this.session.release();
  }

  /** Ends onnxruntime's profiling (sessions compiled with `profile`) and writes its JSON file. */
  endProfiling(): void {
    this.session.endProfiling();
  }

  /** Runs with the given inputs (extra names are ignored) and returns every output. */
  async run(feeds: Readonly<Record<string, Feed>>, fetch?: readonly string[]): Promise<Record<string, HostTensor>> {
    const { host, device } = await this.runOnDevice(feeds, fetch);
    const kept = Object.keys(device);
    if (kept.length > 0) {
      for (const t of Object.values(device)) t.dispose();
      throw new RuntimeError(`outputs ${kept.join(', ')} stay on the device: use runOnDevice`);
    }
    return host;
  }

  /** Runs, returning the `deviceOutputs` it was compiled with as DeviceTensors and the rest as host data. */
  async runOnDevice(
    feeds: Readonly<Record<string, Feed>>,
    fetch?: readonly string[],
  ): Promise<{ host: Record<string, HostTensor>; device: Record<string, DeviceTensor> }> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    const sizes = new Map<string, number>();
    for (const input of this.inputs) {
      const t = feeds[input.name];
      if (!t) throw new RuntimeError(`missing input ${input.name} (the graph needs: ${this.inputNames.join(', ')})`);
      ortFeeds[input.name] = toOrt(input, t, sizes);
    }
    let results: ort.InferenceSession.ReturnType;
    try {
      results = fetch ? await this.session.run(ortFeeds, [...fetch]) : await this.session.run(ortFeeds);
    } catch (e) {
      throw new RuntimeError(`onnxruntime: ${(e as Error).message.split('\n')[0]}`);
    }
    const host: Record<string, HostTensor> = {};
    const device: Record<string, DeviceTensor> = {};
    for (const [name, t] of Object.entries(results)) {
      if (t.location === 'gpu-buffer') device[name] = new DeviceTensor(t, ORT_DTYPE[t.type]!);
      else host[name] = { data: t.data as TypedArray, dims: t.dims };
    }
    return { host, device };
  }
}

const ORT_DTYPE: Partial<Record<ort.Tensor.Type, DType>> = Object.fromEntries(
  Object.entries(ORT_TYPE).map(([ours, theirs]) => [theirs, ours as DType]),
);

const cache = new Map<string, Promise<CompiledGraph>>();

/**
 * onnxruntime rewrites that read a float64 constant as float32: NoopElimination drops `x·c` and
 * `x+c` when c rounds to 1 or 0 (the float64 erf series lost its terms), MatMulScaleFusion folds a
 * scale into a float32 alpha. Exact for float32 graphs, so they are switched off only for float64 ones.
 */
const FLOAT64_UNSAFE_REWRITES = ['NoopElimination', 'MatMulScaleFusion'];

function usesFloat64(spec: ModelSpec): boolean {
  const { graph } = spec;
  return (
    graph.inputs.some((t) => t.dtype === 'float64') ||
    graph.nodes.some((n) => n.outputs.some((t) => t.dtype === 'float64'))
  );
}

function sessionOptions(options: RuntimeOptions, float64: boolean): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [options.provider ?? 'cpu'],
    intraOpNumThreads: options.threads ?? availableParallelism(),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    // Errors only: its warnings (nodes it keeps on the CPU on purpose, unused initializers) are not the user's to act on.
    logSeverityLevel: 3,
    // No memory pattern: its block, planned after the first run, comes on top of the arena that run
    // grew (1.5 GiB more at a pythia-70m training step, 1.3 GiB at a 1b forward) for no measured speed.
    enableMemPattern: false,
    ...(options.profile && { enableProfiling: true, profileFilePrefix: options.profile }),
    ...(options.deviceOutputs && {
      preferredOutputLocation: Object.fromEntries(options.deviceOutputs.map((n) => [n, 'gpu-buffer' as const])),
    }),
    ...(float64 && { extra: { optimization: { disable_specified_optimizers: FLOAT64_UNSAFE_REWRITES.join(';') } } }),
  };
}

/** Compiles (or fetches from the cache) the part of a graph that computes `spec.outputs`. */
export function compile(spec: ModelSpec, options: RuntimeOptions = {}): Promise<CompiledGraph> {
  if (options.deviceOutputs?.length && options.provider !== 'webgpu') {
    return Promise.reject(
      new RuntimeError(
        `outputs can stay on the device only with the webgpu provider, not ${options.provider ?? 'cpu'}`,
      ),
    );
  }
  const model = toOnnx(spec, { target: options.provider === 'webgpu' ? 'webgpu' : 'cpu' });
  const signature = (): InputSignature[] =>
    model.inputNames.map((name) => {
      const t = spec.graph.inputs.find((i) => i.name === name)!;
      return { name, dtype: t.dtype, shape: t.shape };
    });
  if (options.cache === false || options.profile) {
    return createSession(model.bytes, sessionOptions(options, usesFloat64(spec))).then(
      (s) => new CompiledGraph(s, signature(), model.outputNames),
    );
  }
  const key = createHash('sha256')
    .update(model.bytes)
    .update(JSON.stringify([options.threads ?? 0, options.provider ?? 'cpu', options.deviceOutputs ?? []]))
    .digest('hex');
  let entry = cache.get(key);
  if (!entry) {
    entry = createSession(model.bytes, sessionOptions(options, usesFloat64(spec))).then(
      (s) => new CompiledGraph(s, signature(), model.outputNames),
    );
    entry.catch(() => cache.delete(key));
    cache.set(key, entry);
  }
  return entry;
}

/**
 * Refuses, in one line, an execution provider this onnxruntime-node cannot offer: one it does not
 * list, or CUDA, whose libraries onnxruntime-node downloads at install time (this project installs
 * with that download off).
 */
export function checkProvider(provider: ExecutionProvider): void {
  if (provider === 'cpu') return;
  const backend = ort.listSupportedBackends().find((b) => b.name === provider);
  if (!backend)
    throw new RuntimeError(
      `--device ${provider}: this build of onnxruntime-node has no ${provider} execution provider`,
    );
  if (
    !backend.bundled &&
    !existsSync(
      new URL(`../bin/napi-v6/${process.platform}/${process.arch}/libonnxruntime_providers_${provider}.so`, ORT_ENTRY),
    )
  )
    throw new RuntimeError(
      `--device ${provider}: onnxruntime-node's ${provider} libraries are not installed (onnxruntime-node fetches them at install time with ONNXRUNTIME_NODE_INSTALL_CUDA=1)`,
    );
}

const ORT_ENTRY = pathToFileURL(createRequire(import.meta.url).resolve('onnxruntime-node'));

async function createSession(
  bytes: Uint8Array,
  options: ort.InferenceSession.SessionOptions,
): Promise<ort.InferenceSession> {
  const provider = (options.executionProviders?.[0] ?? 'cpu') as ExecutionProvider;
  checkProvider(provider);
  try {
    return await ort.InferenceSession.create(bytes, options);
  } catch (e) {
    const first = (e as Error).message.split('\n')[0] ?? '';
    if (provider !== 'cpu') {
      const why = /Failed to get a WebGPU adapter/.test(first)
        ? "no WebGPU adapter found (it needs a Vulkan driver: a GPU's, or Mesa's software one in mesa-vulkan-drivers 23 or later)"
        : first.replace(/^.*(?:was false\.|\]) /, '');
      throw new RuntimeError(
        `--device ${provider}: onnxruntime could not start the ${provider} execution provider: ${why}`,
      );
    }
    throw new RuntimeError(`onnxruntime rejected the graph: ${first}`);
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

/**
 * Copies tensors between the host and the WebGPU device, through an identity graph compiled once
 * per list of shapes: `upload` leaves the copies on the device, `download` brings them back.
 */
export async function upload(tensors: readonly HostTensor[]): Promise<DeviceTensor[]> {
  const session = await identity(
    tensors.map((t) => ({ dtype: dtypeOfArray(t.data), dims: t.dims })),
    true,
  );
  const { device } = await session.runOnDevice(Object.fromEntries(tensors.map((t, i) => [`x${i}`, t])));
  return tensors.map((_, i) => device[`y${i}`]!);
}

export async function download(tensors: readonly DeviceTensor[]): Promise<HostTensor[]> {
  const session = await identity(tensors, false);
  const host = await session.run(Object.fromEntries(tensors.map((t, i) => [`x${i}`, t])));
  return tensors.map((_, i) => host[`y${i}`]!);
}

async function identity(
  tensors: readonly { dtype: DType; dims: readonly number[] }[],
  toDevice: boolean,
): Promise<CompiledGraph> {
  const graph = new Graph();
  const outputs = Object.fromEntries(tensors.map((t, i) => [`y${i}`, graph.input(`x${i}`, t.dtype, [...t.dims])]));
  return compile({ graph, outputs }, { provider: 'webgpu', ...(toDevice && { deviceOutputs: Object.keys(outputs) }) });
}
