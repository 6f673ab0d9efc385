/**
 * Training recipes: the Pythia suites as published (EleutherAI/pythia's README and
 * models/<size>/*.yml), on the Pile and on the deduplicated Pile, and `nano`, a suite of the same
 * shape sized for a 2-core machine.
 */
import type { NeoXConfig } from '../model/config.js';
import { PYTHIA_SIZES, pythiaArchitecture } from '../model/presets.js';
import { ConfigError } from '../util/errors.js';
import type { AdamFlavour } from './adamw.js';
import {
  type CheckpointSchedule,
  PYTHIA_CHECKPOINT_SCHEDULE,
  scaledCheckpointSchedule,
} from './checkpoint-schedule.js';
import { type InitRecipe, NEOX_DEFAULT_INIT, PYTHIA_INIT } from './init.js';
import { type LrSchedule, validateLrSchedule } from './lr-schedule.js';

export interface TrainRecipe {
  seqLength: number;
  /** Sequences per optimizer step (GPT-NeoX `train_batch_size`). */
  trainBatchSize: number;
  /** Sequences per forward/backward pass (GPT-NeoX `train_micro_batch_size_per_gpu`). */
  microBatchSize: number;
  trainIters: number;
  /** The learning rate: peak, floor, warmup and decay over `decayIters` (GPT-NeoX `lr-decay-iters`, Pythia: train-iters). */
  schedule: LrSchedule;
  weightDecay: number;
  /** Global gradient-norm limit; 0 disables clipping. */
  gradientClipping: number;
  betas: [number, number];
  eps: number;
  optimizer: AdamFlavour;
  seed: number;
  init: InitRecipe;
  checkpoint: CheckpointSchedule;
}

export type Precision = 'fp16' | 'bf16';

/** How the published run was laid out on its cluster (for GPT-NeoX config export only). */
export interface ClusterLayout {
  microBatchPerGpu: number;
  gradientAccumulationSteps: number;
  modelParallelSize: number;
  precision: Precision;
  zeroStage: number;
  /** ZeRO's allgather and reduce bucket size, in elements. */
  zeroBucketSize: number;
}

/** The two corpora Pythia was trained on: the Pile, and the Pile near-deduplicated. */
export const PYTHIA_CORPORA = ['pile', 'pile-deduped'] as const;
export type PythiaCorpus = (typeof PYTHIA_CORPORA)[number];

/** What a published run trained on (EleutherAI/pythia's README and models/<size>/*.yml). */
export interface TrainingData {
  corpus: PythiaCorpus;
  description: string;
  /** Passes over the corpus in 143,000 steps of 1024 × 2048 tokens, as the README rounds it. */
  epochs: number;
  /** The prefix of the models/*.yml train-, valid- and test-data-paths (one file for all three). */
  neoxDataPath: string;
  /** The samples in training order, one of 2049 tokens per item (Hugging Face dataset). */
  preshuffledDataset: string;
  /** The tokenized documents GPT-NeoX's index maps shuffle (Hugging Face dataset); null: not published. */
  idxmapsDataset: string | null;
}

/** How often the published run validated, and on how many batches (GPT-NeoX `eval-interval`, `eval-iters`). */
export interface EvaluationSettings {
  interval: number;
  iters: number;
}

export interface ModelPreset {
  name: string;
  config: NeoXConfig;
  recipe: TrainRecipe;
  cluster?: ClusterLayout;
  evaluation?: EvaluationSettings;
  /** What the published run trained on (Pythia presets only). */
  data?: TrainingData;
}

export interface SuitePreset {
  name: string;
  description: string;
  models: ModelPreset[];
}

export function gradientAccumulationSteps(r: TrainRecipe): number {
  return r.trainBatchSize / r.microBatchSize;
}

export function validateRecipe(r: TrainRecipe): void {
  const ints: [string, number][] = [
    ['seq-length', r.seqLength],
    ['train-batch-size', r.trainBatchSize],
    ['train-micro-batch-size-per-gpu', r.microBatchSize],
    ['train-iters', r.trainIters],
  ];
  for (const [key, v] of ints)
    if (!(Number.isInteger(v) && v >= 1)) throw new ConfigError(`${key}: expected a positive integer, got ${v}`);
  if (r.trainBatchSize % r.microBatchSize !== 0)
    throw new ConfigError(
      `train-batch-size ${r.trainBatchSize} is not a multiple of train-micro-batch-size-per-gpu ${r.microBatchSize}`,
    );
  if (!(Number.isInteger(r.seed) && r.seed >= 0))
    throw new ConfigError(`seed: expected a non-negative integer, got ${r.seed}`);
  if (!(r.weightDecay >= 0)) throw new ConfigError(`weight-decay: expected a number >= 0, got ${r.weightDecay}`);
  if (!(r.gradientClipping >= 0))
    throw new ConfigError(`gradient-clipping: expected a number >= 0, got ${r.gradientClipping}`);
  validateLrSchedule(r.schedule);
}

/** Equal recipes, whatever order built their objects (keys compared sorted). */
export function sameRecipe(a: TrainRecipe, b: TrainRecipe): boolean {
  const canonical = (value: unknown): string =>
    JSON.stringify(value, (_key, v: unknown) =>
      v && typeof v === 'object' && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v as object).sort(([x], [y]) => x.localeCompare(y)))
        : v,
    );
  return canonical(a) === canonical(b);
}

/** The recipe every Pythia size shares (the settings common to every EleutherAI/pythia models/<size>/*.yml). */
function pythiaRecipe(lr: number, microBatchSize: number, init: InitRecipe): TrainRecipe {
  return {
    seqLength: 2048,
    trainBatchSize: 1024,
    microBatchSize,
    trainIters: 143000,
    schedule: { lr, minLr: Number((lr / 10).toPrecision(12)), warmup: 0.01, decayIters: 143000, decayStyle: 'cosine' },
    weightDecay: 0.1,
    gradientClipping: 1.0,
    betas: [0.9, 0.95],
    eps: 1e-8,
    optimizer: 'apex',
    seed: 1234,
    init,
    checkpoint: PYTHIA_CHECKPOINT_SCHEDULE,
  };
}

/**
 * Each corpus, from the README ("Models", "Reproducing Training", "Exploring the Dataset") and the
 * data paths of models/<size>/pythia-<size>[-deduped].yml. Every model saw 299,892,736,000 tokens:
 * "just under 1 epoch on the Pile", "≈ 1.5 epochs on the deduped Pile (which contains 207B tokens
 * in 1 epoch)".
 */
export const PYTHIA_DATA: Readonly<Record<PythiaCorpus, TrainingData>> = {
  pile: {
    corpus: 'pile',
    description: 'the Pile, just under 1 epoch',
    epochs: 1,
    neoxDataPath: '/fsx/pile/pile_20B_tokenizer_text_document',
    preshuffledDataset: 'EleutherAI/pile-standard-pythia-preshuffled',
    idxmapsDataset: null,
  },
  'pile-deduped': {
    corpus: 'pile-deduped',
    description: 'the Pile near-deduplicated (207B tokens an epoch), about 1.5 epochs',
    epochs: 1.5,
    neoxDataPath: '/fsx/pile_deduped/pile_0.87_deduped_text_document',
    preshuffledDataset: 'EleutherAI/pile-deduped-pythia-preshuffled',
    idxmapsDataset: 'EleutherAI/pythia_deduped_pile_idxmaps',
  },
};

/** A published size's run on each corpus: its precision, or null where there is no such run. */
type PrecisionByCorpus = Record<PythiaCorpus, Precision | null>;

/**
 * Per size, from the Pythia repo's models/<size>/pythia-<size>.yml: lr, the cluster layout, and
 * eval-interval (eval-iters is 10 in every file); the -deduped.yml files differ only in their data
 * paths. The precision of each run is the README's: fp16 for every model but pythia-1b.
 */
const PYTHIA_TABLE: Record<
  string,
  { lr: number; cluster: Omit<ClusterLayout, 'precision'>; precision: PrecisionByCorpus; evalInterval: number }
> = {
  '14m': {
    lr: 1.0e-3,
    evalInterval: 100000,
    cluster: {
      microBatchPerGpu: 32,
      gradientAccumulationSteps: 1,
      modelParallelSize: 1,
      zeroStage: 0,
      zeroBucketSize: 50000000,
    },
    // No deduplicated run (README, November 2023: planned).
    precision: { pile: 'fp16', 'pile-deduped': null },
  },
  '31m': {
    lr: 1.0e-3,
    evalInterval: 100000,
    cluster: {
      microBatchPerGpu: 32,
      gradientAccumulationSteps: 1,
      modelParallelSize: 1,
      zeroStage: 0,
      zeroBucketSize: 500000000,
    },
    // No deduplicated run (README, November 2023: planned).
    precision: { pile: 'fp16', 'pile-deduped': null },
  },
  '70m': {
    lr: 1.0e-3,
    evalInterval: 100000,
    cluster: {
      microBatchPerGpu: 32,
      gradientAccumulationSteps: 1,
      modelParallelSize: 1,
      zeroStage: 1,
      zeroBucketSize: 500000000,
    },
    precision: { pile: 'fp16', 'pile-deduped': 'fp16' },
  },
  '160m': {
    lr: 6.0e-4,
    evalInterval: 40000,
    cluster: {
      microBatchPerGpu: 32,
      gradientAccumulationSteps: 1,
      modelParallelSize: 1,
      zeroStage: 1,
      zeroBucketSize: 500000000,
    },
    precision: { pile: 'fp16', 'pile-deduped': 'fp16' },
  },
  '410m': {
    lr: 3.0e-4,
    evalInterval: 40000,
    cluster: {
      microBatchPerGpu: 32,
      gradientAccumulationSteps: 1,
      modelParallelSize: 1,
      zeroStage: 1,
      zeroBucketSize: 500000000,
    },
    precision: { pile: 'fp16', 'pile-deduped': 'fp16' },
  },
  // pythia-1b: the yml says 2.5e-4 (the README table says 3e-4) and fp16, but the README says the
  // released model trained in bf16 (fp16 had a loss spike late in training); pythia-1b-deduped in fp16.
  '1b': {
    lr: 2.5e-4,
    evalInterval: 40000,
    cluster: {
      microBatchPerGpu: 16,
      gradientAccumulationSteps: 1,
      modelParallelSize: 1,
      zeroStage: 1,
      zeroBucketSize: 500000000,
    },
    precision: { pile: 'bf16', 'pile-deduped': 'fp16' },
  },
  '1.4b': {
    lr: 2.0e-4,
    evalInterval: 40000,
    cluster: {
      microBatchPerGpu: 16,
      gradientAccumulationSteps: 1,
      modelParallelSize: 1,
      zeroStage: 1,
      zeroBucketSize: 500000000,
    },
    precision: { pile: 'fp16', 'pile-deduped': 'fp16' },
  },
  '2.8b': {
    lr: 1.6e-4,
    evalInterval: 40000,
    cluster: {
      microBatchPerGpu: 16,
      gradientAccumulationSteps: 1,
      modelParallelSize: 1,
      zeroStage: 1,
      zeroBucketSize: 500000000,
    },
    precision: { pile: 'fp16', 'pile-deduped': 'fp16' },
  },
  '6.9b': {
    lr: 1.2e-4,
    evalInterval: 1000,
    cluster: {
      microBatchPerGpu: 8,
      gradientAccumulationSteps: 2,
      modelParallelSize: 2,
      zeroStage: 1,
      zeroBucketSize: 1260000000,
    },
    precision: { pile: 'fp16', 'pile-deduped': 'fp16' },
  },
  '12b': {
    lr: 1.2e-4,
    evalInterval: 1000,
    cluster: {
      microBatchPerGpu: 8,
      gradientAccumulationSteps: 2,
      modelParallelSize: 4,
      zeroStage: 1,
      zeroBucketSize: 1260000000,
    },
    precision: { pile: 'fp16', 'pile-deduped': 'fp16' },
  },
};

/** 6.9b and 12b got GPT-NeoX's default init (README "Erata", issue #135). */
const DEFAULT_INIT_SIZES = new Set(['6.9b', '12b']);

export const PYTHIA_SIZE_NAMES = Object.keys(PYTHIA_TABLE);
/** The sizes also trained on the deduplicated Pile (70m to 12b). */
export const PYTHIA_DEDUPED_SIZE_NAMES = PYTHIA_SIZE_NAMES.filter((s) => PYTHIA_TABLE[s]!.precision['pile-deduped']);
/** Every published model: `pythia-<size>`, then `pythia-<size>-deduped`. */
export const PYTHIA_MODEL_NAMES = [
  ...PYTHIA_SIZE_NAMES.map((s) => `pythia-${s}`),
  ...PYTHIA_DEDUPED_SIZE_NAMES.map((s) => `pythia-${s}-deduped`),
];

/** A published model by name: `pythia-<size>` or `pythia-<size>-deduped` (`pythia-` may be left out). */
export function pythiaModelPreset(name: string): ModelPreset {
  const [, s, deduped] = /^(?:pythia-)?(.+?)(-deduped)?$/.exec(name) ?? [];
  const corpus: PythiaCorpus = deduped ? 'pile-deduped' : 'pile';
  const row = s === undefined ? undefined : PYTHIA_TABLE[s];
  const spec = s === undefined ? undefined : PYTHIA_SIZES[s];
  const precision = row?.precision[corpus];
  if (!row || !spec || !precision)
    throw new ConfigError(`preset: unknown Pythia model ${name} (expected one of ${PYTHIA_MODEL_NAMES.join(', ')})`);
  const config = { ...pythiaArchitecture(spec), dtype: 'float32' as const };
  const init = DEFAULT_INIT_SIZES.has(s!) ? NEOX_DEFAULT_INIT : PYTHIA_INIT;
  return {
    name: `pythia-${s}${deduped ?? ''}`,
    config,
    recipe: pythiaRecipe(row.lr, row.cluster.microBatchPerGpu, init),
    cluster: { ...row.cluster, precision },
    evaluation: { interval: row.evalInterval, iters: 10 },
    data: { ...PYTHIA_DATA[corpus] },
  };
}

/**
 * nano: four sizes spanning 31× in non-embedding parameters (25k, 100k, 336k, 793k), trained on
 * the same 256 batches of 16 × 128 tokens (524,288 tokens each), with 14 checkpoints in Pythia's
 * shape (0, 1, 2, ..., 16, then every 32 steps to 256). Vocabulary 4096 (the synthetic corpus's
 * tokenizer; override with the data's own vocabulary size).
 */
export const NANO_VOCAB = 4096;
const NANO_SIZES: { name: string; numLayers: number; hiddenSize: number; numHeads: number; lr: number }[] = [
  { name: 'nano-25k', numLayers: 2, hiddenSize: 32, numHeads: 2, lr: 4e-3 },
  { name: 'nano-100k', numLayers: 2, hiddenSize: 64, numHeads: 4, lr: 3e-3 },
  { name: 'nano-336k', numLayers: 3, hiddenSize: 96, numHeads: 4, lr: 2e-3 },
  { name: 'nano-793k', numLayers: 4, hiddenSize: 128, numHeads: 4, lr: 1.5e-3 },
];

export function nanoRecipe(lr: number): TrainRecipe {
  const trainIters = 256;
  const pythia = pythiaRecipe(lr, 16, PYTHIA_INIT);
  return {
    ...pythia,
    seqLength: 128,
    trainBatchSize: 16,
    trainIters,
    schedule: { ...pythia.schedule, decayIters: trainIters, warmup: 0.05 },
    checkpoint: scaledCheckpointSchedule(trainIters, 8),
  };
}

export function nanoModelPresets(vocabSize = NANO_VOCAB): ModelPreset[] {
  return NANO_SIZES.map(({ name, lr, ...spec }) => {
    const recipe = nanoRecipe(lr);
    const config = {
      ...pythiaArchitecture({ ...spec, vocabSize, maxPositions: recipe.seqLength }),
      dtype: 'float32' as const,
    };
    return { name, config, recipe };
  });
}

export const SUITE_NAMES = ['pythia', 'pythia-deduped', 'nano'] as const;

export function suitePreset(name: string, vocabSize?: number): SuitePreset {
  if (name === 'pythia')
    return {
      name,
      description: 'the Pythia suite, 14m to 12b, as published (the Pile)',
      models: PYTHIA_SIZE_NAMES.map(pythiaModelPreset),
    };
  if (name === 'pythia-deduped')
    return {
      name,
      description: 'the Pythia suite on the deduplicated Pile, 70m to 12b, as published',
      models: PYTHIA_DEDUPED_SIZE_NAMES.map((s) => pythiaModelPreset(`${s}-deduped`)),
    };
  if (name === 'nano')
    return {
      name,
      description: 'four small sizes for a 2-core machine (25k to 793k non-embedding parameters)',
      models: nanoModelPresets(vocabSize),
    };
  throw new ConfigError(`preset: unknown suite ${name} (expected ${SUITE_NAMES.join(', ')})`);
}

/** A model preset by name: a published Pythia model (`70m`, `pythia-70m`, `pythia-70m-deduped`) or a nano size (`nano-100k`). */
export function modelPreset(name: string, vocabSize?: number): ModelPreset {
  const nano = nanoModelPresets(vocabSize).find((m) => m.name === name);
  if (nano) return nano;
  const pythia = name.startsWith('pythia-') ? name : `pythia-${name}`;
  if (PYTHIA_MODEL_NAMES.includes(pythia)) return pythiaModelPreset(pythia);
  const known = [
    ...PYTHIA_SIZE_NAMES,
    ...PYTHIA_DEDUPED_SIZE_NAMES.map((s) => `${s}-deduped`),
    ...NANO_SIZES.map((s) => s.name),
  ].join(', ');
  throw new ConfigError(`preset: unknown model ${name} (expected one of ${known})`);
}

/**
 * Pads a tokenizer's vocabulary as GPT-NeoX v1.0 does (megatron/tokenizer/tokenizer.py
 * `_vocab_size_with_padding`): up to a multiple of `make_vocab_size_divisible_by` (128) times the
 * model-parallel size. The GPT-NeoX-20B tokenizer (50277 tokens) gives 50304 with one model-parallel
 * rank, 50432 with two (Pythia 6.9b) and 50688 with four (12b).
 */
export function paddedVocabSize(tokenizerVocab: number, modelParallelSize = 1, divisibleBy = 128): number {
  const multiple = divisibleBy * modelParallelSize;
  return Math.ceil(tokenizerVocab / multiple) * multiple;
}

/**
 * The preset with its vocabulary sized for a tokenizer, padded for the preset's model-parallel size
 * (or the one a GPT-NeoX config gives, with its `make_vocab_size_divisible_by`).
 */
export function withTokenizerVocab(
  preset: ModelPreset,
  tokenizerVocab: number | undefined,
  padding: { modelParallelSize?: number; divisibleBy?: number } = {},
): ModelPreset {
  if (tokenizerVocab === undefined) return preset;
  const vocabSize = paddedVocabSize(
    tokenizerVocab,
    padding.modelParallelSize ?? preset.cluster?.modelParallelSize ?? 1,
    padding.divisibleBy,
  );
  return { ...preset, config: { ...preset.config, vocabSize } };
}
