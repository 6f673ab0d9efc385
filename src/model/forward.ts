/**
 * One forward (and optionally backward) pass over a batch of equal-length rows, returning what
 * HF's GPTNeoXForCausalLM returns: logits, hidden states, the mean next-token loss over
 * batch × (seq − 1) positions, and gradients of that loss for every parameter.
 */

import { grad } from '../graph/grad.js';
import { Graph, type Tensor } from '../graph/graph.js';
import * as op from '../graph/ops.js';
import { compile, type RuntimeOptions } from '../runtime/session.js';
import { ConfigError } from '../util/errors.js';
import { type NeoXConfig, parameterShapes } from './config.js';
import { buildGptNeoX, lmHead } from './gpt-neox.js';
import { type Params, parameterFeeds, parameterInputs } from './params.js';

export interface ForwardOptions {
  hiddenStates?: boolean;
  loss?: boolean;
  grads?: boolean;
  /** Leave logits out of the result (they cost time to hand back at large vocabularies). */
  skipLogits?: boolean;
}

export interface ForwardResult {
  /** [batch, seq, vocab] */
  logits?: Float32Array;
  /** HF's hidden_states, each [batch, seq, hidden]. */
  hiddenStates?: Float32Array[];
  loss?: number;
  grads?: Map<string, Float32Array>;
}

/** Token rows as an int64 array [batch, seq]; rows must share one length. */
export function tokenMatrix(rows: readonly (readonly number[])[], vocabSize: number, source = 'tokens'): BigInt64Array {
  if (rows.length === 0) throw new ConfigError(`${source}: no rows`);
  const seq = rows[0]!.length;
  const out = new BigInt64Array(rows.length * seq);
  rows.forEach((row, b) => {
    if (row.length !== seq) throw new ConfigError(`${source}: row ${b} has ${row.length} tokens, row 0 has ${seq}`);
    row.forEach((id, t) => {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new ConfigError(
          `${source}: row ${b} position ${t}: token id ${id} is outside the vocabulary [0, ${vocabSize})`,
        );
      }
      out[b * seq + t] = BigInt(id);
    });
  });
  return out;
}

/** Mean cross-entropy of logits [B·T, V] at positions t < T−1 against ids at t+1. */
export function nextTokenLoss(logits: Tensor, ids: Tensor, batch: number, seq: number): Tensor {
  const V = logits.shape[1]!;
  const predicting = op.reshape(op.slice(op.reshape(logits, [batch, seq, V]), 1, 0, seq - 1), [batch * (seq - 1), V]);
  const labels = op.reshape(op.slice(ids, 1, 1, seq), [batch * (seq - 1)]);
  return op.mean(op.crossEntropy(predicting, labels));
}

export async function forward(
  config: NeoXConfig,
  params: Params,
  ids: BigInt64Array,
  batch: number,
  options: ForwardOptions = {},
  runtime: RuntimeOptions = {},
): Promise<ForwardResult> {
  const seq = ids.length / batch;
  if ((options.loss || options.grads) && seq < 2)
    throw new ConfigError('the loss needs sequences of at least 2 tokens');
  const graph = new Graph();
  const { lookup, tensors } = parameterInputs(graph, config);
  const idsInput = graph.input('input_ids', 'int64', [batch, seq]);
  const out = buildGptNeoX(config, lookup, { ids: idsInput });
  const logits = lmHead(config, lookup, out.final);
  const outputs: Record<string, Tensor> = {};
  if (!options.skipLogits) outputs.logits = logits;
  if (options.hiddenStates)
    out.hiddenStates.forEach((h, i) => {
      outputs[`hidden_states.${i}`] = h;
    });
  if (options.loss || options.grads) {
    const loss = nextTokenLoss(logits, idsInput, batch, seq);
    outputs.loss = loss;
    if (options.grads) {
      const names = parameterShapes(config).map((p) => p.name);
      const grads = grad(
        loss,
        names.map((n) => tensors.get(n)!),
      );
      names.forEach((n, i) => {
        outputs[`grad.${n}`] = grads[i]!;
      });
    }
  }
  const compiled = await compile({ graph, outputs }, runtime);
  const r = await compiled.run({ ...parameterFeeds(config, params), input_ids: { data: ids, dims: [batch, seq] } });
  const result: ForwardResult = {};
  if (r.logits) result.logits = r.logits.data as Float32Array;
  if (options.hiddenStates)
    result.hiddenStates = out.hiddenStates.map((_, i) => r[`hidden_states.${i}`]!.data as Float32Array);
  if (r.loss) result.loss = (r.loss.data as Float32Array)[0]!;
  if (options.grads) {
    result.grads = new Map(parameterShapes(config).map((p) => [p.name, r[`grad.${p.name}`]!.data as Float32Array]));
  }
  return result;
}
