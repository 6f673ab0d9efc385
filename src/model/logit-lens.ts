/**
 * The logit lens (TransformerLens's accumulated_resid(apply_ln=True) through the unembedding): the
 * residual entering each block, and the final residual, through the final LayerNorm (recomputed on
 * that residual) and the unembedding. Per layer, averaged over every position that has a next token:
 * KL(final ‖ lens), the cross-entropy against the next token, the lens distribution's entropy (all
 * in nats) and how often its top token is the final one. The final distribution is the lens at the
 * last layer, the model's own next-token distribution, so there KL is 0 and top-1 agreement 1.
 * Rows run one at a time and positions in chunks, every layer of a chunk in one onnxruntime call:
 * memory follows one row's residuals and a fixed budget of [layers, positions, vocab] logits.
 */
import { Graph } from '../graph/graph.js';
import * as op from '../graph/ops.js';
import { type CompiledGraph, compile, type RuntimeOptions } from '../runtime/session.js';
import { ConfigError } from '../util/errors.js';
import type { ActivationCache, ActivationRunner } from './activations.js';
import { parameterShapes } from './config.js';
import { lmHead } from './gpt-neox.js';
import type { Params } from './params.js';

/** One layer's lens metrics: layer ℓ < L reads blocks.ℓ.hook_resid_pre, ℓ = L the last block's hook_resid_post. */
export interface LensLayer {
  layer: number;
  /** Mean KL(final ‖ lens), nats. */
  kl: number;
  /** Mean cross-entropy of the lens against the next token, nats. */
  ce: number;
  /** Mean entropy of the lens distribution, nats. */
  entropy: number;
  /** Share of positions where the lens's most likely token is the final distribution's. */
  top1: number;
}

export interface LogitLensOptions {
  /** Positions per lens call, each read at every layer (default: as many as LOGITS_PER_CALL allows). */
  chunk?: number;
  runtime?: RuntimeOptions;
  /**
   * Maps layer ℓ < L's residual [n, hidden] before the lens reads it (the tuned lens's translators,
   * tuned-lens.ts); the final residual is never mapped.
   */
  translate?: (layer: number, resid: Float32Array, n: number) => Promise<Float32Array>;
}

const LENS_PARAMS = ['gpt_neox.final_layer_norm.weight', 'gpt_neox.final_layer_norm.bias'];

/** Lens logits per call: [layers · positions, vocab] floats, about 128 MiB at Pythia's vocabulary. */
const LOGITS_PER_CALL = 1 << 25;

/**
 * Every layer's lens on one chunk of positions in one call: `resid` [layers, n, hidden] (the final
 * residual last) through the final LayerNorm and the unembedding, and per (layer, position) the
 * metrics against the last layer's distribution and the next tokens `next` [layers, n, 1]: KL, the
 * lens's entropy, its cross-entropy and whether its top token is the final one. Only these
 * [layers, n] come back; the [layers, n, vocab] probabilities stay inside onnxruntime.
 */
function compileLens(runner: ActivationRunner, params: Params, runtime: RuntimeOptions) {
  const { config } = runner;
  const layers = config.numLayers + 1;
  const unembed = config.tieWordEmbeddings ? 'gpt_neox.embed_in.weight' : 'embed_out.weight';
  const shapes = new Map(parameterShapes(config).map((p) => [p.name, p.shape]));
  const graph = new Graph();
  const inputs = new Map(
    [...LENS_PARAMS, unembed].map((name) => [name, graph.input(name, 'float32', shapes.get(name)!)]),
  );
  const resid = graph.input('resid', 'float32', [layers, 'n', config.hiddenSize]);
  const next = graph.input('next', 'int64', [layers, 'n', 1]);
  const [w, b] = LENS_PARAMS.map((name) => inputs.get(name)!);
  const logits = lmHead(config, (name) => inputs.get(name)!, op.layerNorm(resid, w!, b!, config.layerNormEps));
  const logp = op.logSoftmax(logits, -1);
  const p = op.softmax(logits, -1);
  const finalLogp = op.slice(logp, 0, layers - 1, layers);
  const finalP = op.slice(p, 0, layers - 1, layers);
  const kl = op.sum(op.mul(finalP, op.sub(finalLogp, logp)), [2]);
  const entropy = op.neg(op.sum(op.mul(p, logp), [2]));
  const ce = op.neg(op.reshape(op.gatherElements(logp, next, 2), [layers, 'n']));
  const top1 = op.cast(op.equal(op.argMax(logp, 2), op.argMax(finalLogp, 2)), 'float32');
  const feeds = Object.fromEntries(
    [...LENS_PARAMS, unembed].map((name) => [name, { data: params.get(name)!, dims: shapes.get(name)! }]),
  );
  const session = compile({ graph, outputs: { kl, entropy, ce, top1 } }, { ...runtime, cache: false });
  return { session, feeds };
}

/**
 * The logit lens over equal-length token rows `ids` [batch, seq] (seq ≥ 2, at most the model's
 * context + 1); layers 0…L.
 */
export async function logitLens(
  runner: ActivationRunner,
  params: Params,
  ids: BigInt64Array,
  batch: number,
  options: LogitLensOptions = {},
): Promise<LensLayer[]> {
  const { config } = runner;
  const L = config.numLayers;
  const H = config.hiddenSize;
  const seq = ids.length / batch;
  if (!Number.isInteger(seq) || seq < 2)
    throw new ConfigError(`the logit lens needs rows of at least 2 tokens (a next token to predict); got ${seq}`);
  if (seq - 1 > config.maxPositions)
    throw new ConfigError(
      `the logit lens reads rows of up to max_position_embeddings + 1 = ${config.maxPositions + 1} tokens; got ${seq}`,
    );
  const chunk = options.chunk ?? Math.max(1, Math.floor(LOGITS_PER_CALL / ((L + 1) * config.vocabSize)));
  if (!Number.isInteger(chunk) || chunk < 1) throw new ConfigError(`chunk: expected a positive integer, got ${chunk}`);
  const names = [
    ...Array.from({ length: L }, (_, l) => `blocks.${l}.hook_resid_pre`),
    `blocks.${L - 1}.hook_resid_post`,
  ];
  const lens = compileLens(runner, params, options.runtime ?? {});
  const session: CompiledGraph = await lens.session;

  const sums = { kl: new Float64Array(L + 1), ce: new Float64Array(L + 1), entropy: new Float64Array(L + 1) };
  const top1 = new Float64Array(L + 1);
  let count = 0;
  try {
    // The last token has no next one: only the positions before it are read, so a row may be one
    // token longer than the model's context (a training sample, seq-length + 1).
    const positions = seq - 1;
    // A streamed run is a pass over the checkpoint: it takes as many rows as its budget holds.
    const rowsPerRun = runner.streamed
      ? Math.max(1, Math.floor(runner.activationBytes / ((L + 1) * positions * H * 4)))
      : 1;
    let cache: ActivationCache = new Map();
    for (let row = 0; row < batch; row++) {
      const first = row % rowsPerRun;
      if (first === 0) {
        const rows = Math.min(rowsPerRun, batch - row);
        const run = new BigInt64Array(rows * positions);
        for (let k = 0; k < rows; k++)
          run.set(ids.subarray((row + k) * seq, (row + k) * seq + positions), k * positions);
        cache = (await runner.run(run, rows, { names })).cache;
      }
      const resid: Float32Array[] = [];
      for (const [l, name] of names.entries()) {
        const all = cache.get(name)!.data as Float32Array;
        const r = all.subarray(first * positions * H, (first + 1) * positions * H);
        resid.push(options.translate && l < L ? await options.translate(l, r, positions) : r);
      }
      for (let start = 0; start < positions; start += chunk) {
        const n = Math.min(chunk, positions - start);
        const stacked = new Float32Array((L + 1) * n * H);
        const next = new BigInt64Array((L + 1) * n);
        for (let l = 0; l <= L; l++) {
          stacked.set(resid[l]!.subarray(start * H, (start + n) * H), l * n * H);
          next.set(ids.subarray(row * seq + start + 1, row * seq + start + 1 + n), l * n);
        }
        const m = await session.run({
          ...lens.feeds,
          resid: { data: stacked, dims: [L + 1, n, H] },
          next: { data: next, dims: [L + 1, n, 1] },
        });
        for (const key of ['kl', 'ce', 'entropy'] as const) addRows(sums[key], m[key]!.data as Float32Array, n);
        addRows(top1, m.top1!.data as Float32Array, n);
        count += n;
      }
    }
  } finally {
    await session.release();
  }
  return Array.from({ length: L + 1 }, (_, l) => ({
    layer: l,
    kl: sums.kl[l]! / count,
    ce: sums.ce[l]! / count,
    entropy: sums.entropy[l]! / count,
    top1: top1[l]! / count,
  }));
}

/** Adds each row's values of `values` [layers, n] to `sums[layer]`. */
function addRows(sums: Float64Array, values: Float32Array, n: number): void {
  for (let l = 0; l < sums.length; l++) for (let i = 0; i < n; i++) sums[l]! += values[l * n + i]!;
}
