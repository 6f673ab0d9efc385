/**
 * GPT-NeoX v1.0 configuration files: writing them for a preset (so a suite can be trained on a
 * GPT-NeoX cluster with the same architecture, recipe, seed and checkpoint schedule) and reading
 * them back (YAML or JSON; keys spelt with `-` or `_`, as GPT-NeoX accepts both).
 *
 * Key names follow the Pythia repo's models/<size>/pythia-<size>.yml and GPT-NeoX v1.0's
 * neox_args. Keys that only concern a cluster (parallelism, fusion kernels, ZeRO, fp16 loss
 * scaling, logging) are accepted and ignored; other unknown keys produce a warning.
 */
import { stringify, parse, YAMLParseError } from 'yaml';
import type { NeoXConfig } from '../model/config.js';
import { ConfigError } from '../util/errors.js';
import { INIT_METHODS, type InitMethod } from './init.js';
import { LR_DECAY_STYLES } from './lr-schedule.js';
import { applyOverrides, type RecipeOverrides } from './overrides.js';
import { gradientAccumulationSteps, validateRecipe, type ModelPreset } from './recipes.js';

export interface NeoxExportOptions {
  /** Dataset prefix written to train/valid/test-data-paths (Pythia uses one file for all three). */
  dataPrefix?: string;
  /** Tokenizer file (GPT-NeoX `vocab-file`, tokenizer-type HFTokenizer). */
  vocabFile?: string;
  /** Checkpoint folder for `save` and `load`. */
  saveDir?: string;
}

/** A GPT-NeoX v1.0 YAML config for one model preset. */
export function neoxConfigYaml(preset: ModelPreset, options: NeoxExportOptions = {}): string {
  const { config: c, recipe: r, cluster } = preset;
  const microBatch = cluster?.microBatchPerGpu ?? r.microBatchSize;
  const gas = cluster?.gradientAccumulationSteps ?? gradientAccumulationSteps(r);
  const dataPrefix = options.dataPrefix ?? 'data/pile_20B_tokenizer_text_document';
  const doc: Record<string, unknown> = {
    'pipe-parallel-size': 1,
    'model-parallel-size': cluster?.modelParallelSize ?? 1,
    'num-layers': c.numLayers,
    'hidden-size': c.hiddenSize,
    'num-attention-heads': c.numHeads,
    'seq-length': r.seqLength,
    'max-position-embeddings': c.maxPositions,
    'pos-emb': 'rotary',
    'rotary-pct': c.rotaryPct,
    rotary_emb_base: c.rotaryBase,
    'no-weight-tying': !c.tieWordEmbeddings,
    'gpt-j-residual': c.parallelResidual,
    'output-layer-parallelism': 'column',
    norm: 'layernorm',
    'layernorm-epsilon': c.layerNormEps,
    activation: 'gelu',
    'scaled-upper-triang-masked-softmax-fusion': true,
    'bias-gelu-fusion': true,
    init_method: r.init.initMethod,
    output_layer_init_method: r.init.outputLayerInitMethod,
    init_method_std: r.init.initMethodStd,
    optimizer: { type: 'Adam', params: { lr: r.lr, betas: r.betas, eps: r.eps } },
    min_lr: r.minLr,
    zero_optimization: {
      stage: cluster?.zeroStage ?? 0,
      allgather_partitions: true,
      allgather_bucket_size: 500000000,
      overlap_comm: true,
      reduce_scatter: true,
      reduce_bucket_size: 500000000,
      contiguous_gradients: true,
    },
    train_batch_size: r.trainBatchSize,
    train_micro_batch_size_per_gpu: microBatch,
    gradient_accumulation_steps: gas,
    'data-impl': 'mmap',
    'checkpoint-activations': cluster !== undefined,
    'checkpoint-num-layers': 1,
    'partition-activations': cluster !== undefined,
    'synchronize-each-layer': cluster !== undefined,
    gradient_clipping: r.gradientClipping,
    'weight-decay': r.weightDecay,
    'hidden-dropout': 0,
    'attention-dropout': 0,
    ...precisionBlock(cluster?.precision),
    'train-iters': r.trainIters,
    'lr-decay-iters': r.lrDecayIters,
    'distributed-backend': 'nccl',
    'lr-decay-style': r.lrDecayStyle,
    warmup: r.warmup,
    'checkpoint-factor': r.checkpoint.checkpointFactor,
    'checkpoint-scale': r.checkpoint.checkpointScale,
    'extra-save-iters': r.checkpoint.extraSaveIters,
    'eval-interval': r.trainIters,
    'eval-iters': 10,
    'log-interval': 10,
    steps_per_print: 10,
    seed: r.seed,
    'train-data-paths': [dataPrefix],
    'valid-data-paths': [dataPrefix],
    'test-data-paths': [dataPrefix],
    'tokenizer-type': 'HFTokenizer',
    'vocab-file': options.vocabFile ?? 'data/20B_tokenizer.json',
    ...(options.saveDir ? { save: options.saveDir, load: options.saveDir } : {}),
  };
  if (doc['checkpoint-factor'] === undefined) delete doc['checkpoint-factor'];
  const dataParallel = (cluster?.modelParallelSize ?? 1) * (r.trainBatchSize / (microBatch * gas));
  const header = [
    `# ${preset.name}: GPT-NeoX v1.0 config written by pythia-ts (pythia export neox-config).`,
    `# Global batch ${r.trainBatchSize} sequences = micro-batch ${microBatch} x gradient accumulation ${gas} x data-parallel GPUs;`,
    `# this layout needs ${dataParallel} GPUs (model-parallel ${cluster?.modelParallelSize ?? 1}).`,
    `# Padded vocabulary for this run: ${c.vocabSize} (tokenizer size rounded up to a multiple of 128 x model-parallel).`,
  ];
  return `${header.join('\n')}\n${pyyamlFloats(stringify(doc, { lineWidth: 0 }))}`;
}

/**
 * GPT-NeoX reads configs with PyYAML (YAML 1.1), which takes `1e-8` for a string: a float needs a
 * dot and a signed exponent (`1.0e-8`), as the Pythia configs write it.
 */
function pyyamlFloats(yamlText: string): string {
  return yamlText.replace(/(?<=(?:: |- ))(-?\d+)(?:\.(\d+))?e([-+]?)(\d+)$/gm, (_m, int: string, frac: string | undefined, sign: string, exp: string) =>
    `${int}.${frac ?? '0'}e${sign || '+'}${exp}`);
}

function precisionBlock(precision: 'fp16' | 'bf16' | undefined): Record<string, unknown> {
  if (precision === 'fp16')
    return { fp16: { fp16: true, enabled: true, loss_scale: 0, loss_scale_window: 1000, initial_scale_power: 12, hysteresis: 2, min_loss_scale: 1 } };
  if (precision === 'bf16') return { bf16: { enabled: true } };
  return {};
}

/** What a GPT-NeoX config file sets, in our terms; absent keys are absent. */
export interface NeoxConfigValues {
  architecture: Partial<Pick<NeoXConfig, 'numLayers' | 'hiddenSize' | 'numHeads' | 'intermediateSize' | 'maxPositions' | 'rotaryPct' | 'rotaryBase' | 'parallelResidual' | 'tieWordEmbeddings' | 'layerNormEps'>>;
  recipe: Omit<RecipeOverrides, 'optimizer'> & {
    betas?: [number, number];
    eps?: number;
    initMethod?: InitMethod;
    outputLayerInitMethod?: InitMethod;
    initMethodStd?: number;
  };
  data: { trainDataPaths?: string[]; dataPath?: string; vocabFile?: string; makeVocabSizeDivisibleBy?: number };
  warnings: string[];
}

/** Keys that only concern how a GPT-NeoX cluster runs; read without effect here. */
const CLUSTER_KEYS = new Set([
  'pipe_parallel_size', 'model_parallel_size', 'output_layer_parallelism', 'scaled_upper_triang_masked_softmax_fusion',
  'scaled_masked_softmax_fusion', 'bias_gelu_fusion', 'bias_dropout_fusion', 'attention_config', 'zero_optimization',
  'checkpoint_activations', 'checkpoint_num_layers', 'partition_activations', 'synchronize_each_layer', 'fp16', 'bf16',
  'precision', 'fp32_allreduce', 'data_impl', 'num_workers', 'distributed_backend', 'eval_interval', 'eval_iters',
  'log_interval', 'steps_per_print', 'wall_clock_breakdown', 'launcher', 'deepspeed_mpi', 'save', 'load',
  'tensorboard_dir', 'log_dir', 'use_wandb', 'wandb_group', 'wandb_project', 'wandb_team', 'keep_last_n_checkpoints',
  'override_lr_scheduler', 'use_checkpoint_lr_scheduler', 'hostfile', 'include', 'master_port', 'tokenizer_type',
  'valid_data_paths', 'test_data_paths', 'split', 'train_data_weights', 'valid_data_weights', 'test_data_weights',
  'gpt_j_tied', 'apply_query_key_layer_scaling', 'attention_softmax_in_fp32', 'no_load_optim', 'no_load_rng',
  'finetune', 'memory_profiling', 'log_grad_norm', 'log_optimizer_states', 'log_gradient_noise_scale',
  'weight_by_num_documents', 'weighted_sampler_alpha', 'no_save_optim', 'no_save_rng', 'gradient_predivide_factor',
]);

type Reader = (key: string, value: unknown, out: NeoxConfigValues) => void;

function num(key: string, v: unknown, check: (x: number) => boolean = Number.isFinite, expected = 'a number'): number {
  if (typeof v !== 'number' || !check(v)) throw new ConfigError(`${key}: expected ${expected}, got ${JSON.stringify(v)}`);
  return v;
}
const posInt = (key: string, v: unknown): number => num(key, v, (x) => Number.isInteger(x) && x >= 1, 'a positive integer');
const nonNeg = (key: string, v: unknown): number => num(key, v, (x) => Number.isFinite(x) && x >= 0, 'a number >= 0');
function bool(key: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new ConfigError(`${key}: expected true or false, got ${JSON.stringify(v)}`);
  return v;
}
function oneOf<T extends string>(key: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !allowed.includes(v as T)) throw new ConfigError(`${key}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}
function paths(key: string, v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v) || v.length === 0 || !v.every((p) => typeof p === 'string')) throw new ConfigError(`${key}: expected a list of dataset paths, got ${JSON.stringify(v)}`);
  return v as string[];
}
function betas(key: string, v: unknown): [number, number] {
  if (!Array.isArray(v) || v.length !== 2 || !v.every((b) => typeof b === 'number' && b >= 0 && b < 1))
    throw new ConfigError(`${key}: expected two numbers in [0, 1), got ${JSON.stringify(v)}`);
  return [v[0], v[1]];
}

const READERS: Record<string, Reader> = {
  num_layers: (k, v, o) => void (o.architecture.numLayers = posInt(k, v)),
  hidden_size: (k, v, o) => void (o.architecture.hiddenSize = posInt(k, v)),
  num_attention_heads: (k, v, o) => void (o.architecture.numHeads = posInt(k, v)),
  intermediate_size: (k, v, o) => void (o.architecture.intermediateSize = posInt(k, v)),
  max_position_embeddings: (k, v, o) => void (o.architecture.maxPositions = posInt(k, v)),
  rotary_pct: (k, v, o) => void (o.architecture.rotaryPct = num(k, v, (x) => x > 0 && x <= 1, 'a fraction in (0, 1]')),
  rotary_emb_base: (k, v, o) => void (o.architecture.rotaryBase = num(k, v, (x) => x > 0, 'a positive number')),
  gpt_j_residual: (k, v, o) => void (o.architecture.parallelResidual = bool(k, v)),
  no_weight_tying: (k, v, o) => void (o.architecture.tieWordEmbeddings = !bool(k, v)),
  layernorm_epsilon: (k, v, o) => void (o.architecture.layerNormEps = num(k, v, (x) => x > 0, 'a positive number')),
  pos_emb: (k, v) => void oneOf(k, v, ['rotary']),
  norm: (k, v) => void oneOf(k, v, ['layernorm']),
  activation: (k, v) => void oneOf(k, v, ['gelu']),
  hidden_dropout: (k, v) => void num(k, v, (x) => x === 0, '0 (dropout is not implemented)'),
  attention_dropout: (k, v) => void num(k, v, (x) => x === 0, '0 (dropout is not implemented)'),
  seq_length: (k, v, o) => void (o.recipe.seqLength = posInt(k, v)),
  train_batch_size: (k, v, o) => void (o.recipe.trainBatchSize = posInt(k, v)),
  train_micro_batch_size_per_gpu: (k, v, o) => void (o.recipe.microBatchSize = posInt(k, v)),
  gradient_accumulation_steps: (k, v, o) => void (o.recipe.gradientAccumulationSteps = posInt(k, v)),
  gas: (k, v, o) => void (o.recipe.gradientAccumulationSteps = posInt(k, v)),
  train_iters: (k, v, o) => void (o.recipe.trainIters = posInt(k, v)),
  lr_decay_iters: (k, v, o) => void (o.recipe.lrDecayIters = posInt(k, v)),
  lr: (k, v, o) => void (o.recipe.lr = nonNeg(k, v)),
  min_lr: (k, v, o) => void (o.recipe.minLr = nonNeg(k, v)),
  lr_decay_style: (k, v, o) => void (o.recipe.lrDecayStyle = oneOf(k, v, LR_DECAY_STYLES)),
  warmup: (k, v, o) => void (o.recipe.warmup = num(k, v, (x) => x >= 0 && x <= 1, 'a fraction in [0, 1]')),
  weight_decay: (k, v, o) => void (o.recipe.weightDecay = nonNeg(k, v)),
  gradient_clipping: (k, v, o) => void (o.recipe.gradientClipping = nonNeg(k, v)),
  seed: (k, v, o) => void (o.recipe.seed = num(k, v, (x) => Number.isInteger(x) && x >= 0, 'a non-negative integer')),
  init_method: (k, v, o) => void (o.recipe.initMethod = oneOf(k, v, INIT_METHODS)),
  output_layer_init_method: (k, v, o) => void (o.recipe.outputLayerInitMethod = oneOf(k, v, INIT_METHODS)),
  init_method_std: (k, v, o) => void (o.recipe.initMethodStd = num(k, v, (x) => x > 0, 'a positive number')),
  checkpoint_factor: (k, v, o) => void (o.recipe.checkpointFactor = num(k, v, (x) => x >= 1, 'a number >= 1')),
  save_interval: (k, v, o) => void (o.recipe.checkpointFactor ??= posInt(k, v)),
  checkpoint_scale: (k, v, o) => void (o.recipe.checkpointScale = oneOf(k, v, ['linear', 'log'] as const)),
  extra_save_iters: (k, v, o) => {
    if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && x >= 0)) throw new ConfigError(`${k}: expected a list of non-negative integers, got ${JSON.stringify(v)}`);
    o.recipe.extraSaveIters = v as number[];
  },
  train_data_paths: (k, v, o) => void (o.data.trainDataPaths = paths(k, v)),
  data_path: (k, v, o) => void (o.data.dataPath = paths(k, v)[0]),
  vocab_file: (k, v, o) => {
    if (typeof v !== 'string') throw new ConfigError(`${k}: expected a file path, got ${JSON.stringify(v)}`);
    o.data.vocabFile = v;
  },
  make_vocab_size_divisible_by: (k, v, o) => void (o.data.makeVocabSizeDivisibleBy = posInt(k, v)),
  optimizer: (k, v, o) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`${k}: expected {type, params}, got ${JSON.stringify(v)}`);
    const { type, params } = v as { type?: unknown; params?: Record<string, unknown> };
    if (typeof type !== 'string' || type.toLowerCase() !== 'adam') throw new ConfigError(`${k}.type: expected Adam, got ${JSON.stringify(type)}`);
    if (params === undefined) return;
    for (const [pk, pv] of Object.entries(params)) {
      const key = `${k}.params.${pk}`;
      if (pk === 'lr') o.recipe.lr = nonNeg(key, pv);
      else if (pk === 'betas') o.recipe.betas = betas(key, pv);
      else if (pk === 'eps') o.recipe.eps = num(key, pv, (x) => x > 0, 'a positive number');
      else if (pk === 'weight_decay') o.recipe.weightDecay = nonNeg(key, pv);
      else o.warnings.push(`${key}: unknown optimizer parameter, ignored`);
    }
  },
};

/** Reads a GPT-NeoX config (YAML or JSON text); `file` names it in errors. */
export function parseNeoxConfig(text: string, file: string): NeoxConfigValues {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    const where = e instanceof YAMLParseError && e.linePos ? ` at line ${e.linePos[0].line}` : '';
    throw new ConfigError(`${file}: not valid YAML or JSON${where} (${(e as Error).message.split('\n')[0]})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ConfigError(`${file}: expected a mapping of GPT-NeoX keys`);
  const out: NeoxConfigValues = { architecture: {}, recipe: {}, data: {}, warnings: [] };
  const entries = Object.entries(doc as Record<string, unknown>).map(([k, v]) => [k.replace(/-/g, '_'), v] as const);
  // save_interval only stands in for checkpoint_factor, whatever the order of the keys.
  entries.sort(([a], [b]) => Number(a === 'save_interval') - Number(b === 'save_interval'));
  for (const [key, value] of entries) {
    const reader = READERS[key];
    try {
      if (reader) reader(key, value, out);
      else if (!CLUSTER_KEYS.has(key)) out.warnings.push(`${key}: unknown GPT-NeoX key, ignored`);
    } catch (e) {
      if (e instanceof ConfigError) throw new ConfigError(`${file}: ${e.message}`);
      throw e;
    }
  }
  const r = out.recipe;
  if (r.trainBatchSize === undefined && r.microBatchSize !== undefined) {
    const perStep = r.microBatchSize * (r.gradientAccumulationSteps ?? 1);
    out.warnings.push(`train_batch_size is not set: one process trains ${perStep} sequences per step (micro-batch x gradient_accumulation_steps); set train_batch_size for a cluster's global batch`);
  }
  return out;
}

/** `base` with everything the config file sets laid over it, checked. */
export function applyNeoxConfig(base: ModelPreset, values: NeoxConfigValues, file: string): ModelPreset {
  const v = values.recipe;
  const config: NeoXConfig = { ...base.config, ...values.architecture };
  if (values.architecture.hiddenSize !== undefined && values.architecture.intermediateSize === undefined) config.intermediateSize = 4 * config.hiddenSize;
  const microBatchSize = v.microBatchSize ?? base.recipe.microBatchSize;
  // One process: the global batch is train_batch_size when set (accumulating micro-batches to
  // reach it), else micro-batch x accumulation steps.
  const trainBatchSize = v.trainBatchSize ?? (v.gradientAccumulationSteps !== undefined || v.microBatchSize !== undefined
    ? microBatchSize * (v.gradientAccumulationSteps ?? 1)
    : base.recipe.trainBatchSize);
  try {
    const preset = applyOverrides(
      { ...base, config, recipe: { ...base.recipe, microBatchSize, trainBatchSize } },
      { ...v, trainBatchSize: undefined, microBatchSize: undefined, gradientAccumulationSteps: undefined },
    );
    const recipe = {
      ...preset.recipe,
      betas: v.betas ?? base.recipe.betas,
      eps: v.eps ?? base.recipe.eps,
      init: {
        initMethod: v.initMethod ?? base.recipe.init.initMethod,
        outputLayerInitMethod: v.outputLayerInitMethod ?? base.recipe.init.outputLayerInitMethod,
        initMethodStd: v.initMethodStd ?? base.recipe.init.initMethodStd,
      },
    };
    validateRecipe(recipe);
    return { name: base.name, config: preset.config, recipe, cluster: base.cluster };
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`${file}: ${e.message}`);
    throw e;
  }
}
