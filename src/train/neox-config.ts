/**
 * GPT-NeoX v1.0 configuration files: writing them for a preset (so a suite can be trained on a
 * GPT-NeoX cluster with the same architecture, recipe, seed and checkpoint schedule) and reading
 * them back (YAML or JSON; keys spelt with `-` or `_`, as GPT-NeoX accepts both).
 *
 * Key names follow the Pythia repo's models/<size>/pythia-<size>.yml and GPT-NeoX v1.0's
 * neox_args. Keys that only concern a cluster (parallelism, fusion kernels, ZeRO, fp16 loss
 * scaling, logging) are accepted and ignored; other unknown keys produce a warning.
 */
import { basename } from 'node:path';
import { parse, stringify, YAMLParseError } from 'yaml';
import type { NeoXConfig } from '../model/config.js';
import { ConfigError } from '../util/errors.js';
import { applyOverrides } from './overrides.js';
import { gradientAccumulationSteps, type ModelPreset, PYTHIA_DATA } from './recipes.js';
import {
  checkSetting,
  RECIPE_SETTINGS,
  type RecipeOverrides,
  type RecipeSetting,
  type SettingField,
  settingForNeoxKey,
  settingOf,
} from './settings.js';

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
  const modelParallel = cluster?.modelParallelSize ?? 1;
  // The file name of the published run's data (the cluster's folder is its own).
  const dataPrefix =
    options.dataPrefix ?? `data/${basename(preset.data?.neoxDataPath ?? PYTHIA_DATA.pile.neoxDataPath)}`;
  const doc: Record<string, unknown> = {
    'pipe-parallel-size': 1,
    'model-parallel-size': modelParallel,
    'num-layers': c.numLayers,
    'hidden-size': c.hiddenSize,
    'num-attention-heads': c.numHeads,
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
  };
  // The cluster's layout, where the preset has one, instead of one process's.
  const clusterValue: Partial<Record<SettingField, unknown>> = {
    microBatchSize: microBatch,
    gradientAccumulationSteps: gas,
  };
  for (const setting of RECIPE_SETTINGS) {
    if (!setting.neoxKey) continue;
    const value = setting.field in clusterValue ? clusterValue[setting.field] : setting.get(r);
    if (value !== undefined) setPath(doc, setting.neoxKey, value);
  }
  doc.optimizer = { type: 'Adam', ...(doc.optimizer as object) };
  Object.assign(doc, {
    zero_optimization: {
      stage: cluster?.zeroStage ?? 0,
      allgather_partitions: true,
      allgather_bucket_size: cluster?.zeroBucketSize ?? 500000000,
      overlap_comm: true,
      reduce_scatter: true,
      reduce_bucket_size: cluster?.zeroBucketSize ?? 500000000,
      contiguous_gradients: true,
    },
    'data-impl': 'mmap',
    'checkpoint-activations': cluster !== undefined,
    'checkpoint-num-layers': 1,
    'partition-activations': cluster !== undefined,
    'synchronize-each-layer': cluster !== undefined,
    'hidden-dropout': 0,
    'attention-dropout': 0,
    ...precisionBlock(cluster?.precision),
    'distributed-backend': 'nccl',
    'eval-interval': preset.evaluation?.interval ?? r.trainIters,
    'eval-iters': preset.evaluation?.iters ?? 10,
    'log-interval': 10,
    steps_per_print: 10,
    'train-data-paths': [dataPrefix],
    'valid-data-paths': [dataPrefix],
    'test-data-paths': [dataPrefix],
    'tokenizer-type': 'HFTokenizer',
    'vocab-file': options.vocabFile ?? 'data/20B_tokenizer.json',
    ...(options.saveDir ? { save: options.saveDir, load: options.saveDir } : {}),
  });
  const dataParallel = r.trainBatchSize / (microBatch * gas);
  const header = [
    `# ${preset.name}: GPT-NeoX v1.0 config written by pythia-ts (pythia export neox-config).`,
    `# Global batch ${r.trainBatchSize} sequences = micro-batch ${microBatch} x gradient accumulation ${gas} x ${dataParallel} data-parallel ranks;`,
    `# this layout needs ${dataParallel * modelParallel} GPUs (model-parallel ${modelParallel}).`,
    `# Padded vocabulary for this run: ${c.vocabSize} (tokenizer size rounded up to a multiple of 128 x model-parallel).`,
    ...(preset.data
      ? [`# The published run trained on ${preset.data.description} (${preset.data.neoxDataPath}).`]
      : []),
  ];
  return `${header.join('\n')}\n${pyyamlFloats(stringify(doc, { lineWidth: 0 }))}`;
}

/** Sets `doc[a][b][c] = value` for the key `a.b.c`, creating blocks on the way. */
function setPath(doc: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let block = doc;
  for (const part of parts.slice(0, -1)) {
    block[part] ??= {};
    block = block[part] as Record<string, unknown>;
  }
  block[parts.at(-1)!] = value;
}

/**
 * GPT-NeoX reads configs with PyYAML (YAML 1.1), which takes `1e-8` for a string: a float needs a
 * dot and a signed exponent (`1.0e-8`), as the Pythia configs write it.
 */
function pyyamlFloats(yamlText: string): string {
  return yamlText.replace(
    /(?<=(?:: |- ))(-?\d+)(?:\.(\d+))?e([-+]?)(\d+)$/gm,
    (_m, int: string, frac: string | undefined, sign: string, exp: string) =>
      `${int}.${frac ?? '0'}e${sign || '+'}${exp}`,
  );
}

/**
 * Mixed precision as GPT-NeoX v1.0 reads it: the `fp16` block, whose `type: bfloat16` selects
 * bfloat16 (v1.0 has no `bf16` key; `NeoXArgs.calculate_derived` derives `precision` from this
 * block). The loss-scaling keys are Pythia's (models/*.yml).
 */
function precisionBlock(precision: 'fp16' | 'bf16' | undefined): Record<string, unknown> {
  const scaling = { loss_scale: 0, loss_scale_window: 1000, initial_scale_power: 12, hysteresis: 2, min_loss_scale: 1 };
  if (precision === 'fp16') return { fp16: { fp16: true, enabled: true, ...scaling } };
  if (precision === 'bf16') return { fp16: { enabled: true, type: 'bfloat16', ...scaling } };
  return {};
}

/** What a GPT-NeoX config file sets, in our terms; absent keys are absent. */
export interface NeoxConfigValues {
  architecture: Partial<
    Pick<
      NeoXConfig,
      | 'numLayers'
      | 'hiddenSize'
      | 'numHeads'
      | 'intermediateSize'
      | 'maxPositions'
      | 'rotaryPct'
      | 'rotaryBase'
      | 'parallelResidual'
      | 'tieWordEmbeddings'
      | 'layerNormEps'
    >
  >;
  recipe: RecipeOverrides;
  /** Data and tokenizer, and how GPT-NeoX pads the vocabulary (make_vocab_size_divisible_by × model_parallel_size). */
  data: {
    trainDataPaths?: string[];
    dataPath?: string;
    vocabFile?: string;
    makeVocabSizeDivisibleBy?: number;
    modelParallelSize?: number;
  };
  warnings: string[];
}

/** Keys that only concern how a GPT-NeoX cluster runs; read without effect here. */
const CLUSTER_KEYS = new Set([
  'pipe_parallel_size',
  'output_layer_parallelism',
  'scaled_upper_triang_masked_softmax_fusion',
  'scaled_masked_softmax_fusion',
  'bias_gelu_fusion',
  'bias_dropout_fusion',
  'attention_config',
  'zero_optimization',
  'checkpoint_activations',
  'checkpoint_num_layers',
  'partition_activations',
  'synchronize_each_layer',
  'fp16',
  'bf16',
  'precision',
  'fp32_allreduce',
  'data_impl',
  'num_workers',
  'distributed_backend',
  'eval_interval',
  'eval_iters',
  'log_interval',
  'steps_per_print',
  'wall_clock_breakdown',
  'launcher',
  'deepspeed_mpi',
  'save',
  'load',
  'tensorboard_dir',
  'log_dir',
  'use_wandb',
  'wandb_group',
  'wandb_project',
  'wandb_team',
  'keep_last_n_checkpoints',
  'override_lr_scheduler',
  'use_checkpoint_lr_scheduler',
  'hostfile',
  'include',
  'master_port',
  'tokenizer_type',
  'valid_data_paths',
  'test_data_paths',
  'split',
  'train_data_weights',
  'valid_data_weights',
  'test_data_weights',
  'gpt_j_tied',
  'apply_query_key_layer_scaling',
  'attention_softmax_in_fp32',
  'no_load_optim',
  'no_load_rng',
  'finetune',
  'memory_profiling',
  'log_grad_norm',
  'log_optimizer_states',
  'log_gradient_noise_scale',
  'weight_by_num_documents',
  'weighted_sampler_alpha',
  'no_save_optim',
  'no_save_rng',
  'gradient_predivide_factor',
]);

type Reader = (key: string, value: unknown, out: NeoxConfigValues) => void;

function num(key: string, v: unknown, check: (x: number) => boolean = Number.isFinite, expected = 'a number'): number {
  if (typeof v !== 'number' || !check(v))
    throw new ConfigError(`${key}: expected ${expected}, got ${JSON.stringify(v)}`);
  return v;
}
const posInt = (key: string, v: unknown): number =>
  num(key, v, (x) => Number.isInteger(x) && x >= 1, 'a positive integer');
function bool(key: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new ConfigError(`${key}: expected true or false, got ${JSON.stringify(v)}`);
  return v;
}
function oneOf<T extends string>(key: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !allowed.includes(v as T))
    throw new ConfigError(`${key}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}
function paths(key: string, v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v) || v.length === 0 || !v.every((p) => typeof p === 'string'))
    throw new ConfigError(`${key}: expected a list of dataset paths, got ${JSON.stringify(v)}`);
  return v as string[];
}

/** A recipe setting's value, checked and set in `out.recipe`. */
function recipeValue(setting: RecipeSetting, key: string, v: unknown, out: NeoxConfigValues): void {
  (out.recipe as Record<string, unknown>)[setting.field] = checkSetting(setting, v, key);
}

/** Keys outside the recipe table: the architecture, data and checks of what we cannot run. */
const READERS: Record<string, Reader> = {
  num_layers: (k, v, o) => {
    o.architecture.numLayers = posInt(k, v);
  },
  hidden_size: (k, v, o) => {
    o.architecture.hiddenSize = posInt(k, v);
  },
  num_attention_heads: (k, v, o) => {
    o.architecture.numHeads = posInt(k, v);
  },
  intermediate_size: (k, v, o) => {
    o.architecture.intermediateSize = posInt(k, v);
  },
  max_position_embeddings: (k, v, o) => {
    o.architecture.maxPositions = posInt(k, v);
  },
  rotary_pct: (k, v, o) => {
    o.architecture.rotaryPct = num(k, v, (x) => x > 0 && x <= 1, 'a fraction in (0, 1]');
  },
  rotary_emb_base: (k, v, o) => {
    o.architecture.rotaryBase = num(k, v, (x) => x > 0, 'a positive number');
  },
  gpt_j_residual: (k, v, o) => {
    o.architecture.parallelResidual = bool(k, v);
  },
  no_weight_tying: (k, v, o) => {
    o.architecture.tieWordEmbeddings = !bool(k, v);
  },
  layernorm_epsilon: (k, v, o) => {
    o.architecture.layerNormEps = num(k, v, (x) => x > 0, 'a positive number');
  },
  pos_emb: (k, v) => void oneOf(k, v, ['rotary']),
  norm: (k, v) => void oneOf(k, v, ['layernorm']),
  activation: (k, v) => void oneOf(k, v, ['gelu']),
  hidden_dropout: (k, v) => void num(k, v, (x) => x === 0, '0 (dropout is not implemented)'),
  attention_dropout: (k, v) => void num(k, v, (x) => x === 0, '0 (dropout is not implemented)'),
  // GPT-NeoX's other spellings of recipe keys.
  gas: (k, v, o) => recipeValue(settingOf('gradientAccumulationSteps'), k, v, o),
  lr: (k, v, o) => recipeValue(settingOf('lr'), k, v, o),
  save_interval: (k, v, o) => {
    if (o.recipe.checkpointFactor === undefined) recipeValue(settingOf('checkpointFactor'), k, v, o);
  },
  train_data_paths: (k, v, o) => {
    o.data.trainDataPaths = paths(k, v);
  },
  data_path: (k, v, o) => {
    o.data.dataPath = paths(k, v)[0];
  },
  vocab_file: (k, v, o) => {
    if (typeof v !== 'string') throw new ConfigError(`${k}: expected a file path, got ${JSON.stringify(v)}`);
    o.data.vocabFile = v;
  },
  make_vocab_size_divisible_by: (k, v, o) => {
    o.data.makeVocabSizeDivisibleBy = posInt(k, v);
  },
  model_parallel_size: (k, v, o) => {
    o.data.modelParallelSize = posInt(k, v);
  },
  optimizer: (k, v, o) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw new ConfigError(`${k}: expected {type, params}, got ${JSON.stringify(v)}`);
    const { type, params } = v as { type?: unknown; params?: Record<string, unknown> };
    if (typeof type !== 'string' || type.toLowerCase() !== 'adam')
      throw new ConfigError(`${k}.type: expected Adam, got ${JSON.stringify(type)}`);
    if (params === undefined) return;
    for (const [pk, pv] of Object.entries(params)) {
      const key = `${k}.params.${pk}`;
      const setting = pk === 'weight_decay' ? settingOf('weightDecay') : settingForNeoxKey(key);
      if (setting) recipeValue(setting, key, pv, o);
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
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new ConfigError(`${file}: expected a mapping of GPT-NeoX keys`);
  const out: NeoxConfigValues = { architecture: {}, recipe: {}, data: {}, warnings: [] };
  const entries = Object.entries(doc as Record<string, unknown>).map(([k, v]) => [k.replace(/-/g, '_'), v] as const);
  // save_interval only stands in for checkpoint_factor, whatever the order of the keys.
  entries.sort(([a], [b]) => Number(a === 'save_interval') - Number(b === 'save_interval'));
  for (const [key, value] of entries) {
    const reader = READERS[key];
    const setting = settingForNeoxKey(key);
    try {
      if (reader) reader(key, value, out);
      else if (setting) recipeValue(setting, key, value, out);
      else if (!CLUSTER_KEYS.has(key)) out.warnings.push(`${key}: unknown GPT-NeoX key, ignored`);
    } catch (e) {
      if (e instanceof ConfigError) throw new ConfigError(`${file}: ${e.message}`);
      throw e;
    }
  }
  const r = out.recipe;
  // One process: the cluster's global batch is reached by accumulating micro-batches, so a given
  // train_batch_size decides; its gradient_accumulation_steps counts per data-parallel rank.
  if (r.trainBatchSize !== undefined && r.microBatchSize !== undefined) delete r.gradientAccumulationSteps;
  if (r.trainBatchSize === undefined && r.microBatchSize !== undefined) {
    // GPT-NeoX: a micro-batch alone means one accumulation step.
    r.gradientAccumulationSteps ??= 1;
    const perStep = r.microBatchSize * r.gradientAccumulationSteps;
    out.warnings.push(
      `train_batch_size is not set: one process trains ${perStep} sequences per step (micro-batch x gradient_accumulation_steps); set train_batch_size for a cluster's global batch`,
    );
  }
  return out;
}

/** `base` with everything the config file sets laid over it, checked. */
export function applyNeoxConfig(base: ModelPreset, values: NeoxConfigValues, file: string): ModelPreset {
  const config: NeoXConfig = { ...base.config, ...values.architecture };
  if (values.architecture.hiddenSize !== undefined && values.architecture.intermediateSize === undefined)
    config.intermediateSize = 4 * config.hiddenSize;
  try {
    const preset = applyOverrides({ ...base, config }, values.recipe);
    return {
      name: base.name,
      config: preset.config,
      recipe: preset.recipe,
      cluster: base.cluster,
      evaluation: base.evaluation,
    };
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`${file}: ${e.message}`);
    throw e;
  }
}
