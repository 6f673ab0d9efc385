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
import { formatParameterFeeds, formatParameterInputs, type WeightFormat } from './int8.js';
import { type Params, releaseFeeds } from './params.js';

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

export class Scorer {
  /** The shared-context graph, compiled on first use. */
  private packed?: Promise<CompiledGraph>;

  private constructor(
    readonly config: NeoXConfig,
    /** The weights as fed each run: host views, or on WebGPU copies in GPU memory. */
    private readonly weights: Record<string, HostTensor | DeviceTensor>,
    private readonly session: CompiledGraph,
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
    params: Params,
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
    return new Scorer(config, feeds, session, runtime, weights);
  }

  /** Frees the weights' copies in GPU memory (WebGPU); the scorer cannot be used after. */
  release(): void {
    releaseFeeds(this.weights);
  }

  /** Ends onnxruntime's profiling of a scorer created with `profile`, writing its JSON file. */
  endProfiling(): void {
    this.session.endProfiling();
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
    await this.scoreRows(plain, batchSize, results);
    // Longest packed rows first, `batchSize` groups a run.
    const packed = shared.flatMap((g) => packGroup(g.rows, g.prefix, this.config.maxPositions));
    packed.sort((a, b) => b.length - a.length || a.rows[0]!.index - b.rows[0]!.index);
    for (let start = 0; start < packed.length; start += batchSize)
      await this.scorePacked(packed.slice(start, start + batchSize), results);
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
      const r = await this.session.run({
        ...this.weights,
        input_ids: { data: ids, dims: [batch, seq] },
        position_ids: { data: positions, dims: [batch, seq] },
        attention_bias: { data: causalBias(seq), dims: [1, 1, seq, seq] },
        score_index: { data: index, dims: [scored] },
        score_targets: { data: targets, dims: [scored] },
      });
      collect(chunk, r, results);
    }
  }

  /**
   * Packed groups, one a row (right-padded; padding attends causally and is never scored): each
   * row's prefix attends causally, each request's tokens to the prefix and to their own earlier
   * tokens, at the positions they have in the request.
   */
  private async scorePacked(chunk: readonly PackedGroup[], results: ScoreResult[]): Promise<void> {
    this.packed ??= compile(packedGraph(this.config, this.weightFormat), this.runtime);
    const graph = await this.packed;
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
    const r = await graph.run({
      ...this.weights,
      input_ids: { data: ids, dims: [batch, seq] },
      position_ids: { data: positions, dims: [batch, seq] },
      attention_bias: { data: bias, dims: [batch, 1, seq, seq] },
      score_index: { data: index, dims: [scored] },
      score_targets: { data: targets, dims: [scored] },
    });
    collect(
      chunk.flatMap((g) => g.rows),
      r,
      results,
    );
  }
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
