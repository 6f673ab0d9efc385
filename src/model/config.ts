/**
 * GPT-NeoX configuration as Hugging Face's `config.json` holds it, in either layout: the legacy one
 * of the published Pythia checkpoints (`rotary_pct`, `rotary_emb_base`, `torch_dtype`) and the
 * current one (`rope_parameters.partial_rotary_factor`, `rope_parameters.rope_theta`, `dtype`).
 */
import { ConfigError } from '../util/errors.js';

export type HiddenAct = 'gelu' | 'gelu_new' | 'gelu_fast' | 'gelu_pytorch_tanh';
export type WeightDType = 'float32' | 'float16' | 'bfloat16';

export interface NeoXConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  /** Fraction of each head's dimensions that rotary embeddings rotate. */
  rotaryPct: number;
  rotaryBase: number;
  maxPositions: number;
  layerNormEps: number;
  parallelResidual: boolean;
  hiddenAct: HiddenAct;
  tieWordEmbeddings: boolean;
  attentionBias: boolean;
  dtype: WeightDType;
  bosTokenId: number;
  eosTokenId: number;
}

const HIDDEN_ACTS: readonly HiddenAct[] = ['gelu', 'gelu_new', 'gelu_fast', 'gelu_pytorch_tanh'];

export function headDim(c: NeoXConfig): number {
  return c.hiddenSize / c.numHeads;
}

/** rotary_ndims = int(head_dim · rotary_pct), as HF computes it. */
export function rotaryDims(c: NeoXConfig): number {
  return Math.floor(headDim(c) * c.rotaryPct);
}

/** All gelu variants but exact `gelu` are the tanh approximation. */
export function geluApproximation(c: NeoXConfig): 'none' | 'tanh' {
  return c.hiddenAct === 'gelu' ? 'none' : 'tanh';
}

/**
 * Upper bounds far above any GPT-NeoX model (Pythia-12b: 36 layers, hidden 5120, vocabulary 50688,
 * 2048 positions). They refuse a small config.json that would make us allocate gigabytes before
 * anything else is checked.
 */
export const CONFIG_LIMITS = {
  vocabSize: 1 << 22,
  hiddenSize: 1 << 16,
  numLayers: 1 << 12,
  numHeads: 1 << 12,
  intermediateSize: 1 << 18,
  maxPositions: 1 << 20,
} as const satisfies Partial<Record<keyof NeoXConfig, number>>;

/** HF's config.json keys for the fields errors name. */
const HF_KEYS: Record<keyof typeof CONFIG_LIMITS, string> = {
  vocabSize: 'vocab_size',
  hiddenSize: 'hidden_size',
  numLayers: 'num_hidden_layers',
  numHeads: 'num_attention_heads',
  intermediateSize: 'intermediate_size',
  maxPositions: 'max_position_embeddings',
};

/** The sizes are positive integers within CONFIG_LIMITS. */
function checkSizes(c: NeoXConfig, source: string): void {
  for (const [k, limit] of Object.entries(CONFIG_LIMITS) as [keyof typeof CONFIG_LIMITS, number][]) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      throw new ConfigError(`${source}: ${HF_KEYS[k]} must be a positive integer, got ${JSON.stringify(v)}`);
    }
    if (v > limit) throw new ConfigError(`${source}: ${HF_KEYS[k]} is ${v}, more than the ${limit} we support`);
  }
}

export function validateConfig(c: NeoXConfig, source: string): NeoXConfig {
  checkSizes(c, source);
  if (c.hiddenSize % c.numHeads !== 0) {
    throw new ConfigError(
      `${source}: hidden_size ${c.hiddenSize} is not divisible by num_attention_heads ${c.numHeads}`,
    );
  }
  if (!(c.rotaryPct >= 0 && c.rotaryPct <= 1))
    throw new ConfigError(`${source}: rotary_pct must lie in [0, 1], got ${c.rotaryPct}`);
  if (rotaryDims(c) % 2 !== 0) throw new ConfigError(`${source}: rotary dimensions ${rotaryDims(c)} must be even`);
  if (!HIDDEN_ACTS.includes(c.hiddenAct)) {
    throw new ConfigError(
      `${source}: hidden_act ${JSON.stringify(c.hiddenAct)} is not supported (expected one of ${HIDDEN_ACTS.join(', ')})`,
    );
  }
  if (!(c.layerNormEps > 0)) throw new ConfigError(`${source}: layer_norm_eps must be positive`);
  if (!(c.rotaryBase > 0)) throw new ConfigError(`${source}: rotary base must be positive`);
  for (const [key, id] of [
    ['bos_token_id', c.bosTokenId],
    ['eos_token_id', c.eosTokenId],
  ] as const) {
    if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) {
      throw new ConfigError(
        `${source}: ${key} is ${id}, expected a token id in [0, ${c.vocabSize}) (vocab_size ${c.vocabSize})`,
      );
    }
  }
  return c;
}

type Json = Record<string, unknown>;

function field<T>(json: Json, key: string, kind: 'number' | 'boolean' | 'string', source: string, fallback?: T): T {
  const v = json[key];
  if (v === undefined || v === null) {
    if (fallback === undefined) throw new ConfigError(`${source}: missing field ${key} (expected a ${kind})`);
    return fallback;
  }
  if (typeof v !== kind) throw new ConfigError(`${source}: field ${key} must be a ${kind}, got ${JSON.stringify(v)}`);
  return v as T;
}

function parseDType(v: unknown, source: string): WeightDType {
  if (v === undefined || v === null) return 'float32';
  if (v === 'float32' || v === 'float16' || v === 'bfloat16') return v;
  throw new ConfigError(
    `${source}: dtype ${JSON.stringify(v)} is not supported (expected float32, float16 or bfloat16)`,
  );
}

/** Reads a GPTNeoXForCausalLM config.json object; `source` names the file in errors. */
export function parseHfConfig(json: unknown, source = 'config.json'): NeoXConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError(`${source}: expected a JSON object`);
  }
  const j = json as Json;
  if (j.model_type !== undefined && j.model_type !== 'gpt_neox') {
    throw new ConfigError(`${source}: model_type ${JSON.stringify(j.model_type)} is not gpt_neox`);
  }
  let rotaryPct: number;
  let rotaryBase: number;
  const rope = j.rope_parameters as Json | undefined;
  if (rope && typeof rope === 'object') {
    const type = rope.rope_type ?? 'default';
    if (type !== 'default')
      throw new ConfigError(
        `${source}: rope_parameters.rope_type ${JSON.stringify(type)} is not supported (expected default)`,
      );
    rotaryPct = field(rope, 'partial_rotary_factor', 'number', `${source} rope_parameters`, 1);
    rotaryBase = field(rope, 'rope_theta', 'number', `${source} rope_parameters`, 10000);
  } else {
    rotaryPct = field(j, 'rotary_pct', 'number', source, 0.25);
    rotaryBase = field(j, 'rotary_emb_base', 'number', source, 10000);
  }
  if (j.rope_scaling !== undefined && j.rope_scaling !== null) {
    throw new ConfigError(`${source}: rope_scaling is not supported`);
  }
  const hiddenSize = field<number>(j, 'hidden_size', 'number', source);
  const config: NeoXConfig = {
    vocabSize: field(j, 'vocab_size', 'number', source),
    hiddenSize,
    numLayers: field(j, 'num_hidden_layers', 'number', source),
    numHeads: field(j, 'num_attention_heads', 'number', source),
    intermediateSize: field(j, 'intermediate_size', 'number', source, 4 * hiddenSize),
    rotaryPct,
    rotaryBase,
    maxPositions: field(j, 'max_position_embeddings', 'number', source, 2048),
    layerNormEps: field(j, 'layer_norm_eps', 'number', source, 1e-5),
    parallelResidual: field(j, 'use_parallel_residual', 'boolean', source, true),
    hiddenAct: field(j, 'hidden_act', 'string', source, 'gelu') as HiddenAct,
    tieWordEmbeddings: field(j, 'tie_word_embeddings', 'boolean', source, false),
    attentionBias: field(j, 'attention_bias', 'boolean', source, true),
    dtype: parseDType(j.dtype ?? j.torch_dtype, source),
    bosTokenId: field(j, 'bos_token_id', 'number', source, 0),
    eosTokenId: field(j, 'eos_token_id', 'number', source, 0),
  };
  return validateConfig(config, source);
}

/**
 * The config.json we write: the legacy keys that the published Pythia checkpoints use (read by
 * every transformers version) alongside the current `rope_parameters`.
 */
export function toHfConfig(c: NeoXConfig): Record<string, unknown> {
  return {
    architectures: ['GPTNeoXForCausalLM'],
    model_type: 'gpt_neox',
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    intermediate_size: c.intermediateSize,
    hidden_act: c.hiddenAct,
    rotary_pct: c.rotaryPct,
    rotary_emb_base: c.rotaryBase,
    rope_parameters: { rope_type: 'default', partial_rotary_factor: c.rotaryPct, rope_theta: c.rotaryBase },
    max_position_embeddings: c.maxPositions,
    layer_norm_eps: c.layerNormEps,
    use_parallel_residual: c.parallelResidual,
    tie_word_embeddings: c.tieWordEmbeddings,
    attention_bias: c.attentionBias,
    attention_dropout: 0,
    hidden_dropout: 0,
    initializer_range: 0.02,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenId,
    torch_dtype: c.dtype,
    use_cache: true,
  };
}

/**
 * How GPT-NeoX v1.0 initialises a parameter: its `init_method` (embeddings, query_key_value,
 * dense_h_to_4h, the LM head), its `output_layer_init_method` (the two projections back into the
 * residual stream), zeros (every bias) or ones (LayerNorm weights). The methods themselves are in
 * src/train/init.ts.
 */
export type InitRule = 'input' | 'output' | 'zeros' | 'ones';

/** A parameter and the roles that decide how it is initialised, optimised and laid out. */
export interface ParameterSpec {
  /** Hugging Face state-dict name. */
  name: string;
  shape: number[];
  init: InitRule;
  /**
   * AdamW decays it: everything but biases and LayerNorm parameters (GPT-NeoX v1.0
   * megatron/model/utils.py `get_params_for_weight_decay_optimization`).
   */
  weightDecay: boolean;
  /**
   * query_key_value weight or bias: rows interleaved per head, [heads, 3 (q, k, v), head_dim]
   * (transformers' modeling_gpt_neox.py `GPTNeoXAttention.forward` views them so).
   */
  qkvPerHead?: true;
}

const matrix = (name: string, shape: number[], init: 'input' | 'output'): ParameterSpec => ({
  name,
  shape,
  init,
  weightDecay: true,
});
const bias = (name: string, size: number): ParameterSpec => ({
  name,
  shape: [size],
  init: 'zeros',
  weightDecay: false,
});
const layerNorm = (prefix: string, size: number): ParameterSpec[] => [
  { name: `${prefix}.weight`, shape: [size], init: 'ones', weightDecay: false },
  bias(`${prefix}.bias`, size),
];

/** Every parameter with its Hugging Face state-dict name, shape and roles, in HF's order. */
/**
 * Every parameter with its Hugging Face state-dict name and shape, in HF's order. The sizes are
 * checked first, so a config built from flags or a GPT-NeoX YAML cannot ask for ten million layers.
 */
export function parameterShapes(c: NeoXConfig): ParameterSpec[] {
  checkSizes(c, 'model config');
  const H = c.hiddenSize;
  const F = c.intermediateSize;
  const specs: ParameterSpec[] = [matrix('gpt_neox.embed_in.weight', [c.vocabSize, H], 'input')];
  for (let i = 0; i < c.numLayers; i++) {
    const p = `gpt_neox.layers.${i}`;
    specs.push(...layerNorm(`${p}.input_layernorm`, H), ...layerNorm(`${p}.post_attention_layernorm`, H), {
      ...matrix(`${p}.attention.query_key_value.weight`, [3 * H, H], 'input'),
      qkvPerHead: true,
    });
    if (c.attentionBias) specs.push({ ...bias(`${p}.attention.query_key_value.bias`, 3 * H), qkvPerHead: true });
    specs.push(matrix(`${p}.attention.dense.weight`, [H, H], 'output'));
    if (c.attentionBias) specs.push(bias(`${p}.attention.dense.bias`, H));
    specs.push(
      matrix(`${p}.mlp.dense_h_to_4h.weight`, [F, H], 'input'),
      bias(`${p}.mlp.dense_h_to_4h.bias`, F),
      matrix(`${p}.mlp.dense_4h_to_h.weight`, [H, F], 'output'),
      bias(`${p}.mlp.dense_4h_to_h.bias`, H),
    );
  }
  specs.push(...layerNorm('gpt_neox.final_layer_norm', H));
  if (!c.tieWordEmbeddings) specs.push(matrix('embed_out.weight', [c.vocabSize, H], 'input'));
  return specs;
}

/**
 * Buffers that checkpoints written by older transformers carry and no computation uses: each
 * layer's causal mask `bias`, `masked_bias` and rotary `inv_freq`, which older versions of
 * transformers' modeling_gpt_neox.py registered as persistent buffers (`GPTNeoXAttention.__init__`,
 * `RotaryEmbedding.__init__`). Loading skips them.
 */
export function ignoredBuffers(c: NeoXConfig): Set<string> {
  const names = new Set<string>();
  for (let i = 0; i < c.numLayers; i++) {
    for (const buffer of ['bias', 'masked_bias', 'rotary_emb.inv_freq'])
      names.add(`gpt_neox.layers.${i}.attention.${buffer}`);
  }
  return names;
}

/** How many tensors parameterShapes lists, without building the list. */
export function parameterTensorCount(c: NeoXConfig): number {
  const perLayer = 10 + (c.attentionBias ? 2 : 0);
  return 1 + c.numLayers * perLayer + 2 + (c.tieWordEmbeddings ? 0 : 1);
}

/** Parameter counts, from the sizes alone (the same sums as over parameterShapes). */
export function countParameters(c: NeoXConfig): { total: number; nonEmbedding: number } {
  const H = c.hiddenSize;
  const F = c.intermediateSize;
  const perLayer = 4 * H + 3 * H * H + H * H + 2 * F * H + F + H + (c.attentionBias ? 3 * H + H : 0);
  const embedding = c.vocabSize * H * (c.tieWordEmbeddings ? 1 : 2);
  const nonEmbedding = c.numLayers * perLayer + 2 * H;
  return { total: embedding + nonEmbedding, nonEmbedding };
}
