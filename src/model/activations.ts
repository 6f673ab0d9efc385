/**
 * Runs the model with named activations as extra outputs of its graph, and with interventions as
 * extra inputs. A graph is built and compiled once per set of names (sorted), edit structure and
 * logits request, then reused for any batch and length: batch and sequence are symbolic. Only what
 * was asked for comes back. The fused attention serves every name but the attention scores and
 * pattern, which it never materialises; asking for or editing either builds the decomposed one.
 */
import { Graph, type Tensor } from '../graph/graph.js';
import * as op from '../graph/ops.js';
import { type CompiledGraph, compile, type HostTensor, type RuntimeOptions } from '../runtime/session.js';
import { ConfigError } from '../util/errors.js';
import type { NeoXConfig } from './config.js';
import { buildGptNeoX, lmHead, MASK_VALUE } from './gpt-neox.js';
import { type Activation, ActivationHooks, DECOMPOSED_ONLY, resolveActivationNames } from './hooks.js';
import { type Interventions, planEditor, planEdits } from './interventions.js';
import { type Params, parameterFeeds, parameterInputs } from './params.js';

/** The named activations of one run, by name, in forward order. */
export type ActivationCache = Map<string, Activation>;

/** `all`: [batch, seq, vocab]; `last`: the last position's, [batch, vocab]; `none` (default). */
export type LogitsRequest = 'all' | 'last' | 'none';

export interface ActivationRequest {
  /** Names or globs (`blocks.*.attn.hook_pattern`); each must match at least one name. */
  names: readonly string[];
  interventions?: Interventions;
  logits?: LogitsRequest;
}

export interface ActivationRun {
  cache: ActivationCache;
  logits?: Activation;
}

export class ActivationRunner {
  private readonly sessions = new Map<string, Promise<CompiledGraph>>();
  private readonly weights: Record<string, HostTensor>;

  constructor(
    readonly config: NeoXConfig,
    params: Params,
    private readonly runtime: RuntimeOptions = {},
  ) {
    this.weights = parameterFeeds(config, params);
  }

  /** How many graphs this runner has compiled (one per set of names, edit structure and logits request). */
  get compiledGraphs(): number {
    return this.sessions.size;
  }

  /** Runs equal-length rows `ids` [batch, seq]. */
  async run(ids: BigInt64Array, batch: number, request: ActivationRequest): Promise<ActivationRun> {
    const seq = ids.length / batch;
    if (!Number.isInteger(seq) || seq < 1)
      throw new ConfigError(`${ids.length} token ids do not make ${batch} rows of at least one token`);
    if (seq > this.config.maxPositions)
      throw new ConfigError(
        `rows of ${seq} tokens are longer than max_position_embeddings ${this.config.maxPositions}`,
      );
    const logits = request.logits ?? 'none';
    if (request.names.length === 0 && logits === 'none')
      throw new ConfigError('nothing to compute: ask for at least one named activation or the logits');
    const resolved = resolveActivationNames(this.config, request.names);
    const plan = planEdits(this.config, batch, seq, request.interventions);
    const names = [...resolved].sort();
    const decomposed = [...names, ...plan.edits.map((e) => e.name)].some((n) => DECOMPOSED_ONLY.test(n));
    const key = JSON.stringify([names, plan.key, logits, decomposed]);
    let session = this.sessions.get(key);
    if (!session) {
      session = this.compile(names, plan, logits, decomposed);
      session.catch(() => this.sessions.delete(key));
      this.sessions.set(key, session);
    }
    const positions = new BigInt64Array(batch * seq);
    for (let b = 0; b < batch; b++) for (let t = 0; t < seq; t++) positions[b * seq + t] = BigInt(t);
    // TransformerLens masks scores with −inf; the fused attention op takes float32's lowest instead.
    const bias = new Float32Array(seq * seq);
    for (let t = 0; t < seq; t++) bias.fill(decomposed ? -Infinity : MASK_VALUE, t * seq + t + 1, (t + 1) * seq);
    const r = await (await session).run({
      ...this.weights,
      ...plan.feeds,
      input_ids: { data: ids, dims: [batch, seq] },
      position_ids: { data: positions, dims: [batch, seq] },
      attention_bias: { data: bias, dims: [1, 1, seq, seq] },
      ...(logits === 'last' && { last_position: { data: BigInt64Array.of(BigInt(seq - 1)), dims: [] } }),
    });
    const cache: ActivationCache = new Map();
    for (const name of resolved) cache.set(name, activation(r[name]!));
    return { cache, ...(logits !== 'none' && { logits: activation(r.logits!) }) };
  }

  /** Frees the compiled sessions. */
  async release(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of sessions) await (await s.catch(() => undefined))?.release();
  }

  private async compile(
    names: readonly string[],
    plan: ReturnType<typeof planEdits>,
    logits: LogitsRequest,
    decomposed: boolean,
  ): Promise<CompiledGraph> {
    const graph = new Graph();
    const { lookup } = parameterInputs(graph, this.config);
    const ids = graph.input('input_ids', 'int64', ['batch', 'seq']);
    const positions = graph.input('position_ids', 'int64', ['batch', 'seq']);
    const bias = graph.input('attention_bias', 'float32', [1, 1, 'seq', 'seq']);
    const hooks = new ActivationHooks(
      names,
      plan.edits.map((e) => e.name),
      planEditor(this.config, plan, graph),
    );
    const { final } = buildGptNeoX(this.config, lookup, {
      ids,
      positions,
      attentionBias: bias,
      fused: !decomposed,
      hooks,
    });
    const outputs: Record<string, Tensor> = Object.fromEntries(hooks.outputs);
    if (logits === 'all') outputs.logits = lmHead(this.config, lookup, final);
    if (logits === 'last')
      outputs.logits = lmHead(this.config, lookup, op.gather(final, graph.input('last_position', 'int64', []), 1));
    return compile({ graph, outputs }, { ...this.runtime, cache: false });
  }
}

function activation(t: HostTensor): Activation {
  return { data: t.data as Float32Array, dims: [...t.dims] };
}
