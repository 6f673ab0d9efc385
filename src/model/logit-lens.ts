/**
 * The logit lens (TransformerLens's accumulated_resid(apply_ln=True) through the unembedding): the
 * residual entering each block, and the final residual, through the final LayerNorm (recomputed on
 * that residual) and the unembedding. Per layer, averaged over every position that has a next token:
 * KL(final ‖ lens), the cross-entropy against the next token, the lens distribution's entropy (all
 * in nats) and how often its top token is the final one. The final distribution is the lens at the
 * last layer, the model's own next-token distribution, so there KL is 0 and top-1 agreement 1.
 * Rows run one at a time and positions in chunks: memory follows one row's residuals and one
 * chunk's [positions, vocab], never [layers, positions, vocab].
 */
import { Graph } from '../graph/graph.js';
import * as op from '../graph/ops.js';
import { type CompiledGraph, compile, type RuntimeOptions } from '../runtime/session.js';
import { ConfigError } from '../util/errors.js';
import type { ActivationRunner } from './activations.js';
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
  /** Positions per lens projection (default 128). */
  chunk?: number;
  runtime?: RuntimeOptions;
  /**
   * Maps layer ℓ < L's residual [n, hidden] before the lens reads it (the tuned lens's translators,
   * tuned-lens.ts); the final residual is never mapped.
   */
  translate?: (layer: number, resid: Float32Array, n: number) => Promise<Float32Array>;
}

const LENS_PARAMS = ['gpt_neox.final_layer_norm.weight', 'gpt_neox.final_layer_norm.bias'];

/** log_softmax(unembed(ln_final(resid))) for resid [n, hidden], as the model's own head computes it. */
function compileLens(runner: ActivationRunner, params: Params, runtime: RuntimeOptions) {
  const { config } = runner;
  const unembed = config.tieWordEmbeddings ? 'gpt_neox.embed_in.weight' : 'embed_out.weight';
  const shapes = new Map(parameterShapes(config).map((p) => [p.name, p.shape]));
  const graph = new Graph();
  const inputs = new Map(
    [...LENS_PARAMS, unembed].map((name) => [name, graph.input(name, 'float32', shapes.get(name)!)]),
  );
  const resid = graph.input('resid', 'float32', ['n', config.hiddenSize]);
  const [w, b] = LENS_PARAMS.map((name) => inputs.get(name)!);
  const normalized = op.layerNorm(resid, w!, b!, config.layerNormEps);
  const logp = op.logSoftmax(
    lmHead(config, (name) => inputs.get(name)!, normalized),
    -1,
  );
  const feeds = Object.fromEntries(
    [...LENS_PARAMS, unembed].map((name) => [name, { data: params.get(name)!, dims: shapes.get(name)! }]),
  );
  return { session: compile({ graph, outputs: { logp } }, { ...runtime, cache: false }), feeds };
}

/**
 * Per position of a lens's log-probabilities `q` [n, vocab] against the final ones `final` and the
 * next tokens `next` [n]: KL(final ‖ lens), the lens's entropy and its cross-entropy, summed over the
 * vocabulary inside onnxruntime (on every thread) rather than in a JavaScript loop.
 */
function compileMetrics(config: { vocabSize: number }, runtime: RuntimeOptions) {
  const graph = new Graph();
  const q = graph.input('q', 'float32', ['n', config.vocabSize]);
  const final = graph.input('final', 'float32', ['n', config.vocabSize]);
  const next = graph.input('next', 'int64', ['n']);
  const kl = op.sum(op.mul(op.exp(final), op.sub(final, q)), [1]);
  const entropy = op.neg(op.sum(op.mul(op.exp(q), q), [1]));
  const ce = op.neg(op.reshape(op.gatherElements(q, op.reshape(next, ['n', 1]), 1), ['n']));
  return compile({ graph, outputs: { kl, entropy, ce } }, { ...runtime, cache: false });
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
  const V = config.vocabSize;
  const seq = ids.length / batch;
  if (!Number.isInteger(seq) || seq < 2)
    throw new ConfigError(`the logit lens needs rows of at least 2 tokens (a next token to predict); got ${seq}`);
  if (seq - 1 > config.maxPositions)
    throw new ConfigError(
      `the logit lens reads rows of up to max_position_embeddings + 1 = ${config.maxPositions + 1} tokens; got ${seq}`,
    );
  const chunk = options.chunk ?? 128;
  if (!Number.isInteger(chunk) || chunk < 1) throw new ConfigError(`chunk: expected a positive integer, got ${chunk}`);
  const names = [
    ...Array.from({ length: L }, (_, l) => `blocks.${l}.hook_resid_pre`),
    `blocks.${L - 1}.hook_resid_post`,
  ];
  const lens = compileLens(runner, params, options.runtime ?? {});
  const session: CompiledGraph = await lens.session;
  const metrics: CompiledGraph = await compileMetrics(config, options.runtime ?? {});
  const project = async (resid: Float32Array, n: number): Promise<Float32Array> =>
    (await session.run({ ...lens.feeds, resid: { data: resid, dims: [n, H] } })).logp!.data as Float32Array;

  const kl = new Float64Array(L + 1);
  const ce = new Float64Array(L + 1);
  const entropy = new Float64Array(L + 1);
  const top1 = new Float64Array(L + 1);
  let count = 0;
  try {
    for (let row = 0; row < batch; row++) {
      // The last token has no next one: only the positions before it are read, so a row may be one
      // token longer than the model's context (a training sample, seq-length + 1).
      const { cache } = await runner.run(ids.slice(row * seq, (row + 1) * seq - 1), 1, { names });
      const resid = names.map((name) => cache.get(name)!.data);
      for (let start = 0; start < seq - 1; start += chunk) {
        const n = Math.min(chunk, seq - 1 - start);
        const at = (l: number) => resid[l]!.slice(start * H, (start + n) * H);
        const final = await project(at(L), n);
        const finalTop = new Int32Array(n);
        for (let i = 0; i < n; i++) finalTop[i] = argmax(final, i * V, V);
        const next = new BigInt64Array(n);
        for (let i = 0; i < n; i++) next[i] = ids[row * seq + start + i + 1]!;
        for (let l = 0; l <= L; l++) {
          const q =
            l === L ? final : await project(options.translate ? await options.translate(l, at(l), n) : at(l), n);
          const m = await metrics.run({
            q: { data: q, dims: [n, V] },
            final: { data: final, dims: [n, V] },
            next: { data: next, dims: [n] },
          });
          const [k, h, c] = [m.kl!.data, m.entropy!.data, m.ce!.data] as Float32Array[];
          for (let i = 0; i < n; i++) {
            kl[l]! += k![i]!;
            entropy[l]! += h![i]!;
            ce[l]! += c![i]!;
            if (argmax(q, i * V, V) === finalTop[i]) top1[l]! += 1;
          }
        }
        count += n;
      }
    }
  } finally {
    await session.release();
    await metrics.release();
  }
  return Array.from({ length: L + 1 }, (_, l) => ({
    layer: l,
    kl: kl[l]! / count,
    ce: ce[l]! / count,
    entropy: entropy[l]! / count,
    top1: top1[l]! / count,
  }));
}

/** The first index of the largest of `a[offset … offset + n)`. */
function argmax(a: Float32Array, offset: number, n: number): number {
  let best = 0;
  let top = a[offset]!;
  for (let v = 1; v < n; v++) {
    const x = a[offset + v]!;
    if (x > top) {
      top = x;
      best = v;
    }
  }
  return best;
}
