/**
 * The recipe settings, one row each: the field of `RecipeOverrides`, the command-line flag, the
 * GPT-NeoX config key (as Pythia's models/*.yml spell it; `a.b.c` is a key inside a block), the
 * parser of command-line text, the check of a value (from the command line or a config file) and
 * where the value lives in a `TrainRecipe`. This table drives the options of `pythia train` and
 * `pythia suite`, the overrides laid over a preset, and reading and writing GPT-NeoX configs.
 */
import { ConfigError } from '../util/errors.js';
import { ADAM_FLAVOURS, type AdamFlavour } from './adamw.js';
import type { CheckpointScale } from './checkpoint-schedule.js';
import { INIT_METHODS, type InitMethod } from './init.js';
import { LR_DECAY_STYLES, type LrDecayStyle } from './lr-schedule.js';
import type { TrainRecipe } from './recipes.js';

/** Values laid over a preset's recipe; absent fields keep the preset's. */
export interface RecipeOverrides {
  seqLength?: number;
  trainBatchSize?: number;
  microBatchSize?: number;
  gradientAccumulationSteps?: number;
  trainIters?: number;
  lrDecayIters?: number;
  lr?: number;
  minLr?: number;
  lrDecayStyle?: LrDecayStyle;
  warmup?: number;
  weightDecay?: number;
  gradientClipping?: number;
  betas?: [number, number];
  eps?: number;
  seed?: number;
  initMethod?: InitMethod;
  outputLayerInitMethod?: InitMethod;
  initMethodStd?: number;
  checkpointFactor?: number;
  checkpointScale?: CheckpointScale;
  extraSaveIters?: number[];
  optimizer?: AdamFlavour;
}

export type SettingField = keyof RecipeOverrides;

/** How a value is checked; `check` throws an Error whose message says what was expected. */
interface ValueKind<T> {
  /** Command-line text to a value (then checked like a config file's value). */
  parse: (text: string) => unknown;
  check: (value: unknown) => T;
}

export interface RecipeSetting<F extends SettingField = SettingField>
  extends ValueKind<NonNullable<RecipeOverrides[F]>> {
  field: F;
  /** Command-line flag with its value name, e.g. `--seq-length <n>`; absent: config files only. */
  flag?: string;
  /** GPT-NeoX key; absent: a setting GPT-NeoX does not have. */
  neoxKey?: string;
  help: string;
  choices?: readonly string[];
  /** The value in a recipe (what an export writes). */
  get: (r: TrainRecipe) => RecipeOverrides[F];
  /** Sets the value in a recipe (batch settings excepted: `resolveBatch` does those together). */
  set?: (r: TrainRecipe, value: NonNullable<RecipeOverrides[F]>) => void;
}

function expected(what: string, value: unknown): Error {
  return new Error(`expected ${what}, got ${JSON.stringify(value)}`);
}

const numberText = (text: string): unknown => (text.trim() === '' ? text : Number(text));

function numberKind(what: string, ok: (x: number) => boolean): ValueKind<number> {
  return {
    parse: numberText,
    check: (v) => {
      if (typeof v !== 'number' || !ok(v)) throw expected(what, v);
      return v;
    },
  };
}

const positiveInt = numberKind('a positive integer', (x) => Number.isSafeInteger(x) && x >= 1);
const nonNegativeInt = numberKind('a non-negative integer', (x) => Number.isSafeInteger(x) && x >= 0);
const nonNegative = numberKind('a number >= 0', (x) => Number.isFinite(x) && x >= 0);
const positive = numberKind('a positive number', (x) => Number.isFinite(x) && x > 0);
const fraction = numberKind('a fraction in [0, 1]', (x) => x >= 0 && x <= 1);

function oneOf<T extends string>(allowed: readonly T[]): ValueKind<T> {
  return {
    parse: (text) => text,
    check: (v) => {
      if (typeof v !== 'string' || !allowed.includes(v as T)) throw expected(`one of ${allowed.join(', ')}`, v);
      return v as T;
    },
  };
}

const listText = (text: string): unknown =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(numberText);

const intList: ValueKind<number[]> = {
  parse: listText,
  check: (v) => {
    if (!Array.isArray(v) || !v.every((x) => Number.isSafeInteger(x) && x >= 0))
      throw expected('a list of non-negative integers, e.g. 0,1,2,4', v);
    return v as number[];
  },
};

const betaPair: ValueKind<[number, number]> = {
  parse: listText,
  check: (v) => {
    if (!Array.isArray(v) || v.length !== 2 || !v.every((b) => typeof b === 'number' && b >= 0 && b < 1))
      throw expected('two numbers in [0, 1)', v);
    return [v[0], v[1]];
  },
};

function row<F extends SettingField>(r: RecipeSetting<F>): RecipeSetting {
  return r as unknown as RecipeSetting;
}

/** In the order an exported config lists them (Pythia's models/*.yml order). */
export const RECIPE_SETTINGS: readonly RecipeSetting[] = [
  row({
    field: 'seqLength',
    flag: '--seq-length <n>',
    neoxKey: 'seq-length',
    help: 'tokens per sample (the data holds seq-length + 1 per sample)',
    ...positiveInt,
    get: (r) => r.seqLength,
    set: (r, v) => {
      r.seqLength = v;
    },
  }),
  row({
    field: 'initMethod',
    neoxKey: 'init_method',
    help: 'init of the input-side weights',
    ...oneOf(INIT_METHODS),
    choices: INIT_METHODS,
    get: (r) => r.init.initMethod,
    set: (r, v) => {
      r.init.initMethod = v;
    },
  }),
  row({
    field: 'outputLayerInitMethod',
    neoxKey: 'output_layer_init_method',
    help: 'init of the residual output projections',
    ...oneOf(INIT_METHODS),
    choices: INIT_METHODS,
    get: (r) => r.init.outputLayerInitMethod,
    set: (r, v) => {
      r.init.outputLayerInitMethod = v;
    },
  }),
  row({
    field: 'initMethodStd',
    neoxKey: 'init_method_std',
    help: 'std of the normal and scaled_normal inits',
    ...positive,
    get: (r) => r.init.initMethodStd,
    set: (r, v) => {
      r.init.initMethodStd = v;
    },
  }),
  row({
    field: 'lr',
    flag: '--lr <x>',
    neoxKey: 'optimizer.params.lr',
    help: 'peak learning rate',
    ...nonNegative,
    get: (r) => r.schedule.lr,
    set: (r, v) => {
      r.schedule.lr = v;
    },
  }),
  row({
    field: 'betas',
    neoxKey: 'optimizer.params.betas',
    help: 'Adam betas',
    ...betaPair,
    get: (r) => r.betas,
    set: (r, v) => {
      r.betas = v;
    },
  }),
  row({
    field: 'eps',
    neoxKey: 'optimizer.params.eps',
    help: 'Adam epsilon',
    ...positive,
    get: (r) => r.eps,
    set: (r, v) => {
      r.eps = v;
    },
  }),
  row({
    field: 'minLr',
    flag: '--min-lr <x>',
    neoxKey: 'min_lr',
    help: 'learning-rate floor',
    ...nonNegative,
    get: (r) => r.schedule.minLr,
    set: (r, v) => {
      r.schedule.minLr = v;
    },
  }),
  row({
    field: 'trainBatchSize',
    flag: '--train-batch-size <n>',
    neoxKey: 'train_batch_size',
    help: 'sequences per optimizer step',
    ...positiveInt,
    get: (r) => r.trainBatchSize,
  }),
  row({
    field: 'microBatchSize',
    flag: '--train-micro-batch-size-per-gpu <n>',
    neoxKey: 'train_micro_batch_size_per_gpu',
    help: 'sequences per forward/backward pass',
    ...positiveInt,
    get: (r) => r.microBatchSize,
  }),
  row({
    field: 'gradientAccumulationSteps',
    flag: '--gradient-accumulation-steps <n>',
    neoxKey: 'gradient_accumulation_steps',
    help: 'micro-batches per optimizer step',
    ...positiveInt,
    get: (r) => r.trainBatchSize / r.microBatchSize,
  }),
  row({
    field: 'gradientClipping',
    flag: '--gradient-clipping <x>',
    neoxKey: 'gradient_clipping',
    help: 'global gradient-norm limit (0: off)',
    ...nonNegative,
    get: (r) => r.gradientClipping,
    set: (r, v) => {
      r.gradientClipping = v;
    },
  }),
  row({
    field: 'weightDecay',
    flag: '--weight-decay <x>',
    neoxKey: 'weight-decay',
    help: 'decoupled weight decay (not on biases and LayerNorm parameters)',
    ...nonNegative,
    get: (r) => r.weightDecay,
    set: (r, v) => {
      r.weightDecay = v;
    },
  }),
  row({
    field: 'trainIters',
    flag: '--train-iters <n>',
    neoxKey: 'train-iters',
    help: 'optimizer steps',
    ...positiveInt,
    get: (r) => r.trainIters,
    set: (r, v) => {
      r.trainIters = v;
    },
  }),
  row({
    field: 'lrDecayIters',
    flag: '--lr-decay-iters <n>',
    neoxKey: 'lr-decay-iters',
    help: 'length of the LR schedule (default: train-iters)',
    ...positiveInt,
    get: (r) => r.schedule.decayIters,
    set: (r, v) => {
      r.schedule.decayIters = v;
    },
  }),
  row({
    field: 'lrDecayStyle',
    flag: '--lr-decay-style <style>',
    neoxKey: 'lr-decay-style',
    help: 'schedule after warmup',
    ...oneOf(LR_DECAY_STYLES),
    choices: LR_DECAY_STYLES,
    get: (r) => r.schedule.decayStyle,
    set: (r, v) => {
      r.schedule.decayStyle = v;
    },
  }),
  row({
    field: 'warmup',
    flag: '--warmup <fraction>',
    neoxKey: 'warmup',
    help: 'linear warmup as a fraction of lr-decay-iters (GPT-NeoX warmup)',
    ...fraction,
    get: (r) => r.schedule.warmup,
    set: (r, v) => {
      r.schedule.warmup = v;
    },
  }),
  row({
    field: 'checkpointFactor',
    flag: '--checkpoint-factor <n>',
    neoxKey: 'checkpoint-factor',
    help: 'save every n steps (with linear checkpoint-scale)',
    ...numberKind('a number >= 1', (x) => Number.isFinite(x) && x >= 1),
    get: (r) => r.checkpoint.checkpointFactor,
    set: (r, v) => {
      r.checkpoint.checkpointFactor = v;
    },
  }),
  row({
    field: 'checkpointScale',
    flag: '--checkpoint-scale <scale>',
    neoxKey: 'checkpoint-scale',
    help: 'linear: every factor steps; log: at powers of factor',
    ...oneOf(['linear', 'log'] as const),
    choices: ['linear', 'log'],
    get: (r) => r.checkpoint.checkpointScale,
    set: (r, v) => {
      r.checkpoint.checkpointScale = v;
    },
  }),
  row({
    field: 'extraSaveIters',
    flag: '--extra-save-iters <list>',
    neoxKey: 'extra-save-iters',
    help: 'further steps to save, e.g. 0,1,2,4,8',
    ...intList,
    get: (r) => r.checkpoint.extraSaveIters,
    set: (r, v) => {
      r.checkpoint.extraSaveIters = v;
    },
  }),
  row({
    field: 'seed',
    flag: '--seed <n>',
    neoxKey: 'seed',
    help: 'seed of the initialisation and of the data order',
    ...nonNegativeInt,
    get: (r) => r.seed,
    set: (r, v) => {
      r.seed = v;
    },
  }),
  row({
    field: 'optimizer',
    flag: '--optimizer-flavour <flavour>',
    help: 'Adam rounding: apex FusedAdam (GPT-NeoX) or torch AdamW',
    ...oneOf(ADAM_FLAVOURS),
    choices: ADAM_FLAVOURS,
    get: (r) => r.optimizer,
    set: (r, v) => {
      r.optimizer = v;
    },
  }),
];

export function settingOf(field: SettingField): RecipeSetting {
  return RECIPE_SETTINGS.find((s) => s.field === field)!;
}

/** The flag name alone (`--seq-length`). */
export function flagName(s: RecipeSetting): string {
  return s.flag!.split(' ')[0]!;
}

/** The setting read from a GPT-NeoX key (`-` or `_`, as GPT-NeoX accepts both; `a.b.c` inside blocks). */
const BY_NEOX_KEY = new Map(RECIPE_SETTINGS.filter((s) => s.neoxKey).map((s) => [s.neoxKey!.replace(/-/g, '_'), s]));

export function settingForNeoxKey(key: string): RecipeSetting | undefined {
  return BY_NEOX_KEY.get(key.replace(/-/g, '_'));
}

/** Checks a value for a setting; `where` (a flag or a key) starts the error message. */
export function checkSetting(s: RecipeSetting, value: unknown, where: string): unknown {
  try {
    return s.check(value);
  } catch (e) {
    throw new ConfigError(`${where}: ${(e as Error).message}`);
  }
}
