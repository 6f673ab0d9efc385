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
import type { NeoXConfig } from './config.js';
import { buildGptNeoX, lmHead, MASK_VALUE, type WeightLookup } from './gpt-neox.js';
import { formatParameterFeeds, formatParameterInputs, type Int8Weights, type WeightFormat } from './int8.js';
import { embed, type LayerStream, stageFeeds } from './layer-stream.js';
import { DEFAULT_ACTIVATION_BYTES } from './memory-budget.js';
import { type Params, parameterInputs, releaseFeeds } from './params.js';

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
 * The graph of shared-context scoring: like the plain one, but each row carries its own
 * attention bias ([batch, 1, seq, seq]), so one row can hold a group's common prefix followed by
 * every request's remaining tokens, each of them attending to the prefix and to itself only.
 */
function packedGraph(config: NeoXConfig, weights: WeightFormat): { graph: Graph; outputs: Record<string, Tensor> } {
  const graph = new Graph();
  const lookup = formatParameterInputs(graph, config, weights);
  const ids = graph.input('input_ids', 'int64', ['batch', 'seq']);
  const positions = graph.input('position_ids', 'int64', ['batch', 'seq']);
  const bias = graph.input('attention_bias', 'float32', ['batch', 1, 'seq', 'seq']);
  const index = graph.input('score_index', 'int64', ['scored']);
  const targets = graph.input('score_targets', 'int64', ['scored']);
  const { final } = buildGptNeoX(config, lookup, { ids, positions, attentionBias: bias, fused: true });
  return { graph, outputs: scoringOutputs(config, lookup, final, index, targets) };
}

/**
 * One layer of the streamed model: the residual stream in, the residual stream out; layer 0's
 * parameter names. `perRowBias`: each row its own attention bias, as packed groups need.
 */
function streamedBlockGraph(config: NeoXConfig, perRowBias = false): { graph: Graph; outputs: Record<string, Tensor> } {
  const graph = new Graph();
  const { lookup } = parameterInputs(graph, config);
  const residual = graph.input('residual', 'float32', ['batch', 'seq', config.hiddenSize]);
  const positions = graph.input('position_ids', 'int64', ['batch', 'seq']);
  const bias = graph.input('attention_bias', 'float32', [perRowBias ? 'batch' : 1, 1, 'seq', 'seq']);
  const { final } = buildGptNeoX(config, lookup, {
    residual,
    positions,
    attentionBias: bias,
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

/** One batch of rows as the graphs take them. */
interface ScoreBatch {
  /** The scored rows, in the order of the scored positions. */
  rows: Row[];
  batch: number;
  seq: number;
  ids: BigInt64Array;
  positions: BigInt64Array;
  /** Each row's own attention bias [batch, 1, seq, seq] (packed groups); absent, causal for every row. */
  bias?: Float32Array;
  index: BigInt64Array;
  targets: BigInt64Array;
}

export class Scorer {
  /** The shared-context graph, compiled on first use. */
  private packed?: Promise<CompiledGraph>;
  /** Its streamed form, one layer with a bias per row, compiled on first use. */
  private streamedPacked?: Promise<CompiledGraph>;

  private constructor(
    readonly config: NeoXConfig,
    private readonly backend: Backend,
    private readonly runtime: RuntimeOptions,
    /** float32, or int8 linear weights (int8.ts). */
    readonly weightFormat: WeightFormat = 'float32',
  ) {}

  /**
   * The LM head runs only at the positions being scored (`score_index`, flat row indices into
   * [batch·seq]): a multiple-choice item scores a few tokens after a long context, and at Pythia's
   * vocabulary the head over every position costs more than the whole network below it.
   */
  static async create(
    config: NeoXConfig,
    params: Params | Int8Weights,
    runtime: RuntimeOptions = {},
    weights: WeightFormat = 'float32',
  ): Promise<Scorer> {
    const graph = new Graph();
    const lookup = formatParameterInputs(graph, config, weights);
    const ids = graph.input('input_ids', 'int64', ['batch', 'seq']);
    const positions = graph.input('position_ids', 'int64', ['batch', 'seq']);
    const bias = graph.input('attention_bias', 'float32', [1, 1, 'seq', 'seq']);
    const index = graph.input('score_index', 'int64', ['scored']);
    const targets = graph.input('score_targets', 'int64', ['scored']);
    const { final } = buildGptNeoX(config, lookup, { ids, positions, attentionBias: bias, fused: true });
    const session = await compile({ graph, outputs: scoringOutputs(config, lookup, final, index, targets) }, runtime);
    const feeds = await formatParameterFeeds(config, params, weights, runtime.provider);
    return new Scorer(config, { kind: 'resident', weights: feeds, session }, runtime, weights);
  }

  /**
   * A scorer that reads `stream`'s checkpoint a layer at a time: each call's rows go through the
   * embedding, then every layer (its weights read once for all of them), then the head, with the
   * same graphs and numbers as the resident scorer. The residual streams between layers take at most
   * `activationBytes` (one batch at least); rows beyond run in further passes over the checkpoint.
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
    await this.run(wholeBatches(rows, batchSize), results);
    return results;
  }

  /**
   * Scores groups of requests that share their first tokens (a multiple-choice item's choices, or a
   * partial item's contexts): the longest common prefix of a group's inputs, up to its first scored
   * position, runs once, in one row with each request's remaining tokens after it. Equal
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
    // Longest packed rows first, `batchSize` groups a run; a streamed scorer runs them with the plain rows in one pass.
    const packed = shared.flatMap((g) => packGroup(g.rows, g.prefix, this.config.maxPositions));
    packed.sort((a, b) => b.length - a.length || a.rows[0]!.index - b.rows[0]!.index);
    const batches = wholeBatches(plain, batchSize);
    for (let start = 0; start < packed.length; start += batchSize)
      batches.push(packedBatch(packed.slice(start, start + batchSize)));
    await this.run(batches, results);
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

  /** Runs batches into `results` at their rows' indices: one graph run each, or a streamed pass. */
  private async run(batches: readonly ScoreBatch[], results: ScoreResult[]): Promise<void> {
    const { backend } = this;
    if (backend.kind === 'streamed') return this.streamBatches(backend, batches, results);
    for (const b of batches) {
      // Packed groups carry a bias per row and run through their own graph.
      if (b.bias) this.packed ??= compile(packedGraph(this.config, this.weightFormat), this.runtime);
      const session = b.bias ? await this.packed! : backend.session;
      collect(b.rows, await session.run({ ...backend.weights, ...batchFeeds(b) }), results);
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
    if (batches.some((b) => b.bias))
      this.streamedPacked ??= compile(streamedBlockGraph(this.config, true), this.runtime);
    const perRow = batches.some((b) => b.bias) ? await this.streamedPacked! : undefined;
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
      // Each batch's feeds but its ids, made once a pass (a causal bias is seq² values).
      const fed = pass.map((b) => {
        const { input_ids: _, ...rest } = batchFeeds(b);
        return rest;
      });
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
            collect(b.rows, await backend.head.run({ ...feeds, ...fed[i], residual }), results);
          } else {
            const block = b.bias ? perRow! : backend.block;
            residuals[i] = (await block.run({ ...feeds, ...fed[i], residual })).residual_out!.data as Float32Array;
          }
        }
      }
    }
  }
}

/** Rows whole in batches of `batchSize`, longest first; right padding (causal attention keeps earlier positions unaffected). */
function wholeBatches(rows: readonly Row[], batchSize: number): ScoreBatch[] {
  const order = [...rows].sort((a, b) => b.input.length - a.input.length || a.index - b.index);
  const batches: ScoreBatch[] = [];
  for (let start = 0; start < order.length; start += batchSize) {
    const chunk = order.slice(start, start + batchSize);
    const batch = chunk.length;
    const seq = chunk[0]!.input.length;
    const scored = chunk.reduce((a, row) => a + row.n, 0);
    const ids = new BigInt64Array(batch * seq);
    const positions = new BigInt64Array(batch * seq);
    const index = new BigInt64Array(scored);
    const targets = new BigInt64Array(scored);
    let k = 0;
    chunk.forEach((row, b) => {
      for (let t = 0; t < seq; t++) {
        ids[b * seq + t] = BigInt(row.input[t] ?? 0);
        positions[b * seq + t] = BigInt(t);
      }
      for (let t = row.input.length - row.n; t < row.input.length; t++) {
        index[k] = BigInt(b * seq + t);
        targets[k++] = BigInt(row.target[t]!);
      }
    });
    batches.push({ rows: chunk, batch, seq, ids, positions, index, targets });
  }
  return batches;
}

/**
 * Packed groups, one a row (right-padded; padding attends causally and is never scored): each
 * row's prefix attends causally, each request's tokens to the prefix and to their own earlier
 * tokens, at the positions they have in the request.
 */
function packedBatch(chunk: readonly PackedGroup[]): ScoreBatch {
  const batch = chunk.length;
  const seq = chunk[0]!.length;
  const scored = chunk.reduce((a, g) => a + g.rows.reduce((n, row) => n + row.n, 0), 0);
  const ids = new BigInt64Array(batch * seq);
  const positions = new BigInt64Array(batch * seq);
  const bias = new Float32Array(batch * seq * seq).fill(MASK_VALUE);
  const index = new BigInt64Array(scored);
  const targets = new BigInt64Array(scored);
  let k = 0;
  chunk.forEach((g, b) => {
    const at = (t: number) => b * seq + t;
    const allow = (t: number, from: number, to: number) => bias.fill(0, at(t) * seq + from, at(t) * seq + to);
    for (let t = 0; t < g.prefix; t++) {
      ids[at(t)] = BigInt(g.rows[0]!.input[t]!);
      positions[at(t)] = BigInt(t);
      allow(t, 0, t + 1);
    }
    g.rows.forEach((row, m) => {
      const start = g.starts[m]!;
      for (let t = g.prefix; t < row.input.length; t++) {
        const p = start + t - g.prefix;
        ids[at(p)] = BigInt(row.input[t]!);
        positions[at(p)] = BigInt(t);
        allow(p, 0, g.prefix);
        allow(p, start, p + 1);
      }
      for (let t = row.input.length - row.n; t < row.input.length; t++) {
        index[k] = BigInt(at(start + t - g.prefix));
        targets[k++] = BigInt(row.target[t]!);
      }
    });
    for (let t = g.length; t < seq; t++) allow(t, 0, t + 1);
  });
  return { rows: chunk.flatMap((g) => g.rows), batch, seq, ids, positions, bias, index, targets };
}

/** A batch's feeds: ids, positions, its attention bias (per row, or the causal one), the scored positions. */
function batchFeeds(b: ScoreBatch): Record<string, HostTensor> {
  return {
    input_ids: { data: b.ids, dims: [b.batch, b.seq] },
    position_ids: { data: b.positions, dims: [b.batch, b.seq] },
    attention_bias: b.bias
      ? { data: b.bias, dims: [b.batch, 1, b.seq, b.seq] }
      : { data: causalBias(b.seq), dims: [1, 1, b.seq, b.seq] },
    score_index: { data: b.index, dims: [b.index.length] },
    score_targets: { data: b.targets, dims: [b.targets.length] },
  };
}

/** A group laid out in one row: its common prefix, then each request's tokens after it, from `starts[m]`. */
interface PackedGroup {
  rows: Row[];
  prefix: number;
  starts: number[];
  length: number;
}

/**
 * A group in rows of at most `maxLength` tokens (the rotary tables' length): as many requests as fit
 * after the prefix, the rest in further rows with the prefix again. A request alone always fits.
 */
function packGroup(rows: readonly Row[], prefix: number, maxLength: number): PackedGroup[] {
  const packed: PackedGroup[] = [];
  let current: PackedGroup | undefined;
  for (const row of rows) {
    const rest = row.input.length - prefix;
    if (!current || current.length + rest > maxLength) {
      current = { rows: [], prefix, starts: [], length: prefix };
      packed.push(current);
    }
    current.rows.push(row);
    current.starts.push(current.length);
    current.length += rest;
  }
  return packed;
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
