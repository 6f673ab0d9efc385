/**
 * Runs the model with named activations as extra outputs of its graph, and with interventions as
 * extra inputs. A graph is built and compiled once per set of names (sorted), edit structure and
 * logits request, then reused for any batch and length: batch and sequence are symbolic. Only what
 * was asked for comes back. The fused attention serves every name but the attention scores and
 * pattern, which it never materialises; asking for or editing either builds the decomposed one.
 *
 * Given a LayerStream instead of parameters, each run reads the checkpoint a stage at a time: the
 * embedding, one block graph per layer (compiled once for every layer that asks the same names, its
 * weights fed under layer 0's names), then the final LayerNorm and head; the same ops on the same
 * weights as the whole graph.
 */
import { Graph, type Tensor } from '../graph/graph.js';
import * as op from '../graph/ops.js';
import { type CompiledGraph, compile, type HostTensor, type RuntimeOptions } from '../runtime/session.js';
import { ConfigError } from '../util/errors.js';
import type { NeoXConfig } from './config.js';
import { buildGptNeoX, lmHead, MASK_VALUE } from './gpt-neox.js';
import { type Activation, ActivationHooks, DECOMPOSED_ONLY, resolveActivationNames } from './hooks.js';
import { type EditPlan, type Interventions, planEditor, planEdits } from './interventions.js';
import { embed, LayerStream, stageFeeds } from './layer-stream.js';
import { DEFAULT_ACTIVATION_BYTES } from './memory-budget.js';
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

/** The streamed graphs: the embedding (from token ids), one layer (residual to residual), the final LayerNorm and head. */
type StreamedPart = 'embed' | 'block' | 'head';

/** `blocks.7.attn.hook_z` → `blocks.0.attn.hook_z`: the name inside the one block graph. */
const localName = (name: string): string => name.replace(/^blocks\.\d+\./, 'blocks.0.');

/** The stage (layer-stream.ts) that computes a named activation. */
function stageOfName(name: string): string {
  if (name === 'hook_embed') return 'embed';
  const m = /^blocks\.(\d+)\./.exec(name);
  return m ? `layer.${m[1]}` : 'head';
}

/** The part of `plan` at one stage, under the names its graph uses. */
function stagePlan(plan: EditPlan, stage: string): EditPlan {
  const edits = plan.edits.filter((e) => stageOfName(e.name) === stage).map((e) => ({ ...e, name: localName(e.name) }));
  const feeds: Record<string, HostTensor> = {};
  for (const [name, feed] of Object.entries(plan.feeds)) {
    const m = /^edit:(.+):(set|value|mean|factor)$/.exec(name)!;
    if (stageOfName(m[1]!) === stage) feeds[`edit:${localName(m[1]!)}:${m[2]}`] = feed;
  }
  return { edits, key: JSON.stringify(edits), feeds };
}

export class ActivationRunner {
  private readonly sessions = new Map<string, Promise<CompiledGraph>>();
  private readonly weights?: Record<string, HostTensor>;
  private readonly stream?: LayerStream;

  /**
   * `weights`: the parameters in memory, or a checkpoint to stream a layer at a time.
   * `activationBytes`: a streamed runner's budget for what one run keeps (the studies size their
   * runs by it, so that a pass over the checkpoint serves as many rows as fit).
   */
  constructor(
    readonly config: NeoXConfig,
    weights: Params | LayerStream,
    private readonly runtime: RuntimeOptions = {},
    readonly activationBytes = DEFAULT_ACTIVATION_BYTES,
  ) {
    if (weights instanceof LayerStream) this.stream = weights;
    else this.weights = parameterFeeds(config, weights);
  }

  /** Whether each run reads the checkpoint a layer at a time. */
  get streamed(): boolean {
    return this.stream !== undefined;
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
    if (this.stream) return this.runStreamed(this.stream, ids, batch, seq, resolved, plan, logits, decomposed);
    const key = JSON.stringify([names, plan.key, logits, decomposed]);
    let session = this.sessions.get(key);
    if (!session) {
      session = this.compile(names, plan, logits, decomposed);
      session.catch(() => this.sessions.delete(key));
      this.sessions.set(key, session);
    }
    const { positions, bias } = positionsAndBias(batch, seq, decomposed);
    const r = await (await session).run({
      ...this.weights!,
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

  /**
   * One run, a stage at a time from the stream: each stage's graph gets the residual stream, the
   * names and edits that fall in it (under layer 0's names in a block), and hands back the next
   * residual stream and its activations. The head is skipped when nothing is asked of it.
   */
  private async runStreamed(
    stream: LayerStream,
    ids: BigInt64Array,
    batch: number,
    seq: number,
    resolved: readonly string[],
    plan: EditPlan,
    logits: LogitsRequest,
    decomposed: boolean,
  ): Promise<ActivationRun> {
    const H = this.config.hiddenSize;
    const { positions, bias } = positionsAndBias(batch, seq, decomposed);
    const found = new Map<string, Activation>();
    let residual: Float32Array = new Float32Array(0);
    let logitsOut: Activation | undefined;
    for await (const { stage, weights } of stream.pass()) {
      const names = resolved.filter((n) => stageOfName(n) === stage.name);
      const edits = stagePlan(plan, stage.name);
      const part: StreamedPart = stage.name === 'embed' ? 'embed' : stage.name === 'head' ? 'head' : 'block';
      if (part === 'embed' && names.length === 0 && edits.edits.length === 0) {
        residual = embed(weights.get('gpt_neox.embed_in.weight')!, ids, H);
        continue;
      }
      if (part === 'head' && names.length === 0 && logits === 'none') break;
      const local = names.map(localName);
      const session = await this.streamedSession(part, [...local].sort(), edits, logits, decomposed);
      const r = await session.run({
        ...stageFeeds(this.config, weights),
        ...edits.feeds,
        input_ids: { data: ids, dims: [batch, seq] },
        residual: { data: residual, dims: [batch, seq, H] },
        position_ids: { data: positions, dims: [batch, seq] },
        attention_bias: { data: bias, dims: [1, 1, seq, seq] },
        last_position: { data: BigInt64Array.of(BigInt(seq - 1)), dims: [] },
      });
      names.forEach((n, i) => {
        found.set(n, activation(r[local[i]!]!));
      });
      if (part === 'head') {
        if (logits !== 'none') logitsOut = activation(r.logits!);
      } else {
        residual = r.residual_out!.data as Float32Array;
      }
    }
    const cache: ActivationCache = new Map(resolved.map((n) => [n, found.get(n)!]));
    return { cache, ...(logitsOut && { logits: logitsOut }) };
  }

  private streamedSession(
    part: StreamedPart,
    names: readonly string[],
    plan: EditPlan,
    logits: LogitsRequest,
    decomposed: boolean,
  ): Promise<CompiledGraph> {
    const key = JSON.stringify([part, names, plan.key, part === 'head' ? logits : null, decomposed]);
    let session = this.sessions.get(key);
    if (!session) {
      session = this.compileStreamed(part, names, plan, logits, decomposed);
      session.catch(() => this.sessions.delete(key));
      this.sessions.set(key, session);
    }
    return session;
  }

  private async compileStreamed(
    part: StreamedPart,
    names: readonly string[],
    plan: EditPlan,
    logits: LogitsRequest,
    decomposed: boolean,
  ): Promise<CompiledGraph> {
    const graph = new Graph();
    const { lookup } = parameterInputs(graph, this.config);
    const hooks = new ActivationHooks(
      names,
      plan.edits.map((e) => e.name),
      planEditor(this.config, plan, graph),
    );
    const outputs: Record<string, Tensor> = {};
    if (part === 'embed') {
      const ids = graph.input('input_ids', 'int64', ['batch', 'seq']);
      outputs.residual_out = buildGptNeoX(this.config, lookup, { ids, layers: 0, finalNorm: false, hooks }).final;
    } else {
      const residual = graph.input('residual', 'float32', ['batch', 'seq', this.config.hiddenSize]);
      if (part === 'block') {
        const positions = graph.input('position_ids', 'int64', ['batch', 'seq']);
        const bias = graph.input('attention_bias', 'float32', [1, 1, 'seq', 'seq']);
        const { final } = buildGptNeoX(this.config, lookup, {
          residual,
          positions,
          attentionBias: bias,
          fused: !decomposed,
          hooks,
          layers: 1,
          finalNorm: false,
        });
        outputs.residual_out = final;
      } else {
        const { final } = buildGptNeoX(this.config, lookup, { residual, layers: 0, hooks });
        if (logits === 'all') outputs.logits = lmHead(this.config, lookup, final);
        if (logits === 'last')
          outputs.logits = lmHead(this.config, lookup, op.gather(final, graph.input('last_position', 'int64', []), 1));
      }
    }
    Object.assign(outputs, Object.fromEntries(hooks.outputs));
    return compile({ graph, outputs }, { ...this.runtime, cache: false });
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

/** Positions 0.. of every row, and the causal mask: −inf where the decomposed attention runs (as TransformerLens), float32's lowest for the fused op. */
function positionsAndBias(
  batch: number,
  seq: number,
  decomposed: boolean,
): { positions: BigInt64Array; bias: Float32Array } {
  const positions = new BigInt64Array(batch * seq);
  for (let b = 0; b < batch; b++) for (let t = 0; t < seq; t++) positions[b * seq + t] = BigInt(t);
  const bias = new Float32Array(seq * seq);
  for (let t = 0; t < seq; t++) bias.fill(decomposed ? -Infinity : MASK_VALUE, t * seq + t + 1, (t + 1) * seq);
  return { positions, bias };
}

function activation(t: HostTensor): Activation {
  return { data: t.data as Float32Array, dims: [...t.dims] };
}
