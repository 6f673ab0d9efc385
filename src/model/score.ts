/**
 * Log-likelihood scoring of continuations, the primitive every benchmark and analysis needs:
 * for (context, continuation) pairs, the summed log-probability of the continuation tokens and
 * whether greedy decoding would have produced them (lm-evaluation-harness's `is_greedy`).
 * Only per-token target log-probabilities come back from the graph, never full logits.
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
import { checkNumber, POSITIVE_INTEGER } from '../util/values.js';
import { headDim, type NeoXConfig } from './config.js';
import {
  buildGptNeoX,
  type ForwardOutputs,
  type LayerCache,
  lmHead,
  MASK_VALUE,
  type WeightLookup,
} from './gpt-neox.js';
import { embed, type LayerStream, stageFeeds } from './layer-stream.js';
import { type Params, parameterInputs, releaseFeeds, residentParameterFeeds } from './params.js';

export interface ScoreRequest {
  context: readonly number[];
  continuation: readonly number[];
}

export interface ScoreResult {
  /** Sum of log p(continuation token | everything before it). */
  logprob: number;
  /** Per continuation token. */
  tokenLogprobs: number[];
  /** Every continuation token is the argmax at its position. */
  isGreedy: boolean;
}

/** A request as the graph takes it: inputs (all tokens but the last, left-truncated), their targets, and how many are scored. */
interface Row {
  index: number;
  input: number[];
  target: number[];
  n: number;
}

/** The summed log-probability, per-token log-probabilities and greedy flag of the log-probs at the scored positions. */
function scoringOutputs(
  config: NeoXConfig,
  lookup: WeightLookup,
  final: Tensor,
  index: Tensor,
  targets: Tensor,
): Record<string, Tensor> {
  const rows = op.gather(op.reshape(final, ['batch*seq', config.hiddenSize]), index, 0);
  const logits = lmHead(config, lookup, rows);
  const logprob = op.neg(op.crossEntropy(logits, targets));
  const targetLogit = op.reshape(op.gatherElements(logits, op.reshape(targets, ['scored', 1]), 1), ['scored']);
  const greedy = op.equal(op.max(logits, [-1]), targetLogit);
  return { logprob, greedy };
}

/**
 * The two graphs of shared-context scoring: `prefix` runs a group's common tokens and returns every
 * layer's keys and values ([batch, heads, seq, head_dim]); `rest` runs each request's remaining
 * tokens against those (`past.i.key`/`past.i.value`, slots past a row's prefix masked by its bias)
 * and scores them as the plain graph does.
 */
async function sharedContextGraphs(
  config: NeoXConfig,
  runtime: RuntimeOptions,
): Promise<{ prefix: CompiledGraph; rest: CompiledGraph }> {
  const prefix = compile(prefixGraph(config), runtime);
  const rest = compile(restGraph(config), runtime);
  return { prefix: await prefix, rest: await rest };
}

function prefixGraph(config: NeoXConfig): { graph: Graph; outputs: Record<string, Tensor> } {
  const graph = new Graph();
  const { lookup } = parameterInputs(graph, config);
  const ids = graph.input('input_ids', 'int64', ['batch', 'seq']);
  const positions = graph.input('position_ids', 'int64', ['batch', 'seq']);
  const bias = graph.input('attention_bias', 'float32', [1, 1, 'seq', 'seq']);
  const out = buildGptNeoX(config, lookup, { ids, positions, attentionBias: bias, fused: true });
  const outputs: Record<string, Tensor> = {};
  out.present.forEach((c, i) => {
    outputs[`present.${i}.key`] = c.key;
    outputs[`present.${i}.value`] = c.value;
  });
  return { graph, outputs };
}

function restGraph(config: NeoXConfig): { graph: Graph; outputs: Record<string, Tensor> } {
  const nh = config.numHeads;
  const hd = headDim(config);
  const graph = new Graph();
  const { lookup } = parameterInputs(graph, config);
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
  const index = graph.input('score_index', 'int64', ['scored']);
  const targets = graph.input('score_targets', 'int64', ['scored']);
  const { final } = buildGptNeoX(config, lookup, { ids, positions, attentionBias: bias, past, fused: true });
  return { graph, outputs: scoringOutputs(config, lookup, final, index, targets) };
}

/** One layer of the streamed model: the residual stream in, the residual stream out; layer 0's parameter names. */
function streamedBlockGraph(
  config: NeoXConfig,
  extra: (out: ForwardOutputs) => Record<string, Tensor> = () => ({}),
): { graph: Graph; outputs: Record<string, Tensor> } {
  const graph = new Graph();
  const { lookup } = parameterInputs(graph, config);
  const residual = graph.input('residual', 'float32', ['batch', 'seq', config.hiddenSize]);
  const positions = graph.input('position_ids', 'int64', ['batch', 'seq']);
  const bias = graph.input('attention_bias', 'float32', [1, 1, 'seq', 'seq']);
  const out = buildGptNeoX(config, lookup, {
    residual,
    positions,
    attentionBias: bias,
    fused: true,
    layers: 1,
    finalNorm: false,
  });
  return { graph, outputs: { residual_out: out.final, ...extra(out) } };
}

/** A prefix of shared-context scoring through one layer: the residual stream out, and the layer's keys and values. */
function streamedPrefixBlockGraph(config: NeoXConfig): { graph: Graph; outputs: Record<string, Tensor> } {
  const { graph, outputs } = streamedBlockGraph(config, (out) => ({
    'present.0.key': out.present[0]!.key,
    'present.0.value': out.present[0]!.value,
  }));
  return { graph, outputs };
}

/** The rows of shared-context scoring through one layer, against their prefixes' keys and values (`past.0.*`). */
function streamedRestBlockGraph(config: NeoXConfig): { graph: Graph; outputs: Record<string, Tensor> } {
  const nh = config.numHeads;
  const hd = headDim(config);
  const graph = new Graph();
  const { lookup } = parameterInputs(graph, config);
  const residual = graph.input('residual', 'float32', ['batch', 'seq', config.hiddenSize]);
  const positions = graph.input('position_ids', 'int64', ['batch', 'seq']);
  const bias = graph.input('attention_bias', 'float32', ['batch', 1, 'seq', 'past+seq']);
  const past: LayerCache[] = [
    {
      key: graph.input('past.0.key', 'float32', ['batch', nh, 'past', hd]),
      value: graph.input('past.0.value', 'float32', ['batch', nh, 'past', hd]),
    },
  ];
  const { final } = buildGptNeoX(config, lookup, {
    residual,
    positions,
    attentionBias: bias,
    past,
    fused: true,
    layers: 1,
    finalNorm: false,
  });
  return { graph, outputs: { residual_out: final } };
}

/** The streamed model's last stage: final LayerNorm and the scoring outputs at the scored positions. */
function streamedHeadGraph(config: NeoXConfig): { graph: Graph; outputs: Record<string, Tensor> } {
  const graph = new Graph();
  const { lookup } = parameterInputs(graph, config);
  const residual = graph.input('residual', 'float32', ['batch', 'seq', config.hiddenSize]);
  const index = graph.input('score_index', 'int64', ['scored']);
  const targets = graph.input('score_targets', 'int64', ['scored']);
  const { final } = buildGptNeoX(config, lookup, { residual, layers: 0 });
  return { graph, outputs: scoringOutputs(config, lookup, final, index, targets) };
}

/** Length of the longest common prefix of token rows. */
function commonPrefix(rows: readonly (readonly number[])[]): number {
  const first = rows[0]!;
  let n = Math.min(...rows.map((r) => r.length));
  for (const row of rows.slice(1)) {
    let k = 0;
    while (k < n && row[k] === first[k]) k++;
    n = k;
  }
  return n;
}

/** How a scorer reaches its weights: all in memory, fed whole to one graph, or streamed a layer at a time. */
type Backend =
  | { kind: 'resident'; weights: Record<string, HostTensor | DeviceTensor>; session: CompiledGraph }
  | { kind: 'streamed'; stream: LayerStream; block: CompiledGraph; head: CompiledGraph; activationBytes: number };

/** One batch of whole rows as the graphs take it (the causal bias is made at the run). */
interface ScoreBatch {
  rows: Row[];
  batch: number;
  seq: number;
  ids: BigInt64Array;
  positions: BigInt64Array;
  index: BigInt64Array;
  targets: BigInt64Array;
}

/** Residual streams a streamed scorer keeps between layers by default: 1 GiB; rows beyond run in further passes. */
export const DEFAULT_ACTIVATION_BYTES = 2 ** 30;

export class Scorer {
  /** The shared-context graphs, compiled on first use. */
  private shared?: Promise<{ prefix: CompiledGraph; rest: CompiledGraph }>;
  /** Their streamed forms, one layer each: the prefix block (returning its keys and values), the rest block. */
  private streamedShared?: Promise<[CompiledGraph, CompiledGraph]>;

  private constructor(
    readonly config: NeoXConfig,
    private readonly backend: Backend,
    private readonly runtime: RuntimeOptions,
  ) {}

  /**
   * The LM head runs only at the positions being scored (`score_index`, flat row indices into
   * [batch·seq]): a multiple-choice item scores a few tokens after a long context, and at Pythia's
   * vocabulary the head over every position costs more than the whole network below it.
   */
  static async create(config: NeoXConfig, params: Params, runtime: RuntimeOptions = {}): Promise<Scorer> {
    const graph = new Graph();
    const { lookup } = parameterInputs(graph, config);
    const ids = graph.input('input_ids', 'int64', ['batch', 'seq']);
    const positions = graph.input('position_ids', 'int64', ['batch', 'seq']);
    const bias = graph.input('attention_bias', 'float32', [1, 1, 'seq', 'seq']);
    const index = graph.input('score_index', 'int64', ['scored']);
    const targets = graph.input('score_targets', 'int64', ['scored']);
    const { final } = buildGptNeoX(config, lookup, { ids, positions, attentionBias: bias, fused: true });
    const session = await compile({ graph, outputs: scoringOutputs(config, lookup, final, index, targets) }, runtime);
    const weights = await residentParameterFeeds(config, params, runtime.provider);
    return new Scorer(config, { kind: 'resident', weights, session }, runtime);
  }

  /**
   * A scorer that reads `stream`'s checkpoint a layer at a time: each call's rows go through the
   * embedding, then every layer (its weights read once for all of them), then the head, with the
   * same graphs and numbers as the resident scorer. The residual streams between layers take at most
   * `activationBytes` (one batch at least); rows beyond run in further passes over the checkpoint.
   * `scoreGroups` runs shared contexts once as the resident scorer does, a layer at a time too.
   */
  static async streamed(
    stream: LayerStream,
    runtime: RuntimeOptions = {},
    activationBytes = DEFAULT_ACTIVATION_BYTES,
  ): Promise<Scorer> {
    checkNumber('activationBytes', activationBytes, POSITIVE_INTEGER);
    const { config } = stream;
    const block = compile(streamedBlockGraph(config), runtime);
    const head = compile(streamedHeadGraph(config), runtime);
    return new Scorer(
      config,
      { kind: 'streamed', stream, block: await block, head: await head, activationBytes },
      runtime,
    );
  }

  /** Whether this scorer streams its weights (a call then reads the whole checkpoint once per pass). */
  get streamed(): boolean {
    return this.backend.kind === 'streamed';
  }

  /** Frees the weights' copies in GPU memory (WebGPU); the scorer cannot be used after. A stream stays its owner's to close. */
  release(): void {
    if (this.backend.kind === 'resident') releaseFeeds(this.backend.weights);
  }

  /** Ends onnxruntime's profiling of a scorer created with `profile`, writing its JSON file. */
  endProfiling(): void {
    if (this.backend.kind === 'resident') this.backend.session.endProfiling();
    else this.backend.block.endProfiling();
  }

  /** Scores requests in batches of up to `batchSize` rows of similar length. */
  async score(requests: readonly ScoreRequest[], batchSize = 8): Promise<ScoreResult[]> {
    checkNumber('batchSize', batchSize, POSITIVE_INTEGER);
    const rows = this.rows(requests);
    const results = new Array<ScoreResult>(requests.length);
    await this.scoreRows(rows, batchSize, results);
    return results;
  }

  /**
   * Scores groups of requests that share their first tokens (a multiple-choice item's choices, or a
   * partial item's contexts): the longest common prefix of a group's inputs, up to its first scored
   * position, runs once, and each request's remaining tokens run against its keys and values. Equal
   * to `score` on the same requests up to float32 rounding. Groups of one request, or with no
   * common first token, are scored as `score` does.
   */
  async scoreGroups(groups: readonly (readonly ScoreRequest[])[], batchSize = 8): Promise<ScoreResult[][]> {
    checkNumber('batchSize', batchSize, POSITIVE_INTEGER);
    const rows = this.rows(groups.flat());
    const results = new Array<ScoreResult>(rows.length);
    const plain: Row[] = [];
    const shared: { rows: Row[]; prefix: number }[] = [];
    let k = 0;
    for (const group of groups) {
      const members = rows.slice(k, k + group.length);
      k += group.length;
      if (members.length === 0) continue;
      const prefix = Math.min(commonPrefix(members.map((r) => r.input)), ...members.map((r) => r.input.length - r.n));
      if (members.length < 2 || prefix < 1) plain.push(...members);
      else shared.push({ rows: members, prefix });
    }
    await this.scoreRows(plain, batchSize, results);
    // Longest prefixes first, `batchSize` groups a window: one prefix run, then their requests.
    shared.sort((a, b) => b.prefix - a.prefix || a.rows[0]!.index - b.rows[0]!.index);
    const windows: SharedWindow[] = [];
    for (let start = 0; start < shared.length; start += batchSize)
      windows.push(sharedWindow(shared.slice(start, start + batchSize), batchSize));
    const { backend } = this;
    if (backend.kind === 'streamed') await this.streamSharedWindows(backend, windows, results);
    else for (const w of windows) await this.scoreSharedWindow(backend.weights, w, results);
    k = 0;
    return groups.map((g) => g.map(() => results[k++]!));
  }

  /** Checks requests and lays them out as the graph takes them. */
  private rows(requests: readonly ScoreRequest[]): Row[] {
    const V = this.config.vocabSize;
    return requests.map((r, i) => {
      if (r.continuation.length === 0) throw new ConfigError(`request ${i}: empty continuation`);
      if (r.context.length === 0) throw new ConfigError(`request ${i}: empty context (start it with the EOD token)`);
      const all = [...r.context, ...r.continuation];
      for (const id of all)
        if (!Number.isInteger(id) || id < 0 || id >= V)
          throw new ConfigError(`request ${i}: token id ${id} is outside [0, ${V})`);
      // Inputs are all but the last token; keep the rightmost max_positions (left truncation).
      const keep = Math.min(all.length - 1, this.config.maxPositions);
      if (r.continuation.length > keep)
        throw new ConfigError(
          `request ${i}: continuation of ${r.continuation.length} tokens exceeds max_position_embeddings`,
        );
      return {
        index: i,
        input: all.slice(all.length - 1 - keep, -1),
        target: all.slice(all.length - keep),
        n: r.continuation.length,
      };
    });
  }

  /** Scores rows whole, longest first, into `results` at their indices. */
  private async scoreRows(rows: readonly Row[], batchSize: number, results: ScoreResult[]): Promise<void> {
    const order = [...rows].sort((a, b) => b.input.length - a.input.length || a.index - b.index);
    const batches: ScoreBatch[] = [];
    for (let start = 0; start < order.length; start += batchSize)
      batches.push(scoreBatch(order.slice(start, start + batchSize)));
    const { backend } = this;
    if (backend.kind === 'streamed') return this.streamBatches(backend, batches, results);
    for (const b of batches) {
      const r = await backend.session.run({
        ...backend.weights,
        input_ids: { data: b.ids, dims: [b.batch, b.seq] },
        position_ids: { data: b.positions, dims: [b.batch, b.seq] },
        attention_bias: { data: causalBias(b.seq), dims: [1, 1, b.seq, b.seq] },
        ...scoredFeeds(b),
      });
      collect(b.rows, r, results);
    }
  }

  /**
   * Batches through the checkpoint a stage at a time, as many batches a pass as their residual
   * streams fit in the activation budget: the embedding looked up, each layer run on every batch
   * with its weights read once, then the head.
   */
  private async streamBatches(
    backend: Extract<Backend, { kind: 'streamed' }>,
    batches: readonly ScoreBatch[],
    results: ScoreResult[],
  ): Promise<void> {
    const H = this.config.hiddenSize;
    const bytesOf = (b: ScoreBatch): number => 4 * b.batch * b.seq * H;
    for (let start = 0; start < batches.length; ) {
      let end = start;
      let bytes = 0;
      while (end < batches.length && (end === start || bytes + bytesOf(batches[end]!) <= backend.activationBytes))
        bytes += bytesOf(batches[end++]!);
      const pass = batches.slice(start, end);
      start = end;
      let residuals: Float32Array[] = [];
      const biases = new Map<number, Float32Array>();
      const biasOf = (seq: number): Float32Array => {
        let bias = biases.get(seq);
        if (!bias) {
          bias = causalBias(seq);
          biases.set(seq, bias);
        }
        return bias;
      };
      for await (const { stage, weights } of backend.stream.pass()) {
        if (stage.name === 'embed') {
          residuals = pass.map((b) => embed(weights.get('gpt_neox.embed_in.weight')!, b.ids, H));
          continue;
        }
        const feeds = stageFeeds(this.config, weights);
        for (let i = 0; i < pass.length; i++) {
          const b = pass[i]!;
          const residual = { data: residuals[i]!, dims: [b.batch, b.seq, H] };
          if (stage.name === 'head') {
            collect(b.rows, await backend.head.run({ ...feeds, residual, ...scoredFeeds(b) }), results);
          } else {
            const r = await backend.block.run({
              ...feeds,
              residual,
              position_ids: { data: b.positions, dims: [b.batch, b.seq] },
              attention_bias: { data: biasOf(b.seq), dims: [1, 1, b.seq, b.seq] },
            });
            residuals[i] = r.residual_out!.data as Float32Array;
          }
        }
      }
    }
  }

  /**
   * One window of groups: their prefixes in one batch (right-padded; causal attention keeps the
   * padding out of earlier positions), then their rows in batches, each row given its group's keys
   * and values with the slots past its prefix masked.
   */
  private async scoreSharedWindow(
    weights: Record<string, HostTensor | DeviceTensor>,
    w: SharedWindow,
    results: ScoreResult[],
  ): Promise<void> {
    this.shared ??= sharedContextGraphs(this.config, this.runtime);
    const graphs = await this.shared;
    const L = this.config.numLayers;
    const present = await graphs.prefix.run({
      ...weights,
      input_ids: { data: w.ids, dims: [w.groups, w.prefix] },
      position_ids: { data: w.positions, dims: [w.groups, w.prefix] },
      attention_bias: { data: causalBias(w.prefix), dims: [1, 1, w.prefix, w.prefix] },
    });
    for (const b of w.batches) {
      const feeds: Record<string, HostTensor> = {};
      for (let i = 0; i < L; i++) {
        for (const part of ['key', 'value'] as const)
          feeds[`past.${i}.${part}`] = this.past(present[`present.${i}.${part}`]!.data as Float32Array, w, b);
      }
      const r = await graphs.rest.run({ ...weights, ...feeds, ...restFeeds(w, b) });
      collect(b.rows, r, results);
    }
  }

  /** A batch's keys or values of its groups' prefixes, [batch, heads, prefix, head_dim], from the window's [groups, …]. */
  private past(cache: Float32Array, w: SharedWindow, b: SharedBatch): HostTensor {
    const nh = this.config.numHeads;
    const hd = headDim(this.config);
    const block = nh * w.prefix * hd;
    const past = new Float32Array(b.batch * block);
    b.group.forEach((g, k) => {
      past.set(cache.subarray(g * block, (g + 1) * block), k * block);
    });
    return { data: past, dims: [b.batch, nh, w.prefix, hd] };
  }

  /**
   * Windows of groups through the checkpoint a stage at a time, as many windows a pass as their
   * residual streams (prefixes and rows) fit in the activation budget: at each layer each window's
   * prefix runs, and its rows run against that layer's keys and values, which are then dropped.
   */
  private async streamSharedWindows(
    backend: Extract<Backend, { kind: 'streamed' }>,
    windows: readonly SharedWindow[],
    results: ScoreResult[],
  ): Promise<void> {
    if (windows.length === 0) return;
    this.streamedShared ??= Promise.all([
      compile(streamedPrefixBlockGraph(this.config), this.runtime),
      compile(streamedRestBlockGraph(this.config), this.runtime),
    ]);
    const [prefixBlock, restBlock] = await this.streamedShared;
    const H = this.config.hiddenSize;
    const bytesOf = (w: SharedWindow): number =>
      4 * H * (w.groups * w.prefix + w.batches.reduce((a, b) => a + b.batch * b.seq, 0));
    for (let start = 0; start < windows.length; ) {
      let end = start;
      let bytes = 0;
      while (end < windows.length && (end === start || bytes + bytesOf(windows[end]!) <= backend.activationBytes))
        bytes += bytesOf(windows[end++]!);
      const pass = windows.slice(start, end);
      start = end;
      let prefixes: Float32Array[] = [];
      let rows: Float32Array[][] = [];
      for await (const { stage, weights } of backend.stream.pass()) {
        if (stage.name === 'embed') {
          const table = weights.get('gpt_neox.embed_in.weight')!;
          prefixes = pass.map((w) => embed(table, w.ids, H));
          rows = pass.map((w) => w.batches.map((b) => embed(table, b.ids, H)));
          continue;
        }
        const feeds = stageFeeds(this.config, weights);
        for (const [k, w] of pass.entries()) {
          if (stage.name === 'head') {
            for (const [j, b] of w.batches.entries()) {
              const residual = { data: rows[k]![j]!, dims: [b.batch, b.seq, H] };
              collect(b.rows, await backend.head.run({ ...feeds, residual, ...scoredFeeds(b) }), results);
            }
            continue;
          }
          const present = await prefixBlock.run({
            ...feeds,
            residual: { data: prefixes[k]!, dims: [w.groups, w.prefix, H] },
            position_ids: { data: w.positions, dims: [w.groups, w.prefix] },
            attention_bias: { data: causalBias(w.prefix), dims: [1, 1, w.prefix, w.prefix] },
          });
          prefixes[k] = present.residual_out!.data as Float32Array;
          const [key, value] = ['present.0.key', 'present.0.value'].map((n) => present[n]!.data as Float32Array);
          for (const [j, b] of w.batches.entries()) {
            const r = await restBlock.run({
              ...feeds,
              ...restFeeds(w, b),
              residual: { data: rows[k]![j]!, dims: [b.batch, b.seq, H] },
              'past.0.key': this.past(key!, w, b),
              'past.0.value': this.past(value!, w, b),
            });
            rows[k]![j] = r.residual_out!.data as Float32Array;
          }
        }
      }
    }
  }
}

/** A batch of a shared window: rows against their groups' prefixes. */
interface SharedBatch extends ScoreBatch {
  /** Each row's group in the window. */
  group: number[];
  /** [batch, 1, seq, prefix + seq]: a row's own prefix and its causal part visible. */
  bias: Float32Array;
}

/** A window of groups laid out for the graphs: the prefixes' ids and positions [groups, prefix], and the rows' batches. */
interface SharedWindow {
  groups: number;
  /** The window's longest prefix; shorter ones are right-padded. */
  prefix: number;
  ids: BigInt64Array;
  positions: BigInt64Array;
  batches: SharedBatch[];
}

function sharedWindow(window: readonly { rows: Row[]; prefix: number }[], batchSize: number): SharedWindow {
  const G = window.length;
  const P = window[0]!.prefix;
  const ids = new BigInt64Array(G * P);
  const positions = new BigInt64Array(G * P);
  window.forEach((g, b) => {
    const input = g.rows[0]!.input;
    for (let t = 0; t < P; t++) {
      ids[b * P + t] = BigInt(t < g.prefix ? input[t]! : 0);
      positions[b * P + t] = BigInt(t);
    }
  });
  const members = window.flatMap((g, w) =>
    g.rows.map((row) => ({ row, group: w, prefix: g.prefix, rest: row.input.length - g.prefix })),
  );
  members.sort((a, b) => b.rest - a.rest || a.row.index - b.row.index);
  const batches: SharedBatch[] = [];
  for (let start = 0; start < members.length; start += batchSize) {
    const chunk = members.slice(start, start + batchSize);
    const batch = chunk.length;
    const seq = chunk[0]!.rest;
    const scored = chunk.reduce((a, m) => a + m.row.n, 0);
    const rowIds = new BigInt64Array(batch * seq);
    const rowPositions = new BigInt64Array(batch * seq);
    const bias = new Float32Array(batch * seq * (P + seq));
    const index = new BigInt64Array(scored);
    const targets = new BigInt64Array(scored);
    let k = 0;
    chunk.forEach(({ row, prefix, rest }, b) => {
      for (let t = 0; t < seq; t++) {
        rowIds[b * seq + t] = BigInt(row.input[prefix + t] ?? 0);
        // Padding past a row's end sits at position 0: a prefix near the last position has no room after it.
        rowPositions[b * seq + t] = BigInt(t < rest ? prefix + t : 0);
        const biasRow = bias.subarray((b * seq + t) * (P + seq), (b * seq + t + 1) * (P + seq));
        biasRow.fill(MASK_VALUE, prefix, P);
        biasRow.fill(MASK_VALUE, P + t + 1);
      }
      for (let t = rest - row.n; t < rest; t++) {
        index[k] = BigInt(b * seq + t);
        targets[k++] = BigInt(row.target[prefix + t]!);
      }
    });
    batches.push({
      rows: chunk.map((m) => m.row),
      group: chunk.map((m) => m.group),
      batch,
      seq,
      ids: rowIds,
      positions: rowPositions,
      bias,
      index,
      targets,
    });
  }
  return { groups: G, prefix: P, ids, positions, batches };
}

/** A shared batch's own feeds (not its keys and values). */
function restFeeds(w: SharedWindow, b: SharedBatch): Record<string, HostTensor> {
  return {
    input_ids: { data: b.ids, dims: [b.batch, b.seq] },
    position_ids: { data: b.positions, dims: [b.batch, b.seq] },
    attention_bias: { data: b.bias, dims: [b.batch, 1, b.seq, w.prefix + b.seq] },
    ...scoredFeeds(b),
  };
}

/** Rows of similar length as one batch: right-padded ids, positions 0.., and the flat indices and targets of the scored positions. */
function scoreBatch(rows: Row[]): ScoreBatch {
  const batch = rows.length;
  const seq = rows[0]!.input.length;
  const scored = rows.reduce((a, row) => a + row.n, 0);
  const ids = new BigInt64Array(batch * seq);
  const positions = new BigInt64Array(batch * seq);
  const index = new BigInt64Array(scored);
  const targets = new BigInt64Array(scored);
  let k = 0;
  rows.forEach((row, b) => {
    // Right padding: causal attention keeps earlier positions unaffected.
    for (let t = 0; t < seq; t++) {
      ids[b * seq + t] = BigInt(row.input[t] ?? 0);
      positions[b * seq + t] = BigInt(t);
    }
    for (let t = row.input.length - row.n; t < row.input.length; t++) {
      index[k] = BigInt(b * seq + t);
      targets[k++] = BigInt(row.target[t]!);
    }
  });
  return { rows, batch, seq, ids, positions, index, targets };
}

function scoredFeeds(b: ScoreBatch): Record<string, HostTensor> {
  return {
    score_index: { data: b.index, dims: [b.index.length] },
    score_targets: { data: b.targets, dims: [b.targets.length] },
  };
}

/** [seq, seq] additive causal mask. */
function causalBias(seq: number): Float32Array {
  const bias = new Float32Array(seq * seq);
  for (let t = 0; t < seq; t++) for (let u = t + 1; u < seq; u++) bias[t * seq + u] = MASK_VALUE;
  return bias;
}

/** Each row's per-token log-probabilities and greedy flags from a run, in the order it scored them. */
function collect(chunk: readonly Row[], r: Record<string, HostTensor>, results: ScoreResult[]): void {
  const logprob = r.logprob!.data as Float32Array;
  const greedy = r.greedy!.data as Uint8Array;
  let k = 0;
  for (const row of chunk) {
    const tokenLogprobs = Array.from(logprob.subarray(k, k + row.n));
    const isGreedy = greedy.subarray(k, k + row.n).every(Boolean);
    k += row.n;
    results[row.index] = { logprob: tokenLogprobs.reduce((a, c) => a + c, 0), tokenLogprobs, isGreedy };
  }
}
