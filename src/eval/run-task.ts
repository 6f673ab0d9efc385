/**
 * Evaluates one checkpoint on one task at one number of shots: builds every item's prompt, scores
 * or generates in batches, and returns per-item results with their aggregates.
 */
import type { TextTokenizer } from '../data/tokenizer.js';
import { ActivationRunner } from '../model/activations.js';
import type { NeoXConfig } from '../model/config.js';
import { Decoder } from '../model/decoder.js';
import { generate } from '../model/generate.js';
import type { Int8Weights, WeightFormat } from '../model/int8.js';
import type { LayerStream } from '../model/layer-stream.js';
import type { Params } from '../model/params.js';
import { type ScoreRequest, type ScoreResult, Scorer } from '../model/score.js';
import type { RuntimeOptions } from '../runtime/session.js';
import { ConfigError } from '../util/errors.js';
import { checkNumber, checkOptionalNumber, NON_NEGATIVE_INTEGER, POSITIVE_INTEGER } from '../util/values.js';
import { encodePairs, rollingWindows, type TextPair } from './encode.js';
import { drawDemonstrations, fewshotPrefix } from './fewshot.js';
import { harnessPrefixes } from './lm-eval/fewshot.js';
import {
  type Aggregate,
  aggregate,
  countBytes,
  countWords,
  cutAtStop,
  exactMatch,
  type ItemResult,
  multipleChoiceResult,
  partialResult,
} from './metrics.js';
import type { GenerateItem, Task, TaskItem } from './tasks.js';

/** A checkpoint ready to evaluate. Scoring and decoding sessions are compiled per architecture and shared. */
export interface EvalModel {
  config: NeoXConfig;
  /** The weights in memory; empty where `streamed` reads them a layer at a time. */
  params: Params;
  tokenizer: TextTokenizer;
  /** A checkpoint too large for memory: its scoring streams (src/model/layer-stream.ts); it generates nothing. */
  streamed?: { stream: LayerStream; activationBytes: number };
  /** Weights loaded straight to int8 (src/model/int8-load.ts) where only int8 cells run: `params` is then empty. */
  int8?: Int8Weights;
}

export interface TaskRunOptions {
  shots: number;
  /** Seed of the few-shot draw. */
  seed: number;
  /** Demonstrations come from here instead of the task's own other items. */
  fewshotPool?: readonly TaskItem[];
  /** Only the first N items. */
  limit?: number;
  batchSize: number;
  /** Most tokens generate_until items may generate. */
  maxGenTokens: number;
  runtime?: RuntimeOptions;
  /** float32 (default), or int8 linear weights (src/model/int8.ts) for scoring and generation. */
  weights?: WeightFormat;
  /**
   * Run an item's shared context once for all its requests (`Scorer.scoreGroups`); default true.
   * False scores every request whole, as a reference and for benchmarks.
   */
  shareContexts?: boolean;
  /** Called after each batch with items done so far. */
  onProgress?: (done: number, total: number) => void;
}

export interface TaskRun {
  items: ItemResult[];
  aggregates: Aggregate[];
}

export function selectedItems(task: Task, limit: number | undefined): TaskItem[] {
  return limit === undefined ? task.items : task.items.slice(0, limit);
}

/** The numeric options, checked as the CLI's flags are (a library caller gets the same one line). */
function checkRunOptions(o: TaskRunOptions): void {
  checkNumber('shots', o.shots, NON_NEGATIVE_INTEGER);
  checkNumber('seed', o.seed, NON_NEGATIVE_INTEGER);
  checkOptionalNumber('limit', o.limit, POSITIVE_INTEGER);
  checkNumber('batchSize', o.batchSize, POSITIVE_INTEGER);
  checkNumber('maxGenTokens', o.maxGenTokens, POSITIVE_INTEGER);
}

export async function runTask(model: EvalModel, task: Task, options: TaskRunOptions): Promise<TaskRun> {
  checkRunOptions(options);
  const items = selectedItems(task, options.limit);
  if (task.outputType === 'loglikelihood_rolling' && options.shots > 0) {
    throw new ConfigError(`task ${task.name}: loglikelihood_rolling takes no few-shot demonstrations (use --shots 0)`);
  }
  const prefixes = fewshotPrefixes(task, items, options);
  let results: ItemResult[];
  switch (task.outputType) {
    case 'multiple_choice':
    case 'loglikelihood':
      results = await scoreChoices(model, items, prefixes, options);
      break;
    case 'loglikelihood_rolling':
      results = await scoreRolling(model, items, options);
      break;
    case 'generate_until': {
      const generateItems = items as GenerateItem[];
      const prompts = generateItems.map((item, i) => prefixes[i]! + item.context);
      results = await generateAnswers(model, generateItems, prompts, options);
      break;
    }
  }
  const aggregates = aggregate(task.outputType, results);
  return {
    items: results,
    aggregates: task.metrics ? aggregates.filter((a) => task.metrics!.includes(a.metric)) : aggregates,
  };
}

/**
 * Each item's few-shot prefix: a built-in task's demonstrations as lm-eval draws them from its
 * few-shot split (seeded by `seed`, in item order); a task file's from its other items or the
 * few-shot file, per item.
 */
function fewshotPrefixes(task: Task, items: readonly TaskItem[], options: TaskRunOptions): string[] {
  if (task.fewshot) {
    if (options.fewshotPool)
      throw new ConfigError(
        `task ${task.name}: a built-in task draws its demonstrations from its own few-shot split; a few-shot file is for task files`,
      );
    return harnessPrefixes(task.name, task.fewshot, task.items, items.length, options.shots, options.seed);
  }
  const pool = options.fewshotPool ?? task.items;
  return items.map((item) => fewshotPrefix(drawDemonstrations(item, pool, options.shots, options.seed, task.name)));
}

/** An ActivationRunner for `model`: on its parameters, or on its stream with its activation budget. */
export function activationRunner(model: EvalModel, runtime: RuntimeOptions | undefined): ActivationRunner {
  return model.streamed
    ? new ActivationRunner(model.config, model.streamed.stream, runtime, model.streamed.activationBytes)
    : new ActivationRunner(model.config, model.params, runtime);
}

/** The final LayerNorm's and the unembedding's parameters (what the lenses read beside the activations). */
export function headParameters(model: EvalModel): Params {
  return model.streamed ? model.streamed.stream.readHeadParams() : model.params;
}

/** A scorer of its own for `model` (a study's): resident, or streamed. */
export function createScorer(
  model: EvalModel,
  runtime: RuntimeOptions | undefined,
  weights: WeightFormat = 'float32',
): Promise<Scorer> {
  if (model.streamed && weights !== 'float32')
    throw new ConfigError(
      `--weights ${weights} needs the checkpoint resident, and it is streamed: give --max-memory room for its float32 weights`,
    );
  if (model.int8 && weights !== 'int8')
    throw new ConfigError(`this checkpoint was loaded as int8; ${weights} needs it reloaded`);
  return model.streamed
    ? Scorer.streamed(model.streamed.stream, runtime, model.streamed.activationBytes)
    : Scorer.create(model.config, model.int8 ?? model.params, runtime, weights);
}

/** One scorer per loaded checkpoint, configuration and runtime, reused by every task and shot count. */
const scorers = new WeakMap<Params, Map<string, Promise<Scorer>>>();

function scorer(model: EvalModel, runtime: RuntimeOptions | undefined, weights?: WeightFormat): Promise<Scorer> {
  const key = JSON.stringify([model.config, runtime ?? {}, weights ?? 'float32']);
  let byKey = scorers.get(model.params);
  if (!byKey) {
    byKey = new Map();
    scorers.set(model.params, byKey);
  }
  let s = byKey.get(key);
  if (!s) {
    s = createScorer(model, runtime, weights);
    byKey.set(key, s);
  }
  return s;
}

/** Frees the scorers of a checkpoint (their weights' copies in GPU memory, on WebGPU) once its cells are done. */
export async function releaseScorers(model: EvalModel): Promise<void> {
  const byKey = scorers.get(model.params);
  if (!byKey) return;
  scorers.delete(model.params);
  for (const s of byKey.values()) (await s).release();
}

/** Scores requests in slices, so progress can be reported between them. */
async function scoreInSlices(
  s: Scorer,
  requests: ScoreRequest[],
  options: TaskRunOptions,
  itemsPerRequest: (done: number) => number,
  totalItems: number,
) {
  // A streamed scorer reads the whole checkpoint each call: one call, which it splits by its own budget.
  const slice = s.streamed ? Math.max(1, requests.length) : options.batchSize * 16;
  const out = [];
  for (let start = 0; start < requests.length; start += slice) {
    out.push(...(await s.score(requests.slice(start, start + slice), options.batchSize)));
    options.onProgress?.(itemsPerRequest(Math.min(start + slice, requests.length)), totalItems);
  }
  return out;
}

/**
 * Scores each item's requests as one group (its shared context run once): items longest first, so
 * that batches hold items of similar lengths, in slices of about `batchSize`·16 requests so progress
 * can be reported between them; results in request order.
 */
async function scoreItemsInSlices(
  s: Scorer,
  requests: readonly ScoreRequest[],
  owner: readonly number[],
  totalItems: number,
  options: TaskRunOptions,
): Promise<ScoreResult[]> {
  const groups: { first: number; requests: ScoreRequest[]; length: number }[] = [];
  requests.forEach((r, j) => {
    if (j === 0 || owner[j] !== owner[j - 1]) groups.push({ first: j, requests: [], length: 0 });
    const group = groups.at(-1)!;
    group.requests.push(r);
    group.length = Math.max(group.length, r.context.length + r.continuation.length);
  });
  const order = [...groups].sort((a, b) => b.length - a.length || a.first - b.first);
  const slice = s.streamed ? Math.max(1, requests.length) : options.batchSize * 16;
  const out = new Array<ScoreResult>(requests.length);
  for (let start = 0; start < order.length; ) {
    let end = start;
    let count = 0;
    while (end < order.length && (end === start || count + order[end]!.requests.length <= slice))
      count += order[end++]!.requests.length;
    const chunk = order.slice(start, end);
    const scored = await s.scoreGroups(
      chunk.map((g) => g.requests),
      options.batchSize,
    );
    chunk.forEach((g, i) => {
      scored[i]!.forEach((r, k) => {
        out[g.first + k] = r;
      });
    });
    start = end;
    options.onProgress?.(start, totalItems);
  }
  return out;
}

/**
 * The (context, continuation) pairs an item is scored on, each context after the item's few-shot
 * prefix (lm-eval's request arguments): one per choice, one per context of a partial item, one
 * for a last-word item; none for the other kinds.
 */
export function scoringPairs(item: TaskItem, prefix: string): TextPair[] {
  switch (item.kind) {
    case 'multiple_choice':
      return item.choices.map((c) => ({ context: prefix + item.context, continuation: item.targetDelimiter + c }));
    case 'partial':
      return item.contexts.map((c) => ({
        context: prefix + c,
        continuation: item.targetDelimiter + item.continuation,
      }));
    case 'loglikelihood':
      return [{ context: prefix + item.context, continuation: item.target }];
    default:
      return [];
  }
}

/** Multiple choice (one context, several choices), partial evaluation (several contexts, one continuation), last word. */
async function scoreChoices(
  model: EvalModel,
  items: readonly TaskItem[],
  prefixes: readonly string[],
  options: TaskRunOptions,
): Promise<ItemResult[]> {
  const pairs: TextPair[] = [];
  const owner: number[] = [];
  items.forEach((item, i) => {
    for (const pair of scoringPairs(item, prefixes[i]!)) {
      pairs.push(pair);
      owner.push(i);
    }
  });
  const requests = await encodePairs(model.tokenizer, pairs);
  const s = await scorer(model, options.runtime, options.weights);
  const scored =
    options.shareContexts === false
      ? await scoreInSlices(s, requests, options, (done) => (done === 0 ? 0 : owner[done - 1]! + 1), items.length)
      : await scoreItemsInSlices(s, requests, owner, items.length, options);
  let k = 0;
  return items.map((item) => {
    if (item.kind === 'multiple_choice') {
      const lls = item.choices.map(() => scored[k++]!.logprob);
      return multipleChoiceResult(item.id, item.choices, item.gold, lls);
    }
    if (item.kind === 'partial') {
      const lls = item.contexts.map(() => scored[k++]!.logprob);
      return partialResult(item.id, item.contexts, item.gold, lls);
    }
    const r = scored[k]!;
    const tokens = requests[k++]!.continuation.length;
    return { itemId: item.id, acc: r.isGreedy ? 1 : 0, loglikelihood: r.logprob, isGreedy: r.isGreedy, tokens };
  });
}

async function scoreRolling(
  model: EvalModel,
  items: readonly TaskItem[],
  options: TaskRunOptions,
): Promise<ItemResult[]> {
  const texts = items.map((item) => (item.kind === 'loglikelihood_rolling' ? item.text : ''));
  const encoded = await model.tokenizer.encodeBatch(texts);
  const requests: ScoreRequest[] = [];
  const owner: number[] = [];
  encoded.forEach((tokens, i) => {
    for (const w of rollingWindows(tokens, model.tokenizer.eodId, model.config.maxPositions)) {
      requests.push(w);
      owner.push(i);
    }
  });
  const scored = await scoreInSlices(
    await scorer(model, options.runtime, options.weights),
    requests,
    options,
    (done) => (done === 0 ? 0 : owner[done - 1]! + 1),
    items.length,
  );
  const lls = new Array<number>(items.length).fill(0);
  scored.forEach((r, j) => {
    lls[owner[j]!]! += r.logprob;
  });
  return items.map((item, i) => {
    const counts = item.kind === 'loglikelihood_rolling' ? item.counts : undefined;
    return {
      itemId: item.id,
      loglikelihood: lls[i]!,
      tokens: encoded[i]!.length,
      words: counts?.words ?? countWords(texts[i]!),
      bytes: counts?.bytes ?? countBytes(texts[i]!),
    };
  });
}

async function generateAnswers(
  model: EvalModel,
  items: readonly GenerateItem[],
  prompts: readonly string[],
  options: TaskRunOptions,
): Promise<ItemResult[]> {
  const { config, tokenizer } = model;
  const maxNew = Math.min(options.maxGenTokens, config.maxPositions - 1);
  const room = config.maxPositions - maxNew;
  const encoded = await tokenizer.encodeBatch(prompts.map((p) => p));
  // As the harness does: an empty prompt is the end-of-text token; long prompts keep their end.
  const inputs = encoded.map((ids) =>
    ids.length === 0 ? [tokenizer.eodId] : ids.slice(Math.max(0, ids.length - room)),
  );
  const order = inputs.map((_, i) => i).sort((a, b) => inputs[b]!.length - inputs[a]!.length || a - b);
  if (model.streamed)
    throw new ConfigError(
      'generate_until tasks need the checkpoint resident, and it is streamed: give --max-memory room for its float32 weights',
    );
  const decoder = await Decoder.create(config, model.int8 ?? model.params, {
    ...options.runtime,
    weights: 'inputs',
    format: options.weights,
  });
  const texts = new Array<string>(items.length);
  try {
    for (let start = 0; start < order.length; start += options.batchSize) {
      const rows = order.slice(start, start + options.batchSize);
      const out = await generate(
        decoder,
        rows.map((i) => inputs[i]!),
        {
          maxNewTokens: maxNew,
          eosTokenId: tokenizer.eodId,
          padTokenId: tokenizer.padId ?? tokenizer.eodId,
          allowedTokens: tokenizer.vocabSize,
          stop: (b, generated) => cutAtStop(tokenizer.decode(generated), items[rows[b]!]!.until).stopped,
        },
      );
      rows.forEach((i, b) => {
        const generated = out[b]!.slice(inputs[i]!.length).filter((id) => id !== tokenizer.eodId);
        texts[i] = cutAtStop(tokenizer.decode(generated), items[i]!.until).text;
      });
      options.onProgress?.(Math.min(start + options.batchSize, order.length), items.length);
    }
  } finally {
    await decoder.release();
  }
  return items.map((item, i) => ({
    itemId: item.id,
    exactMatch: exactMatch(texts[i]!, item.answer, item.exactAsWritten),
    prediction: texts[i]!,
  }));
}
