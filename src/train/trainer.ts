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
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openTrainingOrder } from '../data/batches.js';
import type { SampleSource } from '../data/sample-order.js';
import { loadTokenizer } from '../data/tokenizer.js';
import { loadCheckpoint, recoverInterruptedSaves, saveCheckpoint } from '../model/checkpoint.js';
import { type NeoXConfig, parameterShapes } from '../model/config.js';
import type { Params } from '../model/params.js';
import type { ExecutionProvider } from '../runtime/session.js';
import { ConfigError, DataError, FormatError } from '../util/errors.js';
import { Prng, type PrngState } from '../util/prng.js';
import { AdamW, type AdamWState, noWeightDecay } from './adamw.js';
import { saveIters } from './checkpoint-schedule.js';
import { initParameters } from './init.js';
import { pythiaTokenPronounSwap, type TokenPronounSwap, tokenPronounSwap } from './intervention.js';
import { type InterventionFrom, interventionName, interventionStart } from './intervention-point.js';
import { learningRateForUpdate } from './lr-schedule.js';
import { OPTIMIZER_FILE, optimizerStateBytes, readOptimizerState } from './optimizer-state.js';
import { gradientAccumulationSteps, sameRecipe, type TrainRecipe, validateRecipe } from './recipes.js';
import {
  appendLog,
  checkpointSteps,
  LOG_FILE,
  type LogEntry,
  readTrainerState,
  STEP_FOLDER,
  startLog,
  stepFolderName,
  TRAINER_STATE_FILE,
  trainerStateText,
} from './run-folder.js';
import { createUpdateStep, type UpdateStep } from './update-step.js';
import { openValidation, type ValidationBatches } from './validation.js';

export { LOG_FILE, type LogEntry, readLog, readTrainerState, TRAINER_STATE_FILE } from './run-folder.js';

export interface DataSpec {
  /** Dataset prefix (`<prefix>.bin` / `.idx`). */
  prefix: string;
  /** Items are samples already in training order (Pythia's preshuffled layout). */
  preshuffled: boolean;
  /** GPT-NeoX `split` for a single data path; absent: the whole dataset trains (Pythia). */
  split?: string;
}

export const INTERVENTIONS = ['pronoun-swap', 'pronoun-swap-pythia'] as const;
export type Intervention = (typeof INTERVENTIONS)[number];

/**
 * Everything in `trainer_state.json`: no wall-clock values, so identical runs write identical bytes.
 * On disk `data` is a RecordedData (its prefix relative to the step folder); read back, the prefix
 * is where the dataset is now.
 */
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
  /** An intervention run: the model whose checkpoint it continued (null for every other run). */
  baseline: string | null;
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
  let state: TrainerState;
  try {
    state = readTrainerState(stepDir);
  } catch (e) {
    if (e instanceof FormatError) throw new FormatError(e.file, `cannot resume: ${e.message.slice(e.file.length + 2)}`);
    throw e;
  }
  const ckpt = loadCheckpoint(stepDir);
  const optimizer = readOptimizerState(join(stepDir, OPTIMIZER_FILE), parameterShapes(ckpt.config));
  if (optimizer.step !== state.step)
    throw new FormatError(
      join(stepDir, OPTIMIZER_FILE),
      `step ${optimizer.step} does not match ${TRAINER_STATE_FILE} step ${state.step}`,
    );
  return {
    dir: stepDir,
    config: ckpt.config,
    params: ckpt.params,
    optimizer,
    state,
    tokenizerPath: ckpt.tokenizerPath,
  };
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
  /**
   * The pronoun swap. Alone (with `resume`): applied to this run's batches from the resume step on.
   * With `interventionFrom`: the swap of the sibling run (default pronoun-swap); this run trains unswapped.
   */
  intervention?: Intervention;
  /**
   * After this run, continue from its checkpoint nearest this point to the end with pronouns
   * swapped, as the sibling run `<outDir>/<name>-intervention/` (skipped when finished, resumed
   * when interrupted). Needs `tokenizerPath`.
   */
  interventionFrom?: InterventionFrom;
  onInterventionStart?: (start: InterventionStart) => void;
  /** Validation batches (held out: the batches right after the last training batch); 0: none. */
  evalIters?: number;
  /** Validation every this many steps; default: at every checkpoint. */
  evalInterval?: number;
  threads?: number;
  /** onnxruntime execution provider (default: cpu). */
  device?: ExecutionProvider;
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
  /** The sibling intervention run, with `interventionFrom`. */
  intervention?: InterventionRunResult;
}

/** An intervention sibling about to train (or found finished). */
export interface InterventionStart {
  /** The sibling's model name, `<baseline>-intervention`. */
  name: string;
  baseline: string;
  kind: Intervention;
  /** The step `interventionFrom` aimed at (fraction × train-iters, or the step given). */
  target: number;
  /** The baseline checkpoint the sibling continues from. */
  fromStep: number;
  status: 'fresh' | 'resume' | 'done';
  /** Where training continues: fromStep when fresh, the sibling's last checkpoint otherwise. */
  step: number;
}

export interface InterventionRunResult extends InterventionStart {
  modelDir: string;
  logPath: string;
  /** What this call trained; absent when the sibling was already finished. */
  trained?: TrainResult;
}

/** Where a run starts: weights, optimizer state and step, with what the trainer state records of it. */
interface StartPoint {
  params: Params;
  optimizer: AdamW;
  step: number;
  init: TrainerState['init'];
  rng: PrngState | null;
}

/** The starting point: a resume point, an HF checkpoint's weights, or the seeded init. */
function resolveStart(options: TrainOptions): StartPoint {
  const { config, recipe } = options;
  const adamOptions = {
    betas: recipe.betas,
    eps: recipe.eps,
    weightDecay: recipe.weightDecay,
    flavour: recipe.optimizer,
  };
  const shapes = parameterShapes(config);
  const undecayed = noWeightDecay(shapes);
  let start: StartPoint;
  if (options.resume) {
    const { params, optimizer, state } = options.resume;
    start = {
      params,
      optimizer: new AdamW(adamOptions, params, undecayed, optimizer),
      step: state.step,
      init: state.init,
      rng: state.rng,
    };
  } else if (options.initFrom) {
    const { params } = loadCheckpoint(options.initFrom);
    start = {
      params,
      optimizer: new AdamW(adamOptions, params, undecayed),
      step: 0,
      init: { seed: recipe.seed, from: resolve(options.initFrom) },
      rng: null,
    };
  } else {
    const generator = new Prng(recipe.seed);
    const params = initParameters(shapes, config, recipe.init, generator);
    start = {
      params,
      optimizer: new AdamW(adamOptions, params, undecayed),
      step: 0,
      init: { seed: recipe.seed, from: null },
      rng: generator.state,
    };
  }
  if (start.step > recipe.trainIters)
    throw new ConfigError(`cannot resume at step ${start.step}: train-iters is ${recipe.trainIters}`);
  return start;
}

interface ActiveIntervention {
  info: TrainerState['intervention'];
  swap?: TokenPronounSwap;
}

/** The intervention in force from the start step on (a new one, or the resumed run's), and its token swap. */
async function resolveIntervention(options: TrainOptions, startStep: number): Promise<ActiveIntervention> {
  const info: TrainerState['intervention'] = options.intervention
    ? { kind: options.intervention, fromStep: options.resume?.state.intervention?.fromStep ?? startStep }
    : (options.resume?.state.intervention ?? null);
  if (!info) return { info };
  return { info, swap: await loadPronounSwap(info.kind, options.tokenizerPath, options.onWarning) };
}

/** The token swap of an intervention kind for a tokenizer, checked to change something. */
async function loadPronounSwap(
  kind: Intervention,
  tokenizerPath: string | undefined,
  onWarning?: (message: string) => void,
): Promise<TokenPronounSwap> {
  if (!tokenizerPath)
    throw new ConfigError(
      `--intervention ${kind} needs the tokenizer: pass --tokenizer or resume from a checkpoint that holds tokenizer.json`,
    );
  const tokenizer = await loadTokenizer(tokenizerPath);
  if (kind === 'pronoun-swap-pythia') return pythiaTokenPronounSwap(tokenizer, tokenizerPath);
  const swap = await tokenPronounSwap(tokenizer);
  if (swap.map.size === 0)
    throw new ConfigError(
      `${tokenizerPath}: no masculine pronoun is a single token, so the pronoun swap would change nothing`,
    );
  if (swap.skipped.length > 0) {
    onWarning?.(
      `pronoun swap: ${swap.map.size} forms are swapped; ${swap.skipped.length} are not single tokens in this tokenizer and are left as they are: ` +
        swap.skipped.map((f) => JSON.stringify(f)).join(', '),
    );
  }
  return swap;
}

/**
 * Makes the model folder ready: removes what a killed run left, refuses to mix two runs, and
 * starts the log (empty for a fresh run; up to the start step for a run resumed in its own folder).
 */
function prepareRunFolder(modelDir: string, startStep: number, resume: ResumePoint | undefined): string {
  const logPath = join(modelDir, LOG_FILE);
  if (existsSync(modelDir)) recoverInterruptedSaves(modelDir, STEP_FOLDER);
  const existing = checkpointSteps(modelDir);
  if (!resume && existing.length > 0)
    throw new ConfigError(
      `${modelDir} already holds checkpoints of another run: continue it with --resume ${join(modelDir, stepFolderName(existing.at(-1)!))} or choose another --out`,
    );
  mkdirSync(modelDir, { recursive: true });
  startLog(logPath, startStep, resume !== undefined && resolve(resume.dir, '..') === resolve(modelDir));
  return logPath;
}

/**
 * Trains one run; with `interventionFrom`, then its intervention sibling. With `interventionFrom`
 * and no `resume`, a model folder that already holds this recipe's checkpoints is continued from
 * its last one (a finished run trains nothing), as suites do, so the same command can be re-run.
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  if (!options.interventionFrom) return trainRun(options);
  const plan = await planIntervention(options);
  const resume = options.resume ?? continuePoint(join(options.outDir, options.name), options.recipe);
  const result = await trainRun({ ...options, resume, intervention: undefined, interventionFrom: undefined });
  return { ...result, intervention: await trainIntervention(options, plan) };
}

/** The last checkpoint of a model folder, checked to be of this recipe; undefined when it has none. */
export function continuePoint(modelDir: string, recipe: TrainRecipe): ResumePoint | undefined {
  const last = checkpointSteps(modelDir).at(-1);
  if (last === undefined) return undefined;
  const point = loadResumePoint(join(modelDir, stepFolderName(last)));
  if (!sameRecipe(point.state.recipe, recipe))
    throw new ConfigError(`${modelDir} holds a run with another recipe; choose another --out or remove it`);
  return point;
}

export interface InterventionPlan {
  kind: Intervention;
  target: number;
  fromStep: number;
}

/**
 * Checks an intervention before anything trains (the point, the tokenizer, the swap) and picks the
 * baseline checkpoint it continues from.
 */
export async function planIntervention(
  options: Pick<
    TrainOptions,
    'name' | 'outDir' | 'recipe' | 'resume' | 'intervention' | 'interventionFrom' | 'tokenizerPath'
  >,
): Promise<InterventionPlan> {
  if (options.resume?.state.intervention)
    throw new ConfigError(
      `${options.resume.dir} is already an intervention run (${options.resume.state.intervention.kind}); --intervention-from continues a baseline`,
    );
  const kind = options.intervention ?? 'pronoun-swap';
  const { target, step } = interventionStart(options.interventionFrom!, options.recipe);
  if (!options.tokenizerPath)
    throw new ConfigError(
      `--intervention-from needs the tokenizer for the ${kind} swap: pass --tokenizer (or resume from a checkpoint that holds tokenizer.json)`,
    );
  await loadPronounSwap(kind, options.tokenizerPath);
  const plan = { kind, target, fromStep: step };
  existingSibling(options, plan);
  return plan;
}

/** The last checkpoint of the sibling's folder, if any, checked to be this intervention of this baseline. */
function existingSibling(
  options: Pick<TrainOptions, 'name' | 'outDir' | 'recipe'>,
  plan: InterventionPlan,
): { dir: string; step: number } | undefined {
  const modelDir = join(options.outDir, interventionName(options.name));
  const last = checkpointSteps(modelDir).at(-1);
  if (last === undefined) return undefined;
  const stepDir = join(modelDir, stepFolderName(last));
  const s = readTrainerState(stepDir);
  if (
    !sameRecipe(s.recipe, options.recipe) ||
    s.baseline !== options.name ||
    s.intervention?.kind !== plan.kind ||
    s.intervention.fromStep !== plan.fromStep
  ) {
    const held = s.intervention
      ? `${s.intervention.kind} from step ${s.intervention.fromStep} of ${s.baseline}`
      : 'no intervention';
    throw new ConfigError(`${modelDir} holds another run (${held}); remove it or choose another --out`);
  }
  return { dir: stepDir, step: last };
}

/**
 * The intervention sibling of a finished baseline `<outDir>/<name>/`: `<outDir>/<name>-intervention/`,
 * continued from the baseline's checkpoint `plan.fromStep` to the end with the pronoun swap. A
 * finished sibling is left as it is; an interrupted one resumes from its last checkpoint.
 */
export async function trainIntervention(options: TrainOptions, plan: InterventionPlan): Promise<InterventionRunResult> {
  const { recipe } = options;
  const name = interventionName(options.name);
  const modelDir = join(options.outDir, name);
  const last = existingSibling(options, plan);
  const logPath = join(modelDir, LOG_FILE);
  const start = { name, baseline: options.name, kind: plan.kind, target: plan.target, fromStep: plan.fromStep };
  if (last?.step === recipe.trainIters) {
    const done: InterventionStart = { ...start, status: 'done', step: last.step };
    options.onInterventionStart?.(done);
    return { ...done, modelDir, logPath };
  }
  let resume: ResumePoint;
  let status: InterventionStart['status'];
  if (last !== undefined) {
    resume = loadResumePoint(last.dir);
    status = 'resume';
  } else {
    const folders = [
      join(options.outDir, options.name),
      ...(options.resume ? [resolve(options.resume.dir, '..')] : []),
    ];
    const from = folders.map((f) => join(f, stepFolderName(plan.fromStep))).find((d) => existsSync(d));
    if (!from)
      throw new ConfigError(
        `${join(folders[0]!, stepFolderName(plan.fromStep))}: the baseline has no checkpoint at step ${plan.fromStep} to continue with the intervention`,
      );
    resume = loadResumePoint(from);
    if (!sameRecipe(resume.state.recipe, recipe))
      throw new ConfigError(`${from}: the checkpoint was trained with another recipe than ${options.name}`);
    status = 'fresh';
  }
  const started: InterventionStart = { ...start, status, step: resume.state.step };
  options.onInterventionStart?.(started);
  const trained = await trainRun({
    ...options,
    name,
    initFrom: undefined,
    resume,
    intervention: plan.kind,
    interventionFrom: undefined,
    tokenizerPath: options.tokenizerPath ?? resume.tokenizerPath,
  });
  return { ...started, modelDir, logPath, trained };
}

async function trainRun(options: TrainOptions): Promise<TrainResult> {
  const { config, recipe } = options;
  validateRecipe(recipe);
  if (recipe.seqLength > config.maxPositions)
    throw new ConfigError(
      `seq-length ${recipe.seqLength} exceeds the model's max-position-embeddings ${config.maxPositions}`,
    );
  const start = resolveStart(options);
  const intervention = await resolveIntervention(options, start.step);
  const order = await openTrainingOrder({
    data: options.data.prefix,
    batchSize: recipe.trainBatchSize,
    seqLength: recipe.seqLength,
    seed: recipe.seed,
    trainIters: recipe.trainIters,
    split: options.data.split,
    preshuffled: options.data.preshuffled,
  });
  let validation: ValidationBatches | undefined;
  try {
    const needed = recipe.trainIters * recipe.trainBatchSize;
    if (order.source.length < needed)
      throw new DataError(
        `${options.data.prefix}: ${order.source.length} samples, but ${recipe.trainIters} steps of ${recipe.trainBatchSize} need ${needed}`,
      );
    const evalIters = options.evalIters ?? 0;
    if (evalIters > 0) {
      const opened = await openValidation({
        data: options.data,
        train: order.source,
        batchSize: recipe.trainBatchSize,
        seqLength: recipe.seqLength,
        seed: recipe.seed,
        trainIters: recipe.trainIters,
        evalIters,
        evalInterval: options.evalInterval,
      });
      if (typeof opened === 'string') options.onWarning?.(`validation off: ${opened}`);
      else validation = opened;
    }
    const modelDir = join(options.outDir, options.name);
    const logPath = prepareRunFolder(modelDir, start.step, options.resume);
    return await stepLoop(options, { start, intervention, source: order.source, validation, modelDir, logPath });
  } finally {
    validation?.close();
    order.source.close();
  }
}

interface LoopInputs {
  start: StartPoint;
  intervention: ActiveIntervention;
  source: SampleSource;
  validation: ValidationBatches | undefined;
  modelDir: string;
  logPath: string;
}

/** The update step for the run's device, for as long as `updates` runs. */
async function stepLoop(options: TrainOptions, inputs: LoopInputs): Promise<TrainResult> {
  const { config, recipe } = options;
  const updateStep = await createUpdateStep({
    config,
    params: inputs.start.params,
    optimizer: inputs.start.optimizer,
    micro: recipe.microBatchSize,
    seq: recipe.seqLength,
    maxNorm: recipe.gradientClipping,
    validation: inputs.validation !== undefined && (options.evalIters ?? 0) > 0,
    runtime: { threads: options.threads, provider: options.device },
  });
  try {
    return await updates(options, inputs, updateStep);
  } finally {
    updateStep.dispose();
  }
}

/** Updates from the start step to train-iters: batches, updates, checkpoints, validation, log. */
async function updates(options: TrainOptions, inputs: LoopInputs, updateStep: UpdateStep): Promise<TrainResult> {
  const { config, recipe, name } = options;
  const { start, intervention, source, validation, modelDir, logPath } = inputs;
  const { params, optimizer } = start;
  const shapes = parameterShapes(config);
  const { trainBatchSize: B, microBatchSize: micro, seqLength: seq } = recipe;
  const gas = gradientAccumulationSteps(recipe);
  const evalIters = validation ? (options.evalIters ?? 0) : 0;
  const saves = new Set(saveIters(recipe.trainIters, recipe.checkpoint));
  const isEvalStep = (k: number): boolean =>
    evalIters > 0 && (options.evalInterval ? k % options.evalInterval === 0 || k === recipe.trainIters : saves.has(k));
  // Pythia's intervention rewrites every batch the model sees, validation included; ours only training batches.
  const swapValidation = intervention.info?.kind === 'pronoun-swap-pythia' ? intervention.swap : undefined;
  // An intervention run records the model it continued: carried on resume, else the resumed run's name.
  const resumed = options.resume?.state;
  const baseline = resumed?.baseline ?? (intervention.info && resumed ? resumed.model : null);

  const validationLoss = async (step: number): Promise<number> => {
    let total = 0;
    for (let j = 0; j < evalIters; j++) {
      const tokens = validation!.batch(step, j);
      swapValidation?.apply(tokens, seq + 1);
      for (let m = 0; m < gas; m++)
        total += await updateStep.loss(microBatch(tokens, m, micro, seq + 1), 'a validation batch');
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
    data: options.data,
    init: start.init,
    rng: start.rng,
    intervention: intervention.info,
    baseline,
  });
  const checkpoints: number[] = [];
  const save = async (step: number): Promise<void> => {
    await updateStep.toHost();
    await saveCheckpoint(join(modelDir, stepFolderName(step)), config, params, {
      dtype: 'float32',
      tokenizerPath: options.tokenizerPath,
      extraFiles: {
        [TRAINER_STATE_FILE]: trainerStateText(stateAt(step), join(modelDir, stepFolderName(step))),
        [OPTIMIZER_FILE]: optimizerStateBytes(optimizer.state, shapes),
      },
    });
    checkpoints.push(step);
  };

  let finalLoss: number | undefined;
  let finalValLoss: number | undefined;
  if (start.step === 0 && saves.has(0)) {
    await save(0);
    if (isEvalStep(0)) {
      finalValLoss = await validationLoss(0);
      appendLog(logPath, { step: 0, val_loss: finalValLoss });
    }
  }
  const batchHashes: string[] = [];
  for (let k = start.step + 1; k <= recipe.trainIters; k++) {
    const started = performance.now();
    const tokens = source.batchTokens(k - 1, B);
    // batch_sha256 hashes the tokens trained on (after the swap); an intervention run also logs the
    // hash of the batch as the data order gives it, which equals its baseline's batch_sha256.
    const sourceHash = intervention.swap ? sha256Tokens(tokens) : undefined;
    intervention.swap?.apply(tokens, seq + 1);
    const hash = sha256Tokens(tokens);
    batchHashes[k - 1] = hash;

    const lr = learningRateForUpdate(recipe.schedule, k);
    const microBatches = Array.from({ length: gas }, (_, m) => microBatch(tokens, m, micro, seq + 1));
    const { loss, gradNorm } = await updateStep.update(microBatches, lr, `the batch of step ${k}`);
    if (!Number.isFinite(loss))
      throw new DataError(`step ${k}: the loss is ${loss}; training diverged (try a lower --lr)`);

    const tokensPerSecond = (B * seq) / ((performance.now() - started) / 1000);
    const entry: LogEntry = {
      step: k,
      loss,
      lr,
      grad_norm: gradNorm,
      tokens_per_s: Math.round(tokensPerSecond),
      batch_sha256: hash,
    };
    if (sourceHash) entry.source_batch_sha256 = sourceHash;
    if (saves.has(k)) await save(k);
    if (isEvalStep(k)) entry.val_loss = finalValLoss = await validationLoss(k);
    appendLog(logPath, entry);
    finalLoss = loss;
    options.onProgress?.({ step: k, trainIters: recipe.trainIters, loss, lr, gradNorm, tokensPerSecond });
  }
  return { modelDir, logPath, finalStep: recipe.trainIters, finalLoss, finalValLoss, checkpoints, batchHashes };
}

function sha256Tokens(tokens: Int32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength))
    .digest('hex');
}

/** Micro-batch `m` of `rows` samples of a [*, width] token matrix: a view, no copy. */
function microBatch(tokens: Int32Array, m: number, rows: number, width: number): Int32Array {
  return tokens.subarray(m * rows * width, (m + 1) * rows * width);
}
