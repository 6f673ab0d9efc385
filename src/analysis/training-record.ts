/**
 * What a checkpoint records about its training: the step and the settings of its data order,
 * read from the `trainer_state.json` that `pythia train` writes into every step folder. Real
 * Pythia checkpoints carry none; their settings are Pythia's (PYTHIA_DEFAULTS) and their step is
 * the `step<N>` of their folder or revision name.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseJsonFile } from '../formats/strict-json.js';
import { recordedData } from '../train/recorded-data.js';
import { FormatError } from '../util/errors.js';

export interface TrainingRecord {
  /** Optimizer updates done: the checkpoint has trained on samples [0, step · trainBatchSize). */
  step?: number;
  trainBatchSize?: number;
  seqLength?: number;
  trainIters?: number;
  seed?: number;
  /** The prefix is where the dataset is now: relative to the step folder, else where it was written. */
  data?: { prefix: string; preshuffled: boolean; split?: string };
}

function field(record: Record<string, unknown>, path: string, name: string): number {
  const v = record[name];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new FormatError(path, `${name}: expected a non-negative integer, got ${JSON.stringify(v)}`);
  return v;
}

/** Reads `<dir>/trainer_state.json` when present, else takes the step from a `step<N>` folder name. */
export function readTrainingRecord(dir: string): TrainingRecord {
  const path = join(dir, 'trainer_state.json');
  if (!existsSync(path)) {
    const m = /^step(\d+)$/.exec(basename(resolve(dir)));
    return m ? { step: Number(m[1]) } : {};
  }
  let state: Record<string, unknown>;
  try {
    state = parseJsonFile(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new FormatError(path, `not valid JSON: ${(e as Error).message}`);
  }
  const recipe = state.recipe as Record<string, unknown> | undefined;
  if (typeof recipe !== 'object' || recipe === null) throw new FormatError(path, 'recipe: missing');
  const data = state.data as Record<string, unknown> | undefined;
  if (typeof data !== 'object' || data === null || typeof data.prefix !== 'string')
    throw new FormatError(path, 'data.prefix: expected the dataset prefix');
  return {
    step: field(state, path, 'step'),
    trainBatchSize: field(recipe, path, 'trainBatchSize'),
    seqLength: field(recipe, path, 'seqLength'),
    trainIters: field(recipe, path, 'trainIters'),
    seed: field(recipe, path, 'seed'),
    data: recordedData(
      {
        prefix: data.prefix,
        preshuffled: data.preshuffled === true,
        split: typeof data.split === 'string' ? data.split : undefined,
        absolutePrefix: typeof data.absolutePrefix === 'string' ? data.absolutePrefix : undefined,
      },
      dir,
    ),
  };
}
