/**
 * Held-out token rows for the studies that read a model on text it did not train on (the lenses,
 * per-token learning curves): a suite checkpoint's own held-out data, or the start of a dataset.
 *
 * - A checkpoint of `pythia train` (its trainer_state.json names its data): the validation batches
 *   its training evaluated on (train/validation.ts): the samples right after the last training
 *   batch, or with a split GPT-NeoX's "valid" dataset as read at the last step, sized for the rows
 *   asked for (the run's eval-iters and eval-interval, which size it, are not recorded, so these
 *   need not be the very batches it evaluated). Every checkpoint of a suite gets the same rows.
 * - `--data PREFIX`: the dataset's documents in order, concatenated and cut into rows.
 *
 * The rows are identified by the sha256 of their tokens, which is what a study's identity records.
 * Bits per byte (bitsPerByteFactor) convert a mean per-token loss in nats as the tuned-lens package
 * does: × (tokens / UTF-8 bytes of their text) / ln 2, over the whole text read.
 */
import { createHash } from 'node:crypto';
import { openTrainingOrder } from '../data/batches.js';
import { IndexedDataset } from '../data/indexed-dataset.js';
import type { TextTokenizer } from '../data/tokenizer.js';
import { openValidation } from '../train/validation.js';
import { ConfigError, DataError } from '../util/errors.js';
import { readTrainingRecord, type TrainingRecord } from './training-record.js';

export interface HeldOutTokens {
  /** `rows` rows of `length` tokens, row-major. */
  tokens: Int32Array;
  rows: number;
  length: number;
  /** Where the rows come from, in words. */
  description: string;
  /** sha256 of the tokens as little-endian int32. */
  sha256: string;
}

export interface HeldOutRequest {
  /** Rows wanted; fewer where the data holds fewer (say so from `rows`). */
  rows: number;
  /** Tokens per row; at most a training sample's (seq-length + 1) for a suite's held-out batches. */
  length: number;
  /** A dataset prefix to read instead of the checkpoint's own held-out data. */
  data?: string;
}

function held(tokens: Int32Array, rows: number, length: number, description: string): HeldOutTokens {
  const sha256 = createHash('sha256')
    .update(new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength))
    .digest('hex');
  return { tokens, rows, length, description, sha256 };
}

function checkRequest(request: HeldOutRequest): void {
  for (const [name, value] of [
    ['rows', request.rows],
    ['length', request.length],
  ] as const)
    if (!Number.isInteger(value) || value < 1)
      throw new ConfigError(`${name}: expected a positive integer, got ${value}`);
}

/** The first rows × length tokens of the dataset's documents, in document order. */
export function datasetHeldOut(prefix: string, request: HeldOutRequest): HeldOutTokens {
  checkRequest(request);
  const dataset = IndexedDataset.open(prefix);
  try {
    const want = request.rows * request.length;
    const tokens = new Int32Array(want);
    let filled = 0;
    for (let i = 0; i < dataset.length && filled < want; i++) {
      const n = Math.min(dataset.size(i), want - filled);
      tokens.set(dataset.read(i, 0, n), filled);
      filled += n;
    }
    const rows = Math.floor(filled / request.length);
    if (rows === 0)
      throw new DataError(`${prefix}: ${filled} tokens make no row of ${request.length}; a longer dataset is needed`);
    return held(
      tokens.slice(0, rows * request.length),
      rows,
      request.length,
      `the first ${rows} × ${request.length} tokens of ${prefix}`,
    );
  } finally {
    dataset.close();
  }
}

type TrainedRecord = Required<Omit<TrainingRecord, 'step'>>;

function trained(record: TrainingRecord): record is TrainingRecord & TrainedRecord {
  const { data, trainBatchSize, seqLength, trainIters, seed } = record;
  return !!data && [trainBatchSize, seqLength, trainIters, seed].every((v) => v !== undefined);
}

/** Whether the checkpoint in `dir` has held-out data of its own (it records its training run's data). */
export function hasOwnHeldOut(dir: string): boolean {
  return trained(readTrainingRecord(dir));
}

function noTrainingData(dir: string): ConfigError {
  return new ConfigError(
    `${dir} records no training data (no trainer_state.json from pythia train): give held-out text with --data <prefix>`,
  );
}

/**
 * The longest row the checkpoint in `dir` can be read on: a token more than its context
 * (`maxPositions`; the last token is only predicted), and for its own held-out batches at most a
 * training sample (seq-length + 1).
 */
export function longestHeldOutRow(dir: string, maxPositions: number, data?: string): number {
  if (data !== undefined) return maxPositions + 1;
  const record = readTrainingRecord(dir);
  if (!trained(record)) throw noTrainingData(dir);
  return Math.min(maxPositions, record.seqLength) + 1;
}

/** The held-out rows for the checkpoint in `dir`: `request.data`'s, else its training run's validation batches. */
export async function heldOutTokens(dir: string, request: HeldOutRequest): Promise<HeldOutTokens> {
  checkRequest(request);
  if (request.data !== undefined) return datasetHeldOut(request.data, request);
  const record = readTrainingRecord(dir);
  if (!trained(record)) throw noTrainingData(dir);
  const { data, trainBatchSize: B, seqLength, trainIters: T, seed } = record;
  if (request.length > seqLength + 1)
    throw new ConfigError(`length: ${request.length} is longer than a training sample (${seqLength + 1} tokens)`);
  const order = await openTrainingOrder({
    data: data.prefix,
    preshuffled: data.preshuffled,
    split: data.split,
    batchSize: B,
    seqLength,
    trainIters: T,
    seed,
  });
  try {
    const heldOutBatches = Math.floor(order.source.length / B) - T;
    const evalIters = Math.ceil(request.rows / B);
    const validation = await openValidation({
      data,
      train: order.source,
      batchSize: B,
      seqLength,
      seed,
      trainIters: T,
      evalIters: data.split === undefined ? Math.min(evalIters, Math.max(heldOutBatches, 0)) : evalIters,
    });
    if (typeof validation === 'string') throw new DataError(`no held-out data: ${validation}`);
    try {
      const sample = seqLength + 1;
      const rows: Int32Array[] = [];
      for (let j = 0; rows.length < request.rows; j++) {
        if (data.split === undefined && j >= heldOutBatches) break;
        const batch = validation.batch(T, j);
        for (let r = 0; r < B && rows.length < request.rows; r++)
          rows.push(batch.subarray(r * sample, r * sample + request.length));
      }
      if (rows.length === 0) throw new DataError(`${data.prefix}: no held-out samples after the ${T} training batches`);
      const tokens = new Int32Array(rows.length * request.length);
      rows.forEach((row, i) => {
        tokens.set(row, i * request.length);
      });
      return held(tokens, rows.length, request.length, `${rows.length} rows of ${validation.description}`);
    } finally {
      validation.close();
    }
  } finally {
    order.source.close();
  }
}

/**
 * The factor from nats per token to bits per byte over token rows, as the tuned-lens package
 * computes it for its text (tuned_lens/data.py): (tokens / bytes) / ln 2, the bytes those of the
 * rows decoded to text (special tokens as their text, a row at a time). Undefined for rows of no bytes.
 */
export function bitsPerByteFactor(tokenizer: TextTokenizer, tokens: Int32Array, rows: number): number | undefined {
  const length = tokens.length / rows;
  let bytes = 0;
  for (let r = 0; r < rows; r++)
    bytes += Buffer.byteLength(tokenizer.decode(Array.from(tokens.subarray(r * length, (r + 1) * length))), 'utf8');
  return bytes > 0 ? tokens.length / bytes / Math.LN2 : undefined;
}
