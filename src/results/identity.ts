/**
 * What identifies a stored result: every input that changes its numbers, files by the sha256 of
 * their bytes. A checkpoint is its config.json and weight files; a tokenizer, task or few-shot
 * file its own bytes. The identity's fields, hashed, give the row's key (`cells.cell`,
 * `studies.study`), so a rerun with any other input is a new row beside the old one.
 */
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { TrainingRecord } from '../analysis/training-record.js';
import type { OutputType } from '../eval/tasks.js';
import { checkpointWeightFiles } from '../formats/index.js';

/**
 * The precision of the weights while evaluating: every checkpoint is converted to float32 on load
 * (task cells run with `--weights int8` record int8; the studies always run in float32).
 */
export const EVAL_WEIGHTS = 'float32';

const known = new Map<string, { size: number; mtimeMs: number; sha256: string }>();

/**
 * The sha256 of a file's bytes, read in 1 MiB pieces. Remembered for the rest of this process
 * while the file keeps its size and modification time; never written anywhere.
 */
export async function fileSha256(path: string): Promise<string> {
  const full = resolve(path);
  const { size, mtimeMs } = statSync(full);
  const seen = known.get(full);
  if (seen && seen.size === size && seen.mtimeMs === mtimeMs) return seen.sha256;
  const hash = createHash('sha256');
  for await (const piece of createReadStream(full, { highWaterMark: 1 << 20 })) hash.update(piece as Buffer);
  const sha256 = hash.digest('hex');
  known.set(full, { size, mtimeMs, sha256 });
  return sha256;
}

/** One hash over named hashes: the sha256 of their `name sha256` lines. */
function combined(parts: readonly [string, string][]): string {
  return createHash('sha256')
    .update(parts.map(([name, sha]) => `${name} ${sha}\n`).join(''))
    .digest('hex');
}

/** A checkpoint folder's content: its config.json and the weight files it loads from. */
export async function checkpointSha256(dir: string): Promise<string> {
  const files = [join(dir, 'config.json'), ...checkpointWeightFiles(dir)];
  const parts: [string, string][] = [];
  for (const f of files) parts.push([basename(f), await fileSha256(f)]);
  return combined(parts);
}

/**
 * The training order a checkpoint's record names: its settings, the sha256 of the dataset's .idx
 * (every document's length and place) and the size of its .bin. The tokens themselves are not
 * read: for the Pile that would be hundreds of gigabytes on every run.
 */
export async function trainingDataSha256(record: TrainingRecord): Promise<string | null> {
  if (!record.data) return null;
  const { prefix, preshuffled, split } = record.data;
  const settings = JSON.stringify({
    preshuffled,
    split: split ?? null,
    trainBatchSize: record.trainBatchSize ?? null,
    seqLength: record.seqLength ?? null,
    trainIters: record.trainIters ?? null,
    seed: record.seed ?? null,
    binBytes: statSync(`${prefix}.bin`).size,
  });
  return combined([
    ['settings', createHash('sha256').update(settings).digest('hex')],
    ['idx', await fileSha256(`${prefix}.idx`)],
  ]);
}

/** Everything that changes an evaluated cell's numbers. */
export interface CellIdentity {
  model: string;
  step: number;
  task: string;
  shots: number;
  checkpointSha256: string;
  tokenizerSha256: string;
  taskSha256: string;
  outputType: OutputType;
  /** The few-shot draw's seed; null at 0 shots, where nothing is drawn. */
  seed: number | null;
  /** The few-shot file's sha256; null where demonstrations come from the task itself, or at 0 shots. */
  fewshotSha256: string | null;
  /** Items evaluated when fewer than the task has; null: every item. */
  limit: number | null;
  /** The generation limit of generate_until tasks; null for the others, which generate nothing. */
  maxGenTokens: number | null;
  device: string;
  weights: string;
  /**
   * int8 cells only: the rows run together, whose largest activation sets each product's
   * quantization step. Absent for float32 cells, so their keys are what they were before.
   */
  batchSize?: number;
}

export interface CellSettings {
  checkpointSha256: string;
  tokenizerSha256: string;
  seed: number;
  fewshotSha256: string | null;
  limit: number | undefined;
  maxGenTokens: number;
  device: string;
  /** float32 (default) or int8 (`--weights int8`). */
  weights?: string;
  /** Rows scored or generated together (`--batch-size`). */
  batchSize: number;
}

/** A cell's identity with each setting set to null where it cannot change the cell's numbers. */
export function cellIdentity(
  cell: { model: string; step: number; task: string; shots: number },
  task: { sha256: string; outputType: OutputType; items: number },
  settings: CellSettings,
): CellIdentity {
  const drawn = cell.shots > 0;
  return {
    ...cell,
    checkpointSha256: settings.checkpointSha256,
    tokenizerSha256: settings.tokenizerSha256,
    taskSha256: task.sha256,
    outputType: task.outputType,
    seed: drawn ? settings.seed : null,
    fewshotSha256: drawn ? settings.fewshotSha256 : null,
    limit: settings.limit !== undefined && settings.limit < task.items ? settings.limit : null,
    maxGenTokens: task.outputType === 'generate_until' ? settings.maxGenTokens : null,
    device: settings.device,
    weights: settings.weights ?? EVAL_WEIGHTS,
    ...(settings.weights === 'int8' ? { batchSize: settings.batchSize } : {}),
  };
}

export type StudyKind =
  | 'memorization'
  | 'canaries'
  | 'term_counts'
  | 'logit_lens'
  | 'tuned_lens'
  | 'heads'
  | 'icl'
  | 'token_curves'
  | 'weights'
  | 'attention';

/** Everything that changes a case study's numbers; null where a kind does not use it. */
export interface StudyIdentity {
  kind: StudyKind;
  /** The checkpoint studied (null for term counts, which count tokens, not a model's outputs). */
  model: string | null;
  step: number | null;
  checkpointSha256: string | null;
  tokenizerSha256: string | null;
  /** The training order (trainingDataSha256). */
  dataSha256: string | null;
  /** The synthetic corpus's truth.json, whose canaries are scored. */
  truthSha256: string | null;
  sequences: number | null;
  sampleSeed: number | null;
  windowSize: number | null;
  promptLength: number | null;
  continuationLength: number | null;
  device: string | null;
  weights: string | null;
  /**
   * A kind's own settings beyond the fields above, by name. Absent for the kinds that have none, so
   * their keys are what they were before the field existed.
   */
  settings?: Readonly<Record<string, number | string | boolean | null>>;
}

/** A study's identity from the fields its kind uses; every other field is null. */
export function studyIdentity(fields: Pick<StudyIdentity, 'kind'> & Partial<StudyIdentity>): StudyIdentity {
  return {
    model: null,
    step: null,
    checkpointSha256: null,
    tokenizerSha256: null,
    dataSha256: null,
    truthSha256: null,
    sequences: null,
    sampleSeed: null,
    windowSize: null,
    promptLength: null,
    continuationLength: null,
    device: null,
    weights: null,
    ...fields,
  };
}

const byName = ([a]: [string, unknown], [b]: [string, unknown]) => (a < b ? -1 : a > b ? 1 : 0);

/** The key of an identity: the sha256 of its fields (and a study's settings), by name, in one fixed order. */
export function identityKey(identity: CellIdentity | StudyIdentity): string {
  const fields = Object.entries(identity)
    .map(([name, value]): [string, unknown] =>
      name === 'settings' && value !== null && typeof value === 'object'
        ? [name, Object.entries(value).sort(byName)]
        : [name, value],
    )
    .sort(byName);
  return createHash('sha256').update(JSON.stringify(fields)).digest('hex');
}
