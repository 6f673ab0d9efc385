/**
 * Log-likelihood scoring of continuations, the primitive every benchmark and analysis needs:
 * for (context, continuation) pairs, the summed log-probability of the continuation tokens and
 * whether greedy decoding would have produced them (lm-evaluation-harness's `is_greedy`).
 * Only per-token target log-probabilities come back from the graph, never full logits.
 */
import { Graph } from '../graph/graph.js';
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
import { buildGptNeoX, lmHead, MASK_VALUE } from './gpt-neox.js';
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

export class Scorer {
  private constructor(
    readonly config: NeoXConfig,
    /** The weights as fed each run: host views, or on WebGPU copies in GPU memory. */
    private readonly weights: Record<string, HostTensor | DeviceTensor>,
    private readonly session: CompiledGraph,
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
    const rows = op.gather(op.reshape(final, ['batch*seq', config.hiddenSize]), index, 0);
    const logits = lmHead(config, lookup, rows);
    const logprob = op.neg(op.crossEntropy(logits, targets));
    const targetLogit = op.reshape(op.gatherElements(logits, op.reshape(targets, ['scored', 1]), 1), ['scored']);
    const greedy = op.equal(op.max(logits, [-1]), targetLogit);
    const session = await compile({ graph, outputs: { logprob, greedy } }, runtime);
    return new Scorer(config, await residentParameterFeeds(config, params, runtime.provider), session);
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
    const V = this.config.vocabSize;
    const rows = requests.map((r, i) => {
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
    const order = [...rows].sort((a, b) => b.input.length - a.input.length || a.index - b.index);
    const results = new Array<ScoreResult>(requests.length);
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
      const bias = new Float32Array(seq * seq);
      for (let t = 0; t < seq; t++) for (let u = t + 1; u < seq; u++) bias[t * seq + u] = MASK_VALUE;
      const r = await this.session.run({
        ...this.weights,
        input_ids: { data: ids, dims: [batch, seq] },
        position_ids: { data: positions, dims: [batch, seq] },
        attention_bias: { data: bias, dims: [1, 1, seq, seq] },
        score_index: { data: index, dims: [scored] },
        score_targets: { data: targets, dims: [scored] },
      });
      const logprob = r.logprob!.data as Float32Array;
      const greedy = r.greedy!.data as Uint8Array;
      k = 0;
      for (const row of chunk) {
        const tokenLogprobs = Array.from(logprob.subarray(k, k + row.n));
        const isGreedy = greedy.subarray(k, k + row.n).every(Boolean);
        k += row.n;
        results[row.index] = { logprob: tokenLogprobs.reduce((a, c) => a + c, 0), tokenLogprobs, isGreedy };
      }
    }
    return results;
  }
}
