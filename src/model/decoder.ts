/**
 * The inference graph: one compiled session that serves any batch, any number of new positions
 * and any cache length (symbolic dims `batch`, `seq`, `past`). It takes the new tokens, their
 * positions, an additive attention bias, and the cached keys/values, and returns the last
 * position's logits and the new positions' keys and values, which `step` writes into the cache.
 * Attention is fused (one rotary and one attention kernel per layer), which matters most for
 * one-token steps, where every kernel launch costs about as much as its arithmetic.
 *
 * The cache lives in JavaScript, in buffers with room to spare (`cacheCapacity`); the graph reads
 * all of their positions, unused ones masked. Returning the whole cache from every step
 * instead cost more than the step's kernels at batch 16 (onnxruntime-node copies each output into
 * fresh memory).
 */
import { Graph, type Tensor } from '../graph/graph.js';
import * as op from '../graph/ops.js';
import {
  type CompiledGraph,
  compile,
  type DeviceTensor,
  type HostTensor,
  type RuntimeOptions,
} from '../runtime/session.js';
import { ConfigError } from '../util/errors.js';
import { headDim, type NeoXConfig } from './config.js';
import { buildGptNeoX, type LayerCache, lmHead, MASK_VALUE } from './gpt-neox.js';
import {
  formatParameterFeeds,
  formatParameterInputs,
  type Int8Weights,
  isInt8Weights,
  type WeightFormat,
} from './int8.js';
import { float32WeightBytes } from './memory-budget.js';
import { groupQkvRows, type Params, parameterConstants, releaseFeeds } from './params.js';

/**
 * Keys and values of every layer, key then value: [batch, heads, capacity, head_dim] host buffers
 * whose first `length` positions are filled; on WebGPU instead [batch, heads, length, head_dim]
 * tensors in GPU memory (`device`), which `Decoder.releaseCache` frees.
 */
export interface KvCache {
  batch: number;
  length: number;
  capacity: number;
  buffers: Float32Array[];
  device?: DeviceTensor[];
}

export interface DecoderStep {
  /** [batch, vocab]: logits of each row's last position. */
  logits: Float32Array;
  /** The cache given, now holding the new positions too. */
  cache: KvCache;
}

/**
 * A cache grows to a quarter more than it needs, in multiples of 16 positions: attention reads (and
 * copies) every slot, used or not, and each growth copies the cache into fresh memory.
 */
const cacheCapacity = (needed: number): number => Math.ceil((needed * 1.25) / 16) * 16;

export interface DecoderOptions extends RuntimeOptions {
  /**
   * `constants` bakes the weights into the session, which onnxruntime pre-packs once: faster per
   * token, one session per set of weights. `inputs` feeds them each step, so one compiled session
   * serves every checkpoint of an architecture. Default: `constants` up to 1.5 GiB of weights
   * (protobuf's limit is 2 GiB), `inputs` above.
   */
  weights?: 'constants' | 'inputs';
  /**
   * Intra-op threads for one-token steps; prompts and full recomputation use `threads`. Default: 1
   * for weights under 32 MiB, where a step is a few dozen kernels of microseconds each and handing
   * work to a second thread costs more than it saves (d=64/L=2 on 2 cores: 0.13 ms per token on
   * one thread, 0.12–0.19 ms on two); `threads` above, where a step streams every weight from memory.
   */
  stepThreads?: number;
  /** `int8`: linear weights quantized per output channel (int8.ts), fed as inputs; CPU only. Default float32. */
  format?: WeightFormat;
}

/** Baked weights travel inside the ONNX protobuf, which cannot exceed 2 GiB. */
const MAX_BAKED_BYTES = 1.5 * 2 ** 30;
const SINGLE_THREAD_STEP_BYTES = 32 * 2 ** 20;

export class Decoder {
  private constructor(
    readonly config: NeoXConfig,
    /** Weights fed each run (`weights: 'inputs'`): host views, or on WebGPU copies in GPU memory. */
    private readonly weightFeeds: Record<string, HostTensor | DeviceTensor>,
    private readonly session: CompiledGraph,
    /** The session one-token steps run on: `session` itself unless they use other threads. */
    private readonly stepSession: CompiledGraph,
    private readonly owned: boolean,
    /** WebGPU: the cache stays in GPU memory. */
    private readonly onDevice: boolean,
  ) {}

  static async create(
    config: NeoXConfig,
    params: Params | Int8Weights,
    options: DecoderOptions = {},
  ): Promise<Decoder> {
    const graph = new Graph();
    const preQuantized = isInt8Weights(params);
    if (preQuantized && options.format !== 'int8')
      throw new ConfigError("these weights are int8 (loadInt8Checkpoint): create the decoder with format: 'int8'");
    const bytes = preQuantized
      ? float32WeightBytes(config)
      : [...params.values()].reduce((sum, p) => sum + p.byteLength, 0);
    const fits = bytes <= MAX_BAKED_BYTES;
    if (options.weights === 'constants' && !fits) {
      throw new ConfigError(
        `weights of ${(bytes / 2 ** 30).toFixed(1)} GiB cannot be baked into an ONNX model (protobuf's 2 GiB limit): use weights: 'inputs'`,
      );
    }
    const int8 = options.format === 'int8';
    if (int8 && options.weights === 'constants')
      throw new ConfigError("int8 weights are fed as inputs: use weights: 'inputs'");
    const baked = !int8 && (options.weights ?? (fits ? 'constants' : 'inputs')) === 'constants';
    // Regrouped qkv rows save four kernels a layer: worth a copy of those rows where it is transient
    // (baked: onnxruntime keeps its own) or small (a step of small weights costs its kernel count).
    const grouped = !preQuantized && (baked || bytes < SINGLE_THREAD_STEP_BYTES);
    const weights = grouped ? groupQkvRows(config, params) : params;
    const lookup =
      baked && !isInt8Weights(weights)
        ? parameterConstants(graph, config, weights)
        : formatParameterInputs(graph, config, options.format ?? 'float32');
    const nh = config.numHeads;
    const hd = headDim(config);
    const ids = graph.input('input_ids', 'int64', ['batch', 'seq']);
    const positions = graph.input('position_ids', 'int64', ['batch', 'seq']);
    const bias = graph.input('attention_bias', 'float32', ['batch', 1, 'seq', 'past+seq']);
    const past: LayerCache[] = [];
    for (let i = 0; i < config.numLayers; i++) {
      past.push({
        key: graph.input(`past.${i}.key`, 'float32', ['batch', nh, 'past', hd]),
        value: graph.input(`past.${i}.value`, 'float32', ['batch', nh, 'past', hd]),
      });
    }
    const out = buildGptNeoX(config, lookup, {
      ids,
      positions,
      attentionBias: bias,
      past,
      fused: true,
      groupedQkv: grouped,
    });
    const last = op.gather(out.final, graph.constant(BigInt64Array.of(-1n), []), 1);
    const outputs: Record<string, Tensor> = { logits: lmHead(config, lookup, last) };
    // On WebGPU the whole cache stays on the device, each step's keys and values appended to it there.
    const onDevice = options.provider === 'webgpu';
    (onDevice ? out.present : out.fresh).forEach((c, i) => {
      outputs[`new.${i}.key`] = c.key;
      outputs[`new.${i}.value`] = c.value;
    });
    const deviceOutputs = onDevice ? Object.keys(outputs).filter((n) => n !== 'logits') : undefined;
    const runtime = { ...options, cache: baked ? false : options.cache, deviceOutputs };
    const session = await compile({ graph, outputs }, runtime);
    const stepThreads = options.stepThreads ?? (bytes < SINGLE_THREAD_STEP_BYTES ? 1 : options.threads);
    const stepSession =
      stepThreads === options.threads
        ? session
        : await compile({ graph, outputs }, { ...runtime, threads: stepThreads });
    return new Decoder(
      config,
      baked ? {} : await formatParameterFeeds(config, weights, options.format ?? 'float32', options.provider),
      session,
      stepSession,
      baked,
      onDevice,
    );
  }

  /** Ends onnxruntime's profiling of a decoder created with `profile`, writing its JSON file(s). */
  endProfiling(): void {
    this.session.endProfiling();
    if (this.stepSession !== this.session) this.stepSession.endProfiling();
  }

  /** Frees the sessions' memory (a decoder with baked weights holds its own copy of them). */
  async release(): Promise<void> {
    releaseFeeds(this.weightFeeds);
    if (!this.owned) return;
    await this.session.release();
    if (this.stepSession !== this.session) await this.stepSession.release();
  }

  emptyCache(batch: number): KvCache {
    return {
      batch,
      length: 0,
      capacity: 0,
      buffers: Array.from({ length: 2 * this.config.numLayers }, () => new Float32Array(0)),
    };
  }

  /**
   * Runs new tokens [batch, seq] at `positions` with `bias` [batch, 1, seq, past + seq] (past: the
   * cache's length) against `cache` (from `emptyCache` or an earlier step), which it updates.
   */
  async step(
    ids: BigInt64Array,
    positions: BigInt64Array,
    bias: Float32Array,
    cache: KvCache,
    batch: number,
  ): Promise<DecoderStep> {
    if (this.onDevice) return this.stepOnDevice(ids, positions, bias, cache, batch);
    const seq = ids.length / batch;
    const { length: past, capacity } = cache;
    const nh = this.config.numHeads;
    const hd = headDim(this.config);
    // Keys are the cache's slots, then the new positions: slots past `length` are masked.
    const wide = new Float32Array(batch * seq * (capacity + seq)).fill(MASK_VALUE);
    for (let row = 0; row < batch * seq; row++) {
      const from = row * (past + seq);
      const to = row * (capacity + seq);
      wide.set(bias.subarray(from, from + past), to);
      wide.set(bias.subarray(from + past, from + past + seq), to + capacity);
    }
    const feeds: Record<string, HostTensor | DeviceTensor> = {
      ...this.weightFeeds,
      input_ids: { data: ids, dims: [batch, seq] },
      position_ids: { data: positions, dims: [batch, seq] },
      attention_bias: { data: wide, dims: [batch, 1, seq, capacity + seq] },
    };
    const dims = [batch, nh, capacity, hd];
    for (let i = 0; i < this.config.numLayers; i++) {
      feeds[`past.${i}.key`] = { data: cache.buffers[2 * i]!, dims };
      feeds[`past.${i}.value`] = { data: cache.buffers[2 * i + 1]!, dims };
    }
    const r = await (seq === 1 ? this.stepSession : this.session).run(feeds);
    // Grown only now, so that a prompt's step attends over no empty slots.
    if (past + seq > capacity) this.grow(cache, cacheCapacity(past + seq));
    // New [batch, seq, heads, hd] rows into [batch, heads, capacity, hd] slots past..past+seq−1.
    const stride = cache.capacity;
    for (let i = 0; i < 2 * this.config.numLayers; i++) {
      const fresh = r[`new.${i >> 1}.${i & 1 ? 'value' : 'key'}`]!.data as Float32Array;
      const buffer = cache.buffers[i]!;
      for (let b = 0; b < batch; b++) {
        for (let t = 0; t < seq; t++) {
          for (let h = 0; h < nh; h++) {
            const from = ((b * seq + t) * nh + h) * hd;
            const to = ((b * nh + h) * stride + past + t) * hd;
            for (let j = 0; j < hd; j++) buffer[to + j] = fresh[from + j]!;
          }
        }
      }
    }
    cache.length += seq;
    return { logits: r.logits!.data as Float32Array, cache };
  }

  /** Frees a cache's tensors in GPU memory (WebGPU); host buffers are left to the garbage collector. */
  releaseCache(cache: KvCache): void {
    for (const t of cache.device ?? []) t.dispose();
    cache.device = undefined;
  }

  private async stepOnDevice(
    ids: BigInt64Array,
    positions: BigInt64Array,
    bias: Float32Array,
    cache: KvCache,
    batch: number,
  ): Promise<DecoderStep> {
    const seq = ids.length / batch;
    const past = cache.length;
    const feeds: Record<string, HostTensor | DeviceTensor> = {
      ...this.weightFeeds,
      input_ids: { data: ids, dims: [batch, seq] },
      position_ids: { data: positions, dims: [batch, seq] },
      attention_bias: { data: bias, dims: [batch, 1, seq, past + seq] },
    };
    const empty = { data: new Float32Array(0), dims: [batch, this.config.numHeads, 0, headDim(this.config)] };
    for (let i = 0; i < this.config.numLayers; i++) {
      feeds[`past.${i}.key`] = cache.device?.[2 * i] ?? empty;
      feeds[`past.${i}.value`] = cache.device?.[2 * i + 1] ?? empty;
    }
    const { host, device } = await (seq === 1 ? this.stepSession : this.session).runOnDevice(feeds);
    this.releaseCache(cache);
    cache.device = Array.from(
      { length: 2 * this.config.numLayers },
      (_, i) => device[`new.${i >> 1}.${i & 1 ? 'value' : 'key'}`]!,
    );
    cache.length += seq;
    cache.capacity = cache.length;
    return { logits: host.logits!.data as Float32Array, cache };
  }

  private grow(cache: KvCache, capacity: number): void {
    const hd = headDim(this.config);
    const rows = cache.batch * this.config.numHeads;
    cache.buffers = Array.from({ length: 2 * this.config.numLayers }, (_, i) => {
      const wider = new Float32Array(rows * capacity * hd);
      const old = cache.buffers[i]!;
      for (let r = 0; r < rows; r++)
        wider.set(old.subarray(r * cache.capacity * hd, (r * cache.capacity + cache.length) * hd), r * capacity * hd);
      return wider;
    });
    cache.capacity = capacity;
  }
}
