/**
 * The training data as run-folder files record it (trainer_state.json, suite.json): the prefix
 * relative to the recording file's folder, and where it was when written (src/util/recorded-path.ts).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { indexPath } from '../data/indexed-dataset.js';
import { locateRecorded, relativePath } from '../util/recorded-path.js';
import type { DataSpec } from './trainer.js';

export interface RecordedData extends DataSpec {
  /** The prefix as it was when written, absolute; `prefix` is relative to the recording file's folder. */
  absolutePrefix?: string;
}

export function recordData(data: DataSpec, fileDir: string): RecordedData {
  return { ...data, prefix: relativePath(fileDir, data.prefix), absolutePrefix: resolve(data.prefix) };
}

/**
 * The data a file in `fileDir` recorded, with the prefix where the dataset is now: relative to
 * the file, else where it was. Where neither holds a dataset, the prefix relative to the file
 * (opening it then names that place). Files of older versions recorded an absolute prefix only.
 */
export function recordedData(data: RecordedData, fileDir: string): DataSpec {
  const { absolutePrefix, ...spec } = data;
  const located = locateRecorded(fileDir, data.prefix, absolutePrefix, (p) => existsSync(indexPath(p)));
  return { ...spec, prefix: located.path };
}
