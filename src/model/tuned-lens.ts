/**
 * The tuned lens (Belrose et al., 2023; AlignmentResearch/tuned-lens): per layer ℓ < L an affine
 * translator added to the residual before the final LayerNorm, h + A_ℓh + b_ℓ (tuned-lens's
 * `h + translator(h)`, a torch Linear with weight A_ℓ [out, in] and bias b_ℓ), zero-initialised
 * so it starts as the logit lens. Trained with tuned-lens's recipe: the loss is the sum over
 * translators of the mean over every position of KL(final ‖ lens); SGD with Nesterov momentum 0.9,
 * weight decay 1e-3 and learning rate lr × (1 − momentum) decayed linearly to 0 over the steps;
 * the gradient clipped to global norm 1; each step reads whole rows, ⌈tokens per step / row
 * length⌉ of them, drawn in a seeded shuffled order (a new order each pass over the rows); a row
 * one token longer than the model's context (a training sample) is read without its last token. The
 * gradients come from our reverse-mode autodiff (graph/grad.ts). Evaluated with the logit lens's
 * metrics (logit-lens.ts), the translators applied before its projection.
 */
import { grad } from '../graph/grad.js';
import { Graph, type Tensor } from '../graph/graph.js';
import * as op from '../graph/ops.js';
import { type CompiledGraph, compile, type HostTensor, type RuntimeOptions } from '../runtime/session.js';
import { ConfigError } from '../util/errors.js';
import { Prng } from '../util/prng.js';
import type { ActivationRunner } from './activations.js';
import type { NeoXConfig } from './config.js';
import { type LensLayer, type LogitLensOptions, logitLens } from './logit-lens.js';
import type { Params } from './params.js';

/** One translator per layer ℓ < L, in tuned-lens's layout. */
export interface TunedLens {
  hiddenSize: number;
  /** weights[ℓ]: A_ℓ, [hidden (out), hidden (in)], row-major. */
  weights: Float32Array[];
  /** biases[ℓ]: b_ℓ, [hidden]. */
  biases: Float32Array[];
}

/** How a tuned lens is trained; TUNED_LENS_DEFAULTS holds tuned-lens's own values. */
export interface TunedLensTraining {
  /** Optimizer steps. */
  steps: number;
  /** tuned-lens's `lr_scale`: SGD's learning rate is lr × (1 − momentum) at the first step. */
  lr: number;
  /** Tokens per step; a step reads ⌈tokensPerStep / row length⌉ whole rows. */
  tokensPerStep: number;
  momentum: number;
  weightDecay: number;
  /** The gradient's global norm is clipped to this. */
  clipNorm: number;
  /** Seeds the order rows are drawn in. */
  seed: number;
}

/** tuned-lens's defaults (scripts/train_loop.py, scripts/ingredients.py): 250 steps of 2^18 tokens. */
export const TUNED_LENS_DEFAULTS: Readonly<TunedLensTraining> = {
  steps: 250,
  lr: 1,
  tokensPerStep: 2 ** 18,
  momentum: 0.9,
  weightDecay: 1e-3,
  clipNorm: 1,
  seed: 42,
};

/** Token rows: `rows` rows of `length` tokens, row-major. */
export interface TokenRows {
  tokens: Int32Array;
  rows: number;
  length: number;
}

export interface TrainProgress {
  /** Steps done (1 … steps). */
  step: number;
  steps: number;
  /** The step's loss: the mean over translators of their mean KL(final ‖ lens), nats. */
  loss: number;
  /** The learning rate the step used. */
  lr: number;
}

export interface TunedLensTrainOptions {
  /** Positions per graph run (default: as many as keep [layers, positions, vocab] within 2^25 values). */
  chunk?: number;
  runtime?: RuntimeOptions;
  onStep?: (progress: TrainProgress) => void;
}

export interface TunedLensTrainResult {
  lens: TunedLens;
  /** Each step's loss (TrainProgress.loss). */
  losses: number[];
  rowsPerStep: number;
}

/** The zero translators of `config`: the logit lens. */
export function zeroTunedLens(config: NeoXConfig): TunedLens {
  const H = config.hiddenSize;
  return {
    hiddenSize: H,
    weights: Array.from({ length: config.numLayers }, () => new Float32Array(H * H)),
    biases: Array.from({ length: config.numLayers }, () => new Float32Array(H)),
  };
}

/** Throws unless every setting is in its range. */
export function checkTraining(t: TunedLensTraining): void {
  const fail = (name: string, expected: string, got: number) => {
    throw new ConfigError(`tuned lens ${name}: expected ${expected}, got ${got}`);
  };
  for (const name of ['steps', 'tokensPerStep'] as const)
    if (!Number.isInteger(t[name]) || t[name] < 1) fail(name, 'a positive integer', t[name]);
  for (const name of ['lr', 'clipNorm'] as const)
    if (!(Number.isFinite(t[name]) && t[name] > 0)) fail(name, 'a positive number', t[name]);
  if (!(t.momentum >= 0 && t.momentum < 1)) fail('momentum', 'a number in [0, 1)', t.momentum);
  if (!(Number.isFinite(t.weightDecay) && t.weightDecay >= 0)) fail('weightDecay', 'a number ≥ 0', t.weightDecay);
  if (!(Number.isInteger(t.seed) && t.seed >= 0 && t.seed < 2 ** 32)) fail('seed', 'an integer in [0, 2^32)', t.seed);
}

const LN = ['gpt_neox.final_layer_norm.weight', 'gpt_neox.final_layer_norm.bias'] as const;

function unembedName(config: NeoXConfig): string {
  return config.tieWordEmbeddings ? 'gpt_neox.embed_in.weight' : 'embed_out.weight';
}

type FloatType = 'float32' | 'float64';

/** The inputs every lens graph shares: the final LayerNorm and the unembedding. */
function headInputs(graph: Graph, config: NeoXConfig, dtype: FloatType) {
  const H = config.hiddenSize;
  return {
    lnWeight: graph.input('ln.weight', dtype, [H]),
    lnBias: graph.input('ln.bias', dtype, [H]),
    unembed: graph.input('unembed', dtype, [config.vocabSize, H]),
  };
}

function lensLogits(config: NeoXConfig, head: ReturnType<typeof headInputs>, resid: Tensor): Tensor {
  const normalized = op.layerNorm(resid, head.lnWeight, head.lnBias, config.layerNormEps);
  return op.matmul(normalized, head.unembed, { transB: true });
}

function lensLogProbs(config: NeoXConfig, head: ReturnType<typeof headInputs>, resid: Tensor): Tensor {
  return op.logSoftmax(lensLogits(config, head, resid), -1);
}

/**
 * Every translator's loss and gradient in one graph: for residuals `resid` [layers, n, hidden] (one
 * slice a layer) and the final distribution's log-probabilities `target` [n, vocab], each layer's
 * loss = Σ_positions KL(target ‖ lens) with lens = log_softmax(unembed(ln_final(resid + resid·weightᵀ
 * + bias))); outputs loss [layers], grad_weight [layers, hidden, hidden], grad_bias [layers, hidden].
 * Inputs: resid, target, weight, bias, ln.weight, ln.bias, unembed.
 */
export function translatorLossGraph(config: NeoXConfig, dtype: FloatType = 'float32') {
  const H = config.hiddenSize;
  const graph = new Graph();
  const resid = graph.input('resid', dtype, ['layers', 'n', H]);
  const target = graph.input('target', dtype, ['n', config.vocabSize]);
  const weight = graph.input('weight', dtype, ['layers', H, H]);
  const bias = graph.input('bias', dtype, ['layers', H]);
  const head = headInputs(graph, config, dtype);
  const translated = op.add(
    resid,
    op.add(op.matmul(resid, weight, { transB: true }), op.reshape(bias, ['layers', 1, H])),
  );
  const loss = op.sum(op.klDivergence(lensLogits(config, head, translated), target), [1]);
  const [gradWeight, gradBias] = grad(op.sum(loss), [weight, bias]) as [Tensor, Tensor];
  return { graph, outputs: { loss, grad_weight: gradWeight, grad_bias: gradBias } };
}

/** The head's feeds (ln.weight, ln.bias, unembed) from the model's parameters. */
function headFeeds(config: NeoXConfig, params: Params): Record<string, HostTensor> {
  const H = config.hiddenSize;
  return {
    'ln.weight': { data: params.get(LN[0])!, dims: [H] },
    'ln.bias': { data: params.get(LN[1])!, dims: [H] },
    unembed: { data: params.get(unembedName(config))!, dims: [config.vocabSize, H] },
  };
}

/** log_softmax(unembed(ln_final(resid))) for resid [n, hidden]. */
function compileProjection(config: NeoXConfig, runtime: RuntimeOptions): Promise<CompiledGraph> {
  const graph = new Graph();
  const resid = graph.input('resid', 'float32', ['n', config.hiddenSize]);
  const logp = lensLogProbs(config, headInputs(graph, config, 'float32'), resid);
  return compile({ graph, outputs: { logp } }, { ...runtime, cache: false });
}

/** resid + resid·weightᵀ + bias for resid [n, hidden]. */
function compileTranslator(config: NeoXConfig, runtime: RuntimeOptions): Promise<CompiledGraph> {
  const H = config.hiddenSize;
  const graph = new Graph();
  const resid = graph.input('resid', 'float32', ['n', H]);
  const out = op.add(
    resid,
    op.linear(resid, graph.input('weight', 'float32', [H, H]), graph.input('bias', 'float32', [H])),
  );
  return compile({ graph, outputs: { out } }, { ...runtime, cache: false });
}

function residNames(L: number): string[] {
  return [...Array.from({ length: L }, (_, l) => `blocks.${l}.hook_resid_pre`), `blocks.${L - 1}.hook_resid_post`];
}

/** Positions per run that keep [layers, positions, vocab] within 2^25 values (128 MiB of float32). */
function defaultChunk(layers: number, vocab: number): number {
  return Math.max(1, Math.floor(2 ** 25 / (layers * vocab)));
}

/** Row indices in a seeded shuffled order, reshuffled for each pass over the rows. */
class RowOrder {
  private readonly prng: Prng;
  private order: number[] = [];
  private next = 0;

  constructor(
    private readonly rows: number,
    seed: number,
  ) {
    this.prng = Prng.fromSeed(seed);
  }

  take(): number {
    if (this.next === this.order.length) {
      this.order = this.prng.shuffle(Array.from({ length: this.rows }, (_, i) => i));
      this.next = 0;
    }
    return this.order[this.next++]!;
  }
}

/**
 * Trains a tuned lens for the model `runner` runs on token rows `data` (rows the lens is not
 * evaluated on), from zero translators.
 */
export async function trainTunedLens(
  runner: ActivationRunner,
  params: Params,
  data: TokenRows,
  training: TunedLensTraining,
  options: TunedLensTrainOptions = {},
): Promise<TunedLensTrainResult> {
  checkTraining(training);
  const { config } = runner;
  const [L, H, V] = [config.numLayers, config.hiddenSize, config.vocabSize];
  const { rows, length } = data;
  if (!(rows >= 1 && length >= 1 && data.tokens.length === rows * length))
    throw new ConfigError(`tuned lens training: ${data.tokens.length} tokens do not make ${rows} rows of ${length}`);
  if (length > config.maxPositions + 1)
    throw new ConfigError(
      `tuned lens training: rows of ${length} tokens are longer than max_position_embeddings + 1 = ${config.maxPositions + 1}`,
    );
  const chunk = options.chunk ?? defaultChunk(L, V);
  if (!Number.isInteger(chunk) || chunk < 1) throw new ConfigError(`chunk: expected a positive integer, got ${chunk}`);
  const rowsPerStep = Math.ceil(training.tokensPerStep / length);
  // A row one token longer than the context (a training sample, seq-length + 1) trains on the
  // positions the model reads, all but its last token.
  const read = Math.min(length, config.maxPositions);
  // Rows run through the model together: as many as fill one chunk of positions.
  const group = Math.max(1, Math.floor(chunk / read));
  const runtime = options.runtime ?? {};
  const names = residNames(L);
  const head = headFeeds(config, params);
  const lens = zeroTunedLens(config);
  const [projection, lossGrad] = await Promise.all([
    compileProjection(config, runtime),
    compile(translatorLossGraph(config), { ...runtime, cache: false }),
  ]);
  const gradWeights = lens.weights.map(() => new Float32Array(H * H));
  const gradBiases = lens.biases.map(() => new Float32Array(H));
  const parameters = [...lens.weights, ...lens.biases];
  const gradients = [...gradWeights, ...gradBiases];
  const momentum = parameters.map((p) => new Float32Array(p.length));
  const order = new RowOrder(rows, training.seed);
  const losses: number[] = [];
  try {
    for (let step = 0; step < training.steps; step++) {
      for (const g of gradients) g.fill(0);
      const layerLoss = new Float64Array(L);
      let count = 0;
      const translators: Record<string, HostTensor> = {
        weight: { data: stack(lens.weights), dims: [L, H, H] },
        bias: { data: stack(lens.biases), dims: [L, H] },
      };
      for (let done = 0; done < rowsPerStep; done += group) {
        const batch = Math.min(group, rowsPerStep - done);
        const ids = new BigInt64Array(batch * read);
        for (let b = 0; b < batch; b++) {
          const row = order.take();
          for (let t = 0; t < read; t++) ids[b * read + t] = BigInt(data.tokens[row * length + t]!);
        }
        const { cache } = await runner.run(ids, batch, { names });
        const resid = names.map((name) => cache.get(name)!.data as Float32Array);
        const positions = batch * read;
        // The final distribution of L chunks at once (the memory of one chunk's L layers), one
        // larger product with the unembedding; each chunk then reads its rows of it.
        for (let first = 0; first < positions; first += chunk * L) {
          const span = Math.min(chunk * L, positions - first);
          const final = resid[L]!.subarray(first * H, (first + span) * H);
          const logp = (await projection.run({ ...head, resid: { data: final, dims: [span, H] } })).logp!
            .data as Float32Array;
          for (let start = first; start < first + span; start += chunk) {
            const n = Math.min(chunk, first + span - start);
            const stacked = new Float32Array(L * n * H);
            for (let l = 0; l < L; l++) stacked.set(resid[l]!.subarray(start * H, (start + n) * H), l * n * H);
            const out = await lossGrad.run({
              ...head,
              resid: { data: stacked, dims: [L, n, H] },
              target: { data: logp.subarray((start - first) * V, (start - first + n) * V), dims: [n, V] },
              ...translators,
            });
            const [loss, gw, gb] = [out.loss!.data, out.grad_weight!.data, out.grad_bias!.data] as Float32Array[];
            for (let l = 0; l < L; l++) {
              layerLoss[l]! += loss![l]!;
              addInto(gradWeights[l]!, gw!.subarray(l * H * H, (l + 1) * H * H));
              addInto(gradBiases[l]!, gb!.subarray(l * H, (l + 1) * H));
            }
            count += n;
          }
        }
      }
      // Each translator's loss is its mean over the step's positions.
      let squares = 0;
      for (const g of gradients) {
        for (let i = 0; i < g.length; i++) {
          g[i]! /= count;
          squares += g[i]! * g[i]!;
        }
      }
      // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) where that is below 1.
      const clip = Math.min(1, training.clipNorm / (Math.sqrt(squares) + 1e-6));
      const lr = training.lr * (1 - training.momentum) * ((training.steps - step) / training.steps);
      parameters.forEach((p, k) => {
        sgdNesterov(p, gradients[k]!, momentum[k]!, { ...training, lr, clip, first: step === 0 });
      });
      const loss = layerLoss.reduce((a, b) => a + b, 0) / count / L;
      losses.push(loss);
      options.onStep?.({ step: step + 1, steps: training.steps, loss, lr });
    }
  } finally {
    await projection.release();
    await lossGrad.release();
  }
  return { lens, losses, rowsPerStep };
}

/** Equal-length arrays one after another in one array. */
function stack(arrays: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

function addInto(into: Float32Array, g: Float32Array): void {
  for (let i = 0; i < into.length; i++) into[i]! += g[i]!;
}

/**
 * torch.optim.SGD's step with Nesterov momentum (dampening 0) on the clipped gradient `clip`·g:
 * d = g + λp; buf = d at the first step, else μ·buf + d; p −= lr·(d + μ·buf).
 */
function sgdNesterov(
  p: Float32Array,
  g: Float32Array,
  buf: Float32Array,
  s: { lr: number; clip: number; first: boolean; momentum: number; weightDecay: number },
): void {
  for (let i = 0; i < p.length; i++) {
    const d = s.clip * g[i]! + s.weightDecay * p[i]!;
    buf[i] = s.first ? d : s.momentum * buf[i]! + d;
    p[i]! -= s.lr * (d + s.momentum * buf[i]!);
  }
}

/** Throws unless `lens` has one translator of the model's width per layer; `source` names it. */
export function checkLensFits(lens: TunedLens, config: NeoXConfig, source: string): void {
  if (lens.hiddenSize !== config.hiddenSize || lens.weights.length !== config.numLayers)
    throw new ConfigError(
      `${source}: a lens of ${lens.weights.length} translators of width ${lens.hiddenSize} does not fit a model of ${config.numLayers} layers of width ${config.hiddenSize}`,
    );
}

/**
 * The tuned lens's metrics on rows `ids` [batch, seq] (layers 0…L; at layer L, with no translator,
 * the logit lens's), as logitLens computes them.
 */
export async function tunedLensLayers(
  runner: ActivationRunner,
  params: Params,
  lens: TunedLens,
  ids: BigInt64Array,
  batch: number,
  options: LogitLensOptions = {},
): Promise<LensLayer[]> {
  const { config } = runner;
  checkLensFits(lens, config, 'tuned lens');
  const H = config.hiddenSize;
  const translator = await compileTranslator(config, options.runtime ?? {});
  try {
    const translate = async (layer: number, resid: Float32Array, n: number): Promise<Float32Array> =>
      (
        await translator.run({
          resid: { data: resid, dims: [n, H] },
          weight: { data: lens.weights[layer]!, dims: [H, H] },
          bias: { data: lens.biases[layer]!, dims: [H] },
        })
      ).out!.data as Float32Array;
    return await logitLens(runner, params, ids, batch, { ...options, translate });
  } finally {
    await translator.release();
  }
}
