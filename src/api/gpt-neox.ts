/**
 * `GPTNeoX`: a loaded checkpoint with its tokenizer, and forward, generate and score over it.
 * Named after transformers.js where it has a name (`fromPretrained`, `config`, `tokenizer`,
 * `generate`, `dispose`; exported also as `GPTNeoXForCausalLM`). Everything runs on the model
 * layer's building blocks: `forward`, `Decoder` + `generate`, `Scorer`.
 */
import { loadTokenizer, type TextTokenizer } from '../data/tokenizer.js';
import { encodePairs } from '../eval/encode.js';
import { type ActivationCache, ActivationRunner, type LogitsRequest } from '../model/activations.js';
import { readConfig, tokenizerOf } from '../model/checkpoint.js';
import type { NeoXConfig } from '../model/config.js';
import { Decoder } from '../model/decoder.js';
import { type ForwardOptions, type ForwardResult, forward, tokenMatrix } from '../model/forward.js';
import { checkGenerateOptions, type GenerateOptions, generate } from '../model/generate.js';
import { type HeadScore, headScores } from '../model/head-detectors.js';
import { type Activation, activationNames } from '../model/hooks.js';
import { type ResolvedCheckpoint, resolveCheckpoint } from '../model/hub-cache.js';
import { type IclScore, iclPositions, iclScore, inductionLoss } from '../model/icl.js';
import { checkWeightFormat, type Int8Weights, type WeightFormat } from '../model/int8.js';
import { loadInt8Checkpoint } from '../model/int8-load.js';
import type { Interventions } from '../model/interventions.js';
import type { LayerStream } from '../model/layer-stream.js';
import { type LensLayer, logitLens } from '../model/logit-lens.js';
import { parseMemorySize, planMemory } from '../model/memory-budget.js';
import { openModelWeights } from '../model/model-weights.js';
import type { Params } from '../model/params.js';
import { type ScoreResult, Scorer } from '../model/score.js';
import { repeatedSequences, studyContext } from '../results/heads-study.js';
import { EXECUTION_PROVIDERS, type ExecutionProvider, type RuntimeOptions } from '../runtime/session.js';
import { ConfigError } from '../util/errors.js';
import { checkOptionalNumber, POSITIVE_INTEGER, SEED, showValue } from '../util/values.js';
import { checkOptionalBoolean, checkOptions } from './options.js';

export interface FromPretrainedOptions {
  /** Hub revision for an id without `@revision`: a branch, a tag such as `step3000`, or a commit (default `main`). */
  revision?: string;
  /** The Hugging Face hub cache (default: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`). */
  cacheDir?: string;
  /** Computation dtype: weights stored in float16 or bfloat16 are widened to float32, the only one for now. */
  dtype?: 'float32' | 'fp32';
  /** onnxruntime intra-op threads (default: every core). */
  threads?: number;
  device?: ExecutionProvider;
  /** A tokenizer.json to use instead of the checkpoint's own. */
  tokenizer?: string;
  /**
   * The peak memory to stay under: bytes, or a size such as `'8GB'` or `'512MiB'`. A checkpoint whose
   * float32 weights exceed 70% of it (without it, of the available memory) is opened for layer
   * streaming: `score`, `runWithCache`, `runWithHooks`, `logitLens`, `headScores`, `inductionLoss`
   * and `iclScore` then read it a layer at a time; `forward` and `generate` refuse.
   */
  maxMemory?: number | string;
  /**
   * `int8`: every linear layer and the LM head quantized per output channel as the checkpoint is
   * read (CPU only); `score`, `generate`, `inductionLoss` and `iclScore` run on it, the rest refuse.
   * Default float32.
   */
  weights?: WeightFormat;
}

export interface ModelForwardOptions extends ForwardOptions {}

export interface ModelForwardResult extends ForwardResult {
  batch: number;
  seq: number;
}

export interface ModelGenerateOptions {
  /** Tokens to add to each prompt, a positive integer (default 32). */
  maxNewTokens?: number;
  /** Sampling temperature, >= 0; 0 (default) is greedy. */
  temperature?: number;
  /** Sample among the k most likely tokens (0: all). */
  topK?: number;
  /** Nucleus sampling: among the most likely tokens whose probabilities first reach `topP` together, in (0, 1] (1, the default: all). */
  topP?: number;
  /** Sampling seed, an integer from 0 to 2^32 − 1 (default 0). */
  seed?: number;
  /** Stop a row at the end-of-text token (config `eos_token_id`); default true. */
  stopAtEos?: boolean;
}

/** A context and its continuation, as text (tokenized as lm-evaluation-harness does) or as token ids. */
export type ScorePair =
  | { context: string; continuation: string }
  | { context: readonly number[]; continuation: readonly number[] }
  | readonly [string, string]
  | readonly [readonly number[], readonly number[]];

/** Token rows for runWithCache and runWithHooks: a text, texts of equal token length, a row of ids, rows. */
export type ActivationInput = string | readonly string[] | readonly number[] | readonly (readonly number[])[];

export interface RunWithCacheOptions {
  /** TransformerLens names or globs (`blocks.*.attn.hook_pattern`); default every name. */
  names?: string | readonly string[];
  /** Also the logits: `all` [batch, seq, vocab], or `last` (the last position's) [batch, vocab]; default none. */
  logits?: LogitsRequest;
}

export interface RunWithHooksOptions extends Interventions {
  /** Named activations to return as well (after the edits); default none. */
  names?: string | readonly string[];
  /** `all` (default) [batch, seq, vocab], `last` [batch, vocab], or `none`. */
  logits?: LogitsRequest;
}

export interface ActivationResult {
  /** The named activations asked for, in forward order, each a Float32Array with its dims. */
  cache: ActivationCache;
  logits?: Activation;
  /** The token rows that ran. */
  tokens: number[][];
}

/** How a loaded model holds its weights. */
type HeldWeights =
  | { kind: 'resident' }
  | { kind: 'streamed'; stream: LayerStream; activationBytes: number }
  | { kind: 'int8'; int8: Int8Weights };

export class GPTNeoX {
  private decoder: Decoder | undefined;
  private scorer: Scorer | undefined;
  private activationRunner: ActivationRunner | undefined;
  private disposed = false;

  private constructor(
    /** Where the checkpoint came from: folder, model name or hub id, revision, step. */
    readonly source: ResolvedCheckpoint,
    readonly config: NeoXConfig,
    /** Float32 weights by Hugging Face parameter name; empty where the model streams or is int8. */
    readonly params: Params,
    /** The checkpoint's tokenizer.json (or the one given), if any. */
    readonly tokenizer: TextTokenizer | undefined,
    private readonly runtime: RuntimeOptions,
    private readonly held: HeldWeights = { kind: 'resident' },
  ) {}

  /** Whether the model reads its checkpoint a layer at a time (`maxMemory`, or too large for the available memory). */
  get streamed(): boolean {
    return this.held.kind === 'streamed';
  }

  /** The weights' format: float32, or int8 (`weights: 'int8'`). */
  get weightFormat(): WeightFormat {
    return this.held.kind === 'int8' ? 'int8' : 'float32';
  }

  /** Loads a checkpoint folder, or a hub id (`org/name[@revision]`) from the local Hugging Face cache; nothing is downloaded. */
  static async fromPretrained(pathOrHubId: string, options: FromPretrainedOptions = {}): Promise<GPTNeoX> {
    checkOptions('fromPretrained', options, FROM_PRETRAINED_OPTIONS);
    checkOptionalNumber('threads', options.threads, POSITIVE_INTEGER);
    if (options.device !== undefined && !EXECUTION_PROVIDERS.includes(options.device))
      throw new ConfigError(
        `device: expected one of ${EXECUTION_PROVIDERS.join(', ')}, got ${showValue(options.device)}`,
      );
    if (options.dtype !== undefined && options.dtype !== 'float32' && options.dtype !== 'fp32') {
      throw new ConfigError(
        `dtype "${String(options.dtype)}": only float32 computation is supported (float16/bfloat16 weights are widened to it)`,
      );
    }
    checkWeightFormat(options.weights, options.device);
    const maxMemory = memoryOption(options.maxMemory);
    const source = resolveCheckpoint(pathOrHubId, { revision: options.revision, cacheDir: options.cacheDir });
    const tokenizerPath = options.tokenizer ?? tokenizerOf(source.dir);
    const tokenizer = tokenizerPath === undefined ? undefined : await loadTokenizer(tokenizerPath);
    const runtime: RuntimeOptions = { threads: options.threads, provider: options.device };
    if (options.weights === 'int8') {
      const plan = planMemory(readConfig(source.dir), maxMemory, undefined, 'int8');
      if (plan.stream) throw new ConfigError(`weights: 'int8': ${plan.reason}, and int8 weights cannot stream`);
      const { config, weights } = loadInt8Checkpoint(source.dir);
      return new GPTNeoX(source, config, new Map(), tokenizer, runtime, { kind: 'int8', int8: weights });
    }
    const opened = openModelWeights(source.dir, maxMemory);
    if (opened.kind === 'streamed') {
      const { stream, activationBytes } = opened;
      return new GPTNeoX(source, opened.config, new Map(), tokenizer, runtime, {
        kind: 'streamed',
        stream,
        activationBytes,
      });
    }
    return new GPTNeoX(source, opened.config, opened.checkpoint.params, tokenizer, runtime);
  }

  /** One pass over equal-length token rows: logits [batch, seq, vocab] (flat), and on request hidden states, the loss, gradients. */
  async forward(
    ids: readonly number[] | readonly (readonly number[])[],
    options: ModelForwardOptions = {},
  ): Promise<ModelForwardResult> {
    this.checkAlive();
    const rows = isRow(ids) ? [ids] : ids;
    const matrix = tokenMatrix(rows, this.config.vocabSize, 'forward');
    const result = await forward(this.config, this.float32('forward'), matrix, rows.length, options, this.runtime);
    return { ...result, batch: rows.length, seq: rows[0]!.length };
  }

  /** Continues prompts; returns what it was given (text or token ids) with the continuation appended. */
  generate(prompt: string, options?: ModelGenerateOptions): Promise<string>;
  generate(prompts: readonly string[], options?: ModelGenerateOptions): Promise<string[]>;
  generate(prompt: readonly number[], options?: ModelGenerateOptions): Promise<number[]>;
  generate(prompts: readonly (readonly number[])[], options?: ModelGenerateOptions): Promise<number[][]>;
  async generate(
    input: string | readonly string[] | readonly number[] | readonly (readonly number[])[],
    options: ModelGenerateOptions = {},
  ): Promise<string | string[] | number[] | number[][]> {
    this.checkAlive();
    checkOptions('generate', options, GENERATE_OPTIONS);
    const settings: GenerateOptions = {
      maxNewTokens: options.maxNewTokens === undefined ? 32 : options.maxNewTokens,
      temperature: options.temperature,
      topK: options.topK,
      topP: options.topP,
      seed: options.seed,
      eosTokenId: checkOptionalBoolean('stopAtEos', options.stopAtEos) === false ? undefined : this.config.eosTokenId,
    };
    checkGenerateOptions(settings);
    const given = readPrompts(input);
    const prompts =
      given.texts !== undefined
        ? await this.requireTokenizer('generate from text').encodeBatch(given.texts)
        : given.rows;
    this.decoder ??=
      this.held.kind === 'int8'
        ? await Decoder.create(this.config, this.held.int8, { ...this.runtime, weights: 'inputs', format: 'int8' })
        : await Decoder.create(this.config, this.float32('generate'), this.runtime);
    const rows = await generate(this.decoder, prompts, settings);
    const out = given.texts !== undefined ? rows.map((r) => this.tokenizer!.decode(r)) : rows;
    return given.single ? out[0]! : out;
  }

  /** Log-likelihood of each continuation given its context, and whether greedy decoding produces it. */
  async score(pairs: readonly ScorePair[], options: { batchSize?: number } = {}): Promise<ScoreResult[]> {
    this.checkAlive();
    checkOptions('score', options, ['batchSize']);
    const batchSize = checkOptionalNumber('batchSize', options.batchSize, POSITIVE_INTEGER);
    if (!Array.isArray(pairs))
      throw new ConfigError(
        `score: expected an array of pairs ({ context, continuation } or [context, continuation]), got ${showValue(pairs)}`,
      );
    const requests = await Promise.all(
      pairs.map(async (pair: unknown, i) => {
        const [context, continuation] = pairParts(pair, i);
        if (typeof context === 'string' && typeof continuation === 'string')
          return (await encodePairs(this.requireTokenizer('score text'), [{ context, continuation }]))[0]!;
        if (isRow(context) && isRow(continuation)) return { context, continuation };
        throw new ConfigError(`score: pair ${i}: expected context and continuation both as text or both as token ids`);
      }),
    );
    return (await this.ownScorer()).score(requests, batchSize);
  }

  /** Every named activation of this model (TransformerLens's names), in the order the forward pass meets them. */
  activationNames(): string[] {
    return activationNames(this.config);
  }

  /**
   * One forward pass over equal-length rows that returns the named activations asked for (all by
   * default), as TransformerLens's run_with_cache; each set of names compiles its graph once.
   */
  async runWithCache(input: ActivationInput, options: RunWithCacheOptions = {}): Promise<ActivationResult> {
    this.checkAlive();
    const tokens = await this.activationRows(input, 'runWithCache');
    const names =
      options.names === undefined ? ['*'] : typeof options.names === 'string' ? [options.names] : options.names;
    const ids = tokenMatrix(tokens, this.config.vocabSize, 'runWithCache');
    const run = await this.runner('runWithCache').run(ids, tokens.length, { names, logits: options.logits });
    return { ...run, tokens };
  }

  /**
   * One forward pass with interventions, as TransformerLens's run_with_hooks: `patch` sets named
   * activations at chosen rows, positions and heads to supplied values, `ablate` zeroes heads (or
   * sets them to their mean) at hook_z, `scale` multiplies. They are inputs of the graph, so one
   * compiled graph serves every edit of the same names, and rows of one batch may differ.
   */
  async runWithHooks(input: ActivationInput, options: RunWithHooksOptions = {}): Promise<ActivationResult> {
    this.checkAlive();
    const tokens = await this.activationRows(input, 'runWithHooks');
    const names =
      options.names === undefined ? [] : typeof options.names === 'string' ? [options.names] : options.names;
    const ids = tokenMatrix(tokens, this.config.vocabSize, 'runWithHooks');
    const { patch, ablate, scale } = options;
    const run = await this.runner('runWithHooks').run(ids, tokens.length, {
      names,
      logits: options.logits ?? 'all',
      interventions: { patch, ablate, scale },
    });
    return { ...run, tokens };
  }

  /**
   * The logit lens over equal-length rows (at least 2 tokens each): per layer ℓ = 0…L, the residual
   * entering block ℓ (ℓ = L: the final residual) through the final LayerNorm and the unembedding;
   * mean KL(final ‖ lens), cross-entropy, entropy (nats) and top-1 agreement over every position
   * that has a next token.
   */
  async logitLens(input: ActivationInput): Promise<LensLayer[]> {
    this.checkAlive();
    const tokens = await this.activationRows(input, 'logitLens');
    const runner = this.runner('logitLens');
    const ids = tokenMatrix(tokens, this.config.vocabSize, 'logitLens');
    const head = this.held.kind === 'streamed' ? this.held.stream.readHeadParams() : this.params;
    return logitLens(runner, head, ids, tokens.length, { runtime: this.runtime });
  }

  /**
   * TransformerLens's attention-head detectors (`pythia heads`): every head's previous-token,
   * duplicate-token and induction scores averaged over `input`'s rows (any lengths), or without
   * input over seeded random tokens repeated twice (`sequences` 4, `length` 384 a copy cut to the
   * context, `seed` 1).
   */
  async headScores(input?: ActivationInput, options: RepeatedTokensOptions = {}): Promise<HeadScore[]> {
    this.checkAlive();
    checkOptions('headScores', options, REPEATED_TOKENS_OPTIONS);
    const rows =
      input === undefined ? this.repeatedSequences(options).rows : await this.activationRows(input, 'headScores');
    return headScores(this.runner('headScores'), rows);
  }

  /**
   * TransformerLens's induction loss (`pythia icl`): the mean loss of the second copy of seeded
   * random tokens repeated twice (options as headScores'), in nats.
   */
  async inductionLoss(options: RepeatedTokensOptions = {}): Promise<number> {
    this.checkAlive();
    checkOptions('inductionLoss', options, REPEATED_TOKENS_OPTIONS);
    const { rows } = this.repeatedSequences(options);
    return inductionLoss(await this.ownScorer(), rows);
  }

  /**
   * Olsson et al.'s in-context-learning score over `input`'s rows (each longer than the late
   * position): the mean loss at position 500·n/2048 minus at 50·n/2048, n the context (`pythia icl`).
   */
  async iclScore(input: ActivationInput): Promise<IclScore> {
    this.checkAlive();
    const rows = await this.activationRows(input, 'iclScore');
    return iclScore(await this.ownScorer(), rows, iclPositions(studyContext(this.source.dir, this.config)));
  }

  private repeatedSequences(options: RepeatedTokensOptions) {
    return repeatedSequences(this.config, studyContext(this.source.dir, this.config), {
      sequences: checkOptionalNumber('sequences', options.sequences, POSITIVE_INTEGER) ?? 4,
      length: checkOptionalNumber('length', options.length, POSITIVE_INTEGER),
      seed: checkOptionalNumber('seed', options.seed, SEED) ?? 1,
    });
  }

  /** Frees the onnxruntime sessions that hold this model's weights; the model cannot be used after. */
  async dispose(): Promise<void> {
    this.disposed = true;
    await this.decoder?.release();
    this.scorer?.release();
    await this.activationRunner?.release();
    this.decoder = undefined;
    this.scorer = undefined;
    this.activationRunner = undefined;
    if (this.held.kind === 'streamed') await this.held.stream.close();
  }

  /** The float32 weights, for what only runs on them in memory; a one-line refusal where the model streams or is int8. */
  private float32(what: string): Params {
    if (this.held.kind === 'streamed')
      throw new ConfigError(
        `${what} needs the float32 weights in memory, and ${this.source.model} streams: give fromPretrained a maxMemory that holds them`,
      );
    if (this.held.kind === 'int8')
      throw new ConfigError(`${what} needs float32 weights, and ${this.source.model} was loaded with weights: 'int8'`);
    return this.params;
  }

  private async ownScorer(): Promise<Scorer> {
    const held = this.held;
    this.scorer ??=
      held.kind === 'streamed'
        ? await Scorer.streamed(held.stream, this.runtime, held.activationBytes)
        : held.kind === 'int8'
          ? await Scorer.create(this.config, held.int8, this.runtime, 'int8')
          : await Scorer.create(this.config, this.params, this.runtime);
    return this.scorer;
  }

  private runner(what: string): ActivationRunner {
    this.activationRunner ??=
      this.held.kind === 'streamed'
        ? new ActivationRunner(this.config, this.held.stream, this.runtime, this.held.activationBytes)
        : new ActivationRunner(this.config, this.float32(what), this.runtime);
    return this.activationRunner;
  }

  /** Texts (tokenized without a BOS, as TransformerLens does for Pythia) or token rows, all of one length. */
  private async activationRows(input: ActivationInput, what: string): Promise<number[][]> {
    if (
      typeof input === 'string' ||
      (Array.isArray(input) && input.length > 0 && input.every((x) => typeof x === 'string'))
    ) {
      const texts = typeof input === 'string' ? [input] : (input as readonly string[]);
      const rows = await this.requireTokenizer(`${what} on text`).encodeBatch([...texts]);
      rows.forEach((row, i) => {
        if (row.length !== rows[0]!.length)
          throw new ConfigError(
            `${what}: text ${i} is ${row.length} tokens and text 0 is ${rows[0]!.length}: rows must have equal token lengths`,
          );
        if (row.length === 0) throw new ConfigError(`${what}: text ${i} has no tokens`);
      });
      return rows;
    }
    if (isRow(input)) return [[...input]];
    if (Array.isArray(input) && input.length > 0 && input.every((r) => isRow(r))) return input.map((r) => [...r]);
    throw new ConfigError(`${what}: expected a text, texts, a row of token ids or rows of token ids`);
  }

  private checkAlive(): void {
    if (this.disposed) throw new ConfigError(`${this.source.model}: the model was disposed`);
  }

  private requireTokenizer(what: string): TextTokenizer {
    if (!this.tokenizer)
      throw new ConfigError(
        `${this.source.dir} has no tokenizer.json: to ${what}, pass { tokenizer: 'path/to/tokenizer.json' } to fromPretrained, or give token ids`,
      );
    return this.tokenizer;
  }
}

/** The options of each method, for refusing a misspelt one. */
const FROM_PRETRAINED_OPTIONS: readonly (keyof FromPretrainedOptions)[] = [
  'revision',
  'cacheDir',
  'dtype',
  'threads',
  'device',
  'tokenizer',
  'maxMemory',
  'weights',
];

/** `maxMemory` in bytes: a positive number, or a size string (`8GB`, `512MiB`). */
function memoryOption(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return parseMemorySize(value);
  if (typeof value === 'number' && Number.isFinite(value) && value >= 1) return Math.floor(value);
  throw new ConfigError(`maxMemory: expected bytes or a size such as '8GB', got ${showValue(value)}`);
}

/** The random sequences of headScores and inductionLoss. */
export interface RepeatedTokensOptions {
  sequences?: number;
  length?: number;
  seed?: number;
}

const REPEATED_TOKENS_OPTIONS: readonly (keyof RepeatedTokensOptions)[] = ['sequences', 'length', 'seed'];

const GENERATE_OPTIONS: readonly (keyof ModelGenerateOptions)[] = [
  'maxNewTokens',
  'temperature',
  'topK',
  'topP',
  'seed',
  'stopAtEos',
];

function isRow(x: unknown): x is readonly number[] {
  return Array.isArray(x) && x.every((v) => typeof v === 'number');
}

/** Text prompts, or token-id rows; `single`: one prompt, answered with one result. */
type Prompts =
  | { texts: string[]; rows?: undefined; single: boolean }
  | { texts?: undefined; rows: number[][]; single: boolean };

/**
 * What `generate` was given: one text, texts, one row of token ids or rows (whose values the model
 * layer checks against the vocabulary).
 */
function readPrompts(input: unknown): Prompts {
  if (typeof input === 'string') return { texts: [input], single: true };
  if (!Array.isArray(input))
    throw new ConfigError(
      `generate: expected a prompt (text or token ids) or an array of prompts, got ${showValue(input)}`,
    );
  if (input.length === 0 || typeof input[0] === 'number') {
    input.forEach((id: unknown, t) => {
      if (typeof id !== 'number')
        throw new ConfigError(`generate: prompt 0: token ${t}: expected a token id, got ${showValue(id)}`);
    });
    return { rows: [[...(input as number[])]], single: true };
  }
  if (typeof input[0] === 'string') {
    input.forEach((text: unknown, i) => {
      if (typeof text !== 'string')
        throw new ConfigError(`generate: prompt ${i}: expected text like prompt 0, got ${showValue(text)}`);
    });
    return { texts: input as string[], single: false };
  }
  input.forEach((row: unknown, i) => {
    if (!Array.isArray(row))
      throw new ConfigError(
        `generate: prompt ${i}: expected ${i === 0 ? 'text or ' : ''}an array of token ids${i === 0 ? '' : ' like prompt 0'}, got ${showValue(row)}`,
      );
    row.forEach((id: unknown, t) => {
      if (typeof id !== 'number')
        throw new ConfigError(`generate: prompt ${i}: token ${t}: expected a token id, got ${showValue(id)}`);
    });
  });
  return { rows: (input as number[][]).map((r) => [...r]), single: false };
}

/** A score pair's context and continuation, from `{ context, continuation }` or `[context, continuation]`. */
function pairParts(pair: unknown, i: number): [unknown, unknown] {
  if (Array.isArray(pair) && pair.length === 2) return [pair[0], pair[1]];
  if (typeof pair === 'object' && pair !== null && !Array.isArray(pair) && 'context' in pair && 'continuation' in pair)
    return [pair.context, pair.continuation];
  throw new ConfigError(
    `score: pair ${i}: expected { context, continuation } or [context, continuation], got ${showValue(pair)}`,
  );
}
