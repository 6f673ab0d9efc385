/**
 * Validation loss: the training step's forward pass and mean next-token cross-entropy over a
 * batch of samples [batch, seq+1] (inputs tokens[:-1], labels tokens[1:]), without gradients.
 */
import { Graph } from '../graph/graph.js';
import * as op from '../graph/ops.js';
import type { NeoXConfig } from '../model/config.js';
import { buildGptNeoX, lmHead } from '../model/gpt-neox.js';
import { parameterFeeds, parameterInputs, type Params } from '../model/params.js';
import { compile, type CompiledGraph, type RuntimeOptions } from '../runtime/session.js';

export class EvalStep {
  private constructor(
    readonly config: NeoXConfig,
    readonly batch: number,
    readonly seq: number,
    private readonly session: CompiledGraph,
  ) {}

  static async create(config: NeoXConfig, shape: { batch: number; seq: number }, runtime: RuntimeOptions = {}): Promise<EvalStep> {
    const { batch, seq } = shape;
    const graph = new Graph();
    const { lookup } = parameterInputs(graph, config);
    const tokens = graph.input('tokens', 'int64', [batch, seq + 1]);
    const { final } = buildGptNeoX(config, lookup, { ids: op.slice(tokens, 1, 0, seq) });
    const labels = op.reshape(op.slice(tokens, 1, 1, seq + 1), [batch * seq]);
    const loss = op.mean(op.crossEntropy(lmHead(config, lookup, final), labels));
    return new EvalStep(config, batch, seq, await compile({ graph, outputs: { loss } }, runtime));
  }

  async loss(params: Params, tokens: BigInt64Array): Promise<number> {
    const r = await this.session.run({ ...parameterFeeds(this.config, params), tokens: { data: tokens, dims: [this.batch, this.seq + 1] } });
    return (r.loss!.data as Float32Array)[0]!;
  }
}
