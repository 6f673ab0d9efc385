/**
 * The training loop: one model, the recipe's batches in the data's fixed order, AdamW with
 * global-norm clipping and the GPT-NeoX v1.0 learning-rate schedule, checkpoints on the recipe's
 * schedule, a JSONL log, and exact resume.
 *
 * Update k (1-based) trains on batch k−1 of the order (samples [(k−1)·B, k·B)) at lr(k−1); the
 * checkpoint `step<k>` holds the weights after update k, so it has seen samples [0, k·B) as in
 * Pythia. A checkpoint folder is an HF GPTNeoXForCausalLM folder plus `optimizer.safetensors`
 * and `trainer_state.json`, written atomically; together they continue a run to the same bytes.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openTrainingOrder } from '../data/batches.js';
import { loadTokenizer } from '../data/tokenizer.js';
import { type NeoXConfig, parameterShapes } from '../model/config.js';
import { loadCheckpoint, recoverInterruptedSaves, saveCheckpoint } from '../model/checkpoint.js';
import type { Params } from '../model/params.js';
import { TrainStep, createTrainStep } from '../model/train-step.js';
import { ConfigError, DataError, FormatError } from '../util/errors.js';
import { AdamW, type AdamWState } from './adamw.js';
import { saveIters } from './checkpoint-schedule.js';
import { clipGradNorm } from './grad-clip.js';
import { initParameters } from './init.js';
import { tokenPronounSwap, type TokenPronounSwap } from './intervention.js';
import { learningRateForUpdate, validateLrSchedule, type LrSchedule } from './lr-schedule.js';
import { OPTIMIZER_FILE, optimizerStateBytes, readOptimizerState } from './optimizer-state.js';
import { Prng, type PrngState } from '../util/prng.js';
import { gradientAccumulationSteps, validateRecipe, type TrainRecipe } from './recipes.js';
import { checkTrainerState } from './resume-state.js';

export const TRAINER_STATE_FILE = 'trainer_state.json';
export const LOG_FILE = 'log.jsonl';

export interface DataSpec {
  /** Dataset prefix (`<prefix>.bin` / `.idx`). */
  prefix: string;
  /** Items are samples already in training order (Pythia's preshuffled layout). */
  preshuffled: boolean;
  /** GPT-NeoX `split` for a single data path; absent: the whole dataset trains (Pythia). */
  split?: string;
}

export type Intervention = 'pronoun-swap';

/** Everything in `trainer_state.json`: no wall-clock values, so identical runs write identical bytes. */
export interface TrainerState {
  format: 'pythia-ts trainer state';
  version: 1;
  model: string;
  /** Optimizer updates done; the next update trains on batch `step`. */
  step: number;
  samplesConsumed: number;
  recipe: TrainRecipe;
  data: DataSpec;
  /** Where the weights at step 0 came from: the seeded init, or an HF checkpoint. */
  init: { seed: number; from: string | null };
  /** The init generator's state after initialisation (training itself draws no random numbers). */
  rng: PrngState | null;
  intervention: { kind: Intervention; fromStep: number } | null;
}

export interface ResumePoint {
  dir: string;
  config: NeoXConfig;
  params: Params;
  optimizer: AdamWState;
  state: TrainerState;
  tokenizerPath: string | undefined;
}

/** Reads a checkpoint folder written by the trainer, with everything needed to continue. */
export function loadResumePoint(stepDir: string): ResumePoint {
  const statePath = join(stepDir, TRAINER_STATE_FILE);
  if (!existsSync(statePath)) throw new FormatError(stepDir, `cannot resume: ${TRAINER_STATE_FILE} is missing (not a checkpoint written by pythia train)`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(statePath, 'utf8'));
  } catch (e) {
    throw new FormatError(statePath, `not valid JSON: ${(e as Error).message}`);
  }
  const state = checkTrainerState(json, statePath);
  const ckpt = loadCheckpoint(stepDir);
  const optimizer = readOptimizerState(join(stepDir, OPTIMIZER_FILE), parameterShapes(ckpt.config));
  if (optimizer.step !== state.step) throw new FormatError(join(stepDir, OPTIMIZER_FILE), `step ${optimizer.step} does not match ${TRAINER_STATE_FILE} step ${state.step}`);
  return { dir: stepDir, config: ckpt.config, params: ckpt.params, optimizer, state, tokenizerPath: ckpt.tokenizerPath };
}

export interface StepProgress {
  step: number;
  trainIters: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
}

export interface TrainOptions {
  /** The model's folder name under the run folder. */
  name: string;
  config: NeoXConfig;
  recipe: TrainRecipe;
  data: DataSpec;
  /** The run folder: checkpoints go to `<outDir>/<name>/step<N>/`. */
  outDir: string;
  /** tokenizer.json copied into every checkpoint (and needed by the intervention). */
  tokenizerPath?: string;
  /** Start from this HF checkpoint's weights instead of the seeded init. */
  initFrom?: string;
  /** Continue from this point (recipe and data come from it). */
  resume?: ResumePoint;
  intervention?: Intervention;
  /** Validation batches (held out: the batches right after the last training batch); 0: none. */
  evalIters?: number;
  /** Validation every this many steps; default: at every checkpoint. */
  evalInterval?: number;
  threads?: number;
  onProgress?: (p: StepProgress) => void;
  onWarning?: (message: string) => void;
}

export interface TrainResult {
  modelDir: string;
  logPath: string;
  finalStep: number;
  finalLoss: number | undefined;
  finalValLoss: number | undefined;
  /** Checkpoint steps written by this call. */
  checkpoints: number[];
  /** sha256 of each trained batch's tokens, by step (index 0 is step 1); empty before the start step. */
  batchHashes: string[];
}

interface LogEntry {
  step: number;
  loss?: number;
  val_loss?: number;
  lr?: number;
  grad_norm?: number;
  tokens_per_s?: number;
  batch_sha256?: string;
}

export function lrScheduleOf(r: TrainRecipe): LrSchedule {
  return { lr: r.lr, minLr: r.minLr, warmup: r.warmup, decayIters: r.lrDecayIters, decayStyle: r.lrDecayStyle };
}

export async function train(options: TrainOptions): Promise<TrainResult> {
  const { config, recipe, name } = options;
  validateRecipe(recipe);
  const schedule = lrScheduleOf(recipe);
  validateLrSchedule(schedule);
  if (recipe.seqLength > config.maxPositions) throw new ConfigError(`seq-length ${recipe.seqLength} exceeds the model's max-position-embeddings ${config.maxPositions}`);
  const warn = options.onWarning ?? (() => {});
  const modelDir = join(options.outDir, name);
  const logPath = join(modelDir, LOG_FILE);
  const shapes = parameterShapes(config);
  const B = recipe.trainBatchSize;
  const micro = recipe.microBatchSize;
  const gas = gradientAccumulationSteps(recipe);
  const seq = recipe.seqLength;

  // Starting point.
  let params: Params;
  let optimizer: AdamW;
  let startStep: number;
  let rng: PrngState | null = null;
  let initInfo: TrainerState['init'];
  const adamOptions = { betas: recipe.betas, eps: recipe.eps, weightDecay: recipe.weightDecay, flavour: recipe.optimizer };
  if (options.resume) {
    params = options.resume.params;
    optimizer = new AdamW(adamOptions, params, options.resume.optimizer);
    startStep = options.resume.state.step;
    rng = options.resume.state.rng;
    initInfo = options.resume.state.init;
  } else if (options.initFrom) {
    const ckpt = loadCheckpoint(options.initFrom);
    params = ckpt.params;
    optimizer = new AdamW(adamOptions, params);
    startStep = 0;
    initInfo = { seed: recipe.seed, from: resolve(options.initFrom) };
  } else {
    const generator = new Prng(recipe.seed);
    params = initParameters(shapes, config, recipe.init, generator);
    rng = generator.state;
    optimizer = new AdamW(adamOptions, params);
    startStep = 0;
    initInfo = { seed: recipe.seed, from: null };
  }
  if (startStep > recipe.trainIters) throw new ConfigError(`cannot resume at step ${startStep}: train-iters is ${recipe.trainIters}`);
  const interventionInfo: TrainerState['intervention'] = options.intervention
    ? { kind: options.intervention, fromStep: options.resume?.state.intervention?.fromStep ?? startStep }
    : options.resume?.state.intervention ?? null;
  let swap: TokenPronounSwap | undefined;
  if (interventionInfo) {
    if (!options.tokenizerPath) throw new ConfigError('--intervention pronoun-swap needs the tokenizer: pass --vocab-file or resume from a checkpoint that holds tokenizer.json');
    swap = await tokenPronounSwap(await loadTokenizer(options.tokenizerPath));
    if (swap.map.size === 0) throw new ConfigError(`${options.tokenizerPath}: no masculine pronoun is a single token, so the pronoun swap would change nothing`);
    if (swap.skipped.length > 0) {
      warn(`pronoun swap: ${swap.map.size} forms are swapped; ${swap.skipped.length} are not single tokens in this tokenizer and are left as they are: ${swap.skipped.map((f) => JSON.stringify(f)).join(', ')}`);
    }
  }

  const order = await openTrainingOrder({
    data: options.data.prefix,
    batchSize: B,
    seqLength: seq,
    seed: recipe.seed,
    trainIters: recipe.trainIters,
    split: options.data.split,
    preshuffled: options.data.preshuffled,
  });
  const source = order.source;
  try {
    const needed = recipe.trainIters * B;
    if (source.length < needed)
      throw new DataError(`${options.data.prefix}: ${source.length} samples, but ${recipe.trainIters} steps of ${B} need ${needed}`);
    let evalIters = options.evalIters ?? 0;
    if (evalIters > 0 && source.length < needed + evalIters * B) {
      warn(`validation off: ${options.data.prefix} has no ${evalIters} batches left after the ${recipe.trainIters} training batches`);
      evalIters = 0;
    }

    const saves = new Set(saveIters(recipe.trainIters, recipe.checkpoint));
    const isEvalStep = (k: number): boolean =>
      evalIters > 0 && (options.evalInterval ? k % options.evalInterval === 0 || k === recipe.trainIters : saves.has(k));
    recoverInterruptedSaves(modelDir, /^step\d+$/);
    if (!options.resume && existingCheckpoints(modelDir).length > 0)
      throw new ConfigError(`${modelDir} already holds checkpoints of another run: continue it with --resume ${join(modelDir, `step${existingCheckpoints(modelDir).at(-1)}`)} or choose another --out`);
    mkdirSync(modelDir, { recursive: true });
    prepareLog(logPath, startStep, options.resume !== undefined && resolve(options.resume.dir, '..') === resolve(modelDir));

    const trainStep = await createTrainStep(config, { batch: micro, seq, threads: options.threads });
    const evalStep = evalIters > 0 ? await TrainStep.create(config, { batch: micro, seq, gradients: false }, { threads: options.threads }) : undefined;
    const validationLoss = async (): Promise<number> => {
      let total = 0;
      for (let j = 0; j < evalIters; j++) {
        const tokens = source.batchTokens(recipe.trainIters + j, B);
        for (let m = 0; m < gas; m++) total += await evalStep!.loss(params, toInt64(tokens, m * micro, micro, seq + 1, config.vocabSize, -1));
      }
      return total / (evalIters * gas);
    };

    const stateAt = (step: number): TrainerState => ({
      format: 'pythia-ts trainer state',
      version: 1,
      model: name,
      step,
      samplesConsumed: step * B,
      recipe,
      data: { ...options.data, prefix: resolve(options.data.prefix) },
      init: initInfo,
      rng,
      intervention: interventionInfo,
    });
    const checkpoints: number[] = [];
    const save = async (step: number): Promise<void> => {
      await saveCheckpoint(join(modelDir, `step${step}`), config, params, {
        dtype: 'float32',
        tokenizerPath: options.tokenizerPath,
        extraFiles: {
          [TRAINER_STATE_FILE]: `${JSON.stringify(stateAt(step), null, 2)}\n`,
          [OPTIMIZER_FILE]: optimizerStateBytes(optimizer.state, shapes),
        },
      });
      checkpoints.push(step);
    };

    let finalLoss: number | undefined;
    let finalValLoss: number | undefined;
    if (startStep === 0 && saves.has(0)) {
      await save(0);
      if (isEvalStep(0)) {
        finalValLoss = await validationLoss();
        appendLog(logPath, { step: 0, val_loss: finalValLoss });
      }
    }
    const batchHashes: string[] = [];
    for (let k = startStep + 1; k <= recipe.trainIters; k++) {
      const started = performance.now();
      const tokens = source.batchTokens(k - 1, B);
      if (swap) swap_(swap, tokens, seq + 1);
      const hash = createHash('sha256').update(new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength)).digest('hex');
      batchHashes[k - 1] = hash;

      let loss = 0;
      let grads: Map<string, Float32Array> | undefined;
      for (let m = 0; m < gas; m++) {
        const r = await trainStep.run(params, toInt64(tokens, m * micro, micro, seq + 1, config.vocabSize, k));
        loss += r.loss;
        if (gas === 1) grads = r.grads;
        else if (!grads) grads = new Map([...r.grads].map(([n, g]) => [n, Float32Array.from(g)]));
        else for (const [n, g] of r.grads) addInto(grads.get(n)!, g);
      }
      loss /= gas;
      if (gas > 1) for (const g of grads!.values()) scale(g, Math.fround(1 / gas));
      const gradNorm = clipGradNorm(grads!, recipe.gradientClipping);
      const lr = learningRateForUpdate(schedule, k);
      optimizer.step(params, grads!, lr);
      if (!Number.isFinite(loss)) throw new DataError(`step ${k}: the loss is ${loss}; training diverged (try a lower --lr)`);

      const tokensPerSecond = (B * seq) / ((performance.now() - started) / 1000);
      const entry: LogEntry = { step: k, loss, lr, grad_norm: gradNorm, tokens_per_s: Math.round(tokensPerSecond), batch_sha256: hash };
      if (saves.has(k)) await save(k);
      if (isEvalStep(k)) entry.val_loss = finalValLoss = await validationLoss();
      appendLog(logPath, entry);
      finalLoss = loss;
      options.onProgress?.({ step: k, trainIters: recipe.trainIters, loss, lr, gradNorm, tokensPerSecond });
    }
    return { modelDir, logPath, finalStep: recipe.trainIters, finalLoss, finalValLoss, checkpoints, batchHashes };
  } finally {
    source.close();
  }
}

function swap_(swap: TokenPronounSwap, tokens: Int32Array, sampleLength: number): void {
  const wide = BigInt64Array.from(tokens, (t) => BigInt(t));
  swap.apply(wide, sampleLength);
  for (let i = 0; i < tokens.length; i++) tokens[i] = Number(wide[i]!);
}

/** Rows [first, first+rows) of a [*, width] token matrix as int64, each id checked against the vocabulary. */
function toInt64(tokens: Int32Array, first: number, rows: number, width: number, vocabSize: number, step: number): BigInt64Array {
  const out = new BigInt64Array(rows * width);
  const offset = first * width;
  for (let i = 0; i < out.length; i++) {
    const id = tokens[offset + i]!;
    if (id < 0 || id >= vocabSize) {
      const where = step < 0 ? 'a validation batch' : `the batch of step ${step}`;
      throw new DataError(`${where} holds token id ${id}, outside the model's vocabulary [0, ${vocabSize}): the data was tokenized with a larger vocabulary`);
    }
    out[i] = BigInt(id);
  }
  return out;
}

function addInto(acc: Float32Array, g: Float32Array): void {
  for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! + g[i]!;
}

function scale(g: Float32Array, factor: number): void {
  for (let i = 0; i < g.length; i++) g[i] = g[i]! * factor;
}

/** The step numbers of the checkpoint folders in a model folder, ascending. */
export function existingCheckpoints(modelDir: string): number[] {
  if (!existsSync(modelDir)) return [];
  return readdirSync(modelDir)
    .map((e) => /^step(\d+)$/.exec(e))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/**
 * Starts the log: fresh runs start empty; a run resumed in its own folder keeps the entries up to
 * its starting step (and drops later ones, and any line a kill cut short).
 */
function prepareLog(logPath: string, startStep: number, continuing: boolean): void {
  if (!continuing || !existsSync(logPath)) {
    rmSync(logPath, { force: true });
    return;
  }
  const kept: string[] = [];
  for (const line of readFileSync(logPath, 'utf8').split('\n')) {
    try {
      const entry = JSON.parse(line) as LogEntry;
      if (typeof entry.step === 'number' && entry.step <= startStep) kept.push(line);
    } catch {
      // an incomplete last line
    }
  }
  rmSync(logPath, { force: true });
  if (kept.length > 0) appendFileSync(logPath, `${kept.join('\n')}\n`);
}

function appendLog(logPath: string, entry: LogEntry): void {
  appendFileSync(logPath, `${JSON.stringify(entry)}\n`);
}

/** Reads a run's log (what the report and results database read). */
export function readLog(logPath: string): LogEntry[] {
  if (!existsSync(logPath)) throw new FormatError(logPath, 'no such log');
  return readFileSync(logPath, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l, i) => {
      try {
        return JSON.parse(l) as LogEntry;
      } catch {
        throw new FormatError(logPath, `line ${i + 1} is not JSON`);
      }
    });
}
