/**
 * Term frequency in the tokens a checkpoint has trained on (the Pythia paper's term-frequency case
 * study, after Razeghi et al.): for every requested step S, how often each term occurs in batches
 * 0 … S−1 of the training order, all steps counted in one pass over batches 0 … max(S)−1.
 *
 * A term matches as whole tokens: its token sequence (`encode(term)`) or that of the term after
 * one space (`encode(" " + term)`), found anywhere inside one sample's seq_length + 1 tokens
 * (matches never span two samples). When the spaced sequence ends with the bare one, only the
 * bare one is searched, since it finds both. With `words`, a match must also stand as a whole
 * word: no word character right after it, nor right before a bare form. docs/analyses.md relates
 * both rules to counting in text.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { openTrainingOrder, type TrainingOrderOptions } from '../data/batches.js';
import type { TextTokenizer } from '../data/tokenizer.js';
import { PYTHIA_CHECKPOINT_SCHEDULE, saveIters } from '../train/checkpoint-schedule.js';
import { ConfigError, DataError, FormatError } from '../util/errors.js';
import type { WorkerMessage } from './term-count-worker.js';
import { TermMatcher, type WordEdges } from './term-matcher.js';

export interface Term {
  term: string;
  /** 1-based line of the terms file. */
  line: number;
}

export interface TermPatterns {
  terms: string[];
  /** Token sequences searched; `termOf[p]` is the term that pattern p counts for. */
  patterns: number[][];
  termOf: number[];
  /** Whether pattern p is its term's bare form (no leading space): only those check the token before. */
  bare: boolean[];
}

/** The training order to count in, as `openTrainingOrder` takes it (without callbacks). */
export type CountOrder = Omit<TrainingOrderOptions, 'onPhase'>;

export interface CountOptions {
  order: CountOrder;
  patterns: TermPatterns;
  /** Count whole words only (see `TermMatcher`): the tokenizer's word edges, from `wordEdges`. */
  words?: WordEdges;
  /** Checkpoint steps; counted over batches 0 … step − 1 each. */
  steps: readonly number[];
  /** Worker threads (default 1: count in this thread). */
  workers?: number;
  /** Count only this share of the batches: the i-th of n contiguous ranges of steps. */
  shard?: { index: number; count: number };
  onProgress?: (batchesDone: number, batchesTotal: number) => void;
}

export interface TermCounts {
  steps: number[];
  terms: string[];
  /** counts[t][j]: occurrences of term t in the batches before steps[j] (within the shard). */
  counts: number[][];
  /** Tokens scanned (batches × batch size × (seq_length + 1)). */
  tokens: number;
  /** The batches counted, [first, end). */
  batches: [number, number];
}

/** Reads a terms file: one term per line (blank lines skipped), or JSON Lines with a `term` field. */
export function readTerms(path: string): Term[] {
  const text = readFileSync(path, 'utf8');
  const terms: Term[] = [];
  const seen = new Map<string, number>();
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    const trimmed = raw.trim();
    if (trimmed === '') return;
    let term = trimmed;
    if (trimmed.startsWith('{')) {
      let record: unknown;
      try {
        record = JSON.parse(trimmed);
      } catch {
        throw new FormatError(path, `line ${line}: starts with "{" but is not valid JSON`);
      }
      const value = (record as Record<string, unknown>).term;
      if (typeof value !== 'string' || value.trim() === '')
        throw new FormatError(path, `line ${line}: term: expected a non-empty string, got ${JSON.stringify(value)}`);
      term = value.trim();
    }
    if (seen.has(term))
      throw new FormatError(path, `line ${line}: term ${JSON.stringify(term)} already on line ${seen.get(term)}`);
    seen.set(term, line);
    terms.push({ term, line });
  });
  if (terms.length === 0)
    throw new FormatError(path, 'no terms: expected one term per line (or JSON Lines with "term")');
  return terms;
}

function endsWith(sequence: readonly number[], suffix: readonly number[]): boolean {
  if (suffix.length > sequence.length) return false;
  const shift = sequence.length - suffix.length;
  return suffix.every((id, i) => sequence[shift + i] === id);
}

/** The token sequences of each term, bare and after one space (see the module comment). */
export async function termPatterns(
  terms: readonly Term[],
  tokenizer: TextTokenizer,
  source: string,
): Promise<TermPatterns> {
  const bare = await tokenizer.encodeBatch(terms.map((t) => t.term));
  const spaced = await tokenizer.encodeBatch(terms.map((t) => ` ${t.term}`));
  const out: TermPatterns = { terms: [], patterns: [], termOf: [], bare: [] };
  terms.forEach((t, i) => {
    const forms = [bare[i]!];
    if (!endsWith(spaced[i]!, bare[i]!)) forms.push(spaced[i]!);
    if (bare[i]!.length === 0)
      throw new FormatError(source, `line ${t.line}: term ${JSON.stringify(t.term)} tokenizes to nothing`);
    out.terms.push(t.term);
    forms.forEach((f, form) => {
      out.patterns.push(f);
      out.termOf.push(i);
      out.bare.push(form === 0);
    });
  });
  return out;
}

const WORD_START = /^[\p{L}\p{N}_]/u;
const WORD_END = /[\p{L}\p{N}_]$/u;

/** Which tokens start and end with a word character, from each token's own decoded text. */
export function wordEdges(tokenizer: TextTokenizer): WordEdges {
  const startsWord = new Uint8Array(tokenizer.vocabSize);
  const endsWord = new Uint8Array(tokenizer.vocabSize);
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    let text: string;
    try {
      text = tokenizer.decode([id]);
    } catch {
      continue; // an id the vocabulary skips
    }
    startsWord[id] = WORD_START.test(text) ? 1 : 0;
    endsWord[id] = WORD_END.test(text) ? 1 : 0;
  }
  return { startsWord, endsWord };
}

/** "0,512,1000" or "pythia" (Pythia's 154 checkpoint steps) → sorted distinct steps. */
export function parseSteps(text: string): number[] {
  if (text.trim() === 'pythia') return saveIters(143000, PYTHIA_CHECKPOINT_SCHEDULE);
  const steps = text.split(',').map((s) => s.trim());
  for (const s of steps)
    if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s)))
      throw new ConfigError(
        `--steps "${text}": expected a comma-separated list of steps (e.g. 0,512,1000) or "pythia", got "${s}"`,
      );
  return [...new Set(steps.map(Number))].sort((a, b) => a - b);
}

/** "i/n" → shard i of n (0-based). */
export function parseShard(text: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2]))
    throw new ConfigError(`--shard "${text}": expected i/n with 0 <= i < n, e.g. 0/4`);
  return { index: Number(m[1]), count: Number(m[2]) };
}

/** What one counting pass (a worker's share) needs; plain data, so it crosses to a worker. */
export interface ScanInput {
  order: CountOrder;
  patterns: number[][];
  termOf: number[];
  bare: boolean[];
  words?: WordEdges;
  terms: number;
  steps: number[];
  /** Batches [first, end) to scan. */
  first: number;
  end: number;
}

export interface ScanResult {
  /** Row-major [steps, terms]: occurrences in the batches of segment j = [steps[j−1], steps[j]). */
  segments: number[];
  tokens: number;
}

/** Counts batches [first, end) into segments between consecutive steps. */
export async function scanBatches(input: ScanInput, onBatch?: (done: number) => void): Promise<ScanResult> {
  const matcher = new TermMatcher(input.patterns, input.termOf, input.terms, input.words, input.bare);
  const segments = new Float64Array(input.steps.length * input.terms);
  const order = await openTrainingOrder(input.order);
  const { source } = order;
  const rowLength = source.sampleLength;
  const batchSize = input.order.batchSize;
  let tokens = 0;
  let segment = 0;
  let lastYield = performance.now();
  try {
    for (let step = input.first; step < input.end; step++) {
      while (input.steps[segment]! <= step) segment++;
      const batch = source.batchTokens(step, batchSize);
      const base = segment * input.terms;
      for (let row = 0; row < batch.length; row += rowLength) matcher.scan(batch, row, row + rowLength, segments, base);
      tokens += batch.length;
      onBatch?.(step - input.first + 1);
      if (performance.now() - lastYield > 100) {
        await new Promise((resolve) => setImmediate(resolve));
        lastYield = performance.now();
      }
    }
  } finally {
    source.close();
  }
  return { segments: Array.from(segments), tokens };
}

/** Error thrown in a worker, rebuilt with its name so user-facing errors stay one line. */
class WorkerError extends Error {
  constructor(name: string, message: string, stack?: string) {
    super(message);
    this.name = name;
    if (stack) this.stack = stack;
  }
}

/** `scanBatches` in a worker thread (term-count-worker.ts). */
function scanInWorker(input: ScanInput, onBatch: (done: number) => void): Promise<ScanResult> {
  const worker = new Worker(new URL('./term-count-worker.js', import.meta.url), { workerData: input });
  return new Promise((resolve, reject) => {
    let settled = false;
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'progress') return onBatch(m.done);
      settled = true;
      if (m.type === 'done') resolve(m.result);
      else reject(new WorkerError(m.name, m.message, m.stack));
      void worker.terminate();
    });
    worker.on('error', (e) => {
      settled = true;
      reject(e);
    });
    worker.on('exit', (code) => {
      if (!settled) reject(new WorkerError('DataError', `a counting worker exited with code ${code} before finishing`));
    });
  });
}

/** Counts every term at every step (see the module comment); steps are sorted first. */
export async function countTerms(options: CountOptions): Promise<TermCounts> {
  const steps = [...new Set(options.steps)].sort((a, b) => a - b);
  if (steps.length === 0) throw new ConfigError('--steps: no steps given');
  const { order: orderOptions, patterns } = options;
  const last = steps[steps.length - 1]!;
  if (last > orderOptions.trainIters)
    throw new ConfigError(`step ${last} is past the end of training: train-iters is ${orderOptions.trainIters}`);
  // Opening once here builds and saves the index maps if needed (workers then load them) and checks the length.
  const order = await openTrainingOrder(orderOptions);
  const available = Math.floor(order.source.length / orderOptions.batchSize);
  order.source.close();
  if (last > available)
    throw new DataError(
      `step ${last} is past the end of the data: ${orderOptions.data} holds ${available} batches of ${orderOptions.batchSize}`,
    );

  const shard = options.shard ?? { index: 0, count: 1 };
  const first = Math.floor((shard.index * last) / shard.count);
  const end = Math.floor(((shard.index + 1) * last) / shard.count);
  const workers = Math.max(1, Math.min(options.workers ?? 1, end - first, 4 * availableParallelism()));
  const input = (from: number, to: number): ScanInput => ({
    order: orderOptions,
    patterns: patterns.patterns,
    termOf: patterns.termOf,
    bare: patterns.bare,
    words: options.words,
    terms: patterns.terms.length,
    steps,
    first: from,
    end: to,
  });
  const total = end - first;
  const done = new Array<number>(workers).fill(0);
  const report = (w: number, n: number) => {
    done[w] = n;
    options.onProgress?.(
      done.reduce((a, b) => a + b, 0),
      total,
    );
  };
  let results: ScanResult[];
  if (workers === 1 || total === 0) {
    results = [await scanBatches(input(first, end), (n) => report(0, n))];
  } else {
    results = await Promise.all(
      Array.from({ length: workers }, (_, w) => {
        const from = first + Math.floor((w * total) / workers);
        const to = first + Math.floor(((w + 1) * total) / workers);
        return scanInWorker(input(from, to), (n) => report(w, n));
      }),
    );
  }
  const terms = patterns.terms.length;
  const counts = patterns.terms.map(() => new Array<number>(steps.length).fill(0));
  for (let t = 0; t < terms; t++) {
    let running = 0;
    for (let j = 0; j < steps.length; j++) {
      for (const r of results) running += r.segments[j * terms + t]!;
      counts[t]![j] = running;
    }
  }
  return {
    steps,
    terms: patterns.terms,
    counts,
    tokens: results.reduce((a, r) => a + r.tokens, 0),
    batches: [first, end],
  };
}
