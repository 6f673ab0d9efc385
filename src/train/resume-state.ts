/**
 * Checks a `trainer_state.json` read from disk before anything uses it: every field the trainer
 * reads, with its type, so a hand-edited or truncated state is a one-line error naming the file and
 * the field. The field tables are typed by the interfaces they check, so a field added to the
 * recipe does not compile until it is checked here too.
 */
import { FormatError } from '../util/errors.js';
import type { CheckpointSchedule } from './checkpoint-schedule.js';
import type { InitRecipe } from './init.js';
import type { LrSchedule } from './lr-schedule.js';
import type { TrainRecipe } from './recipes.js';
import type { RecordedData } from './recorded-data.js';
import type { TrainerState } from './trainer.js';

interface Check {
  expected: string;
  test: (v: unknown) => boolean;
}
type Schema<T> = { [K in keyof T]-?: Check | Schema<T[K]> };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const check = (expected: string, test: (v: unknown) => boolean): Check => ({ expected, test });
const number = check('a number', (v) => typeof v === 'number' && Number.isFinite(v));
const count = check('a non-negative integer', (v) => Number.isSafeInteger(v) && (v as number) >= 0);
const string = check('a string', (v) => typeof v === 'string');
const boolean = check('true or false', (v) => typeof v === 'boolean');
const optional = (c: Check): Check => check(`absent or ${c.expected}`, (v) => v === undefined || c.test(v));
const oneOf = (...values: string[]): Check =>
  check(`one of ${values.map((v) => JSON.stringify(v)).join(', ')}`, (v) => values.includes(v as string));
const numbers = (n?: number): Check =>
  check(
    n === undefined ? 'a list of numbers' : `a list of ${n} numbers`,
    (v) => Array.isArray(v) && (n === undefined || v.length === n) && v.every((x) => number.test(x)),
  );

const INIT: Schema<InitRecipe> = { initMethod: string, outputLayerInitMethod: string, initMethodStd: number };
const CHECKPOINT: Schema<CheckpointSchedule> = {
  checkpointFactor: optional(number),
  checkpointScale: oneOf('linear', 'log'),
  extraSaveIters: numbers(),
};
const SCHEDULE: Schema<LrSchedule> = {
  lr: number,
  minLr: number,
  warmup: number,
  decayIters: count,
  decayStyle: string,
};
const RECIPE: Schema<TrainRecipe> = {
  seqLength: count,
  trainBatchSize: count,
  microBatchSize: count,
  trainIters: count,
  schedule: SCHEDULE,
  weightDecay: number,
  gradientClipping: number,
  betas: numbers(2),
  eps: number,
  optimizer: oneOf('apex', 'torch'),
  seed: count,
  init: INIT,
  checkpoint: CHECKPOINT,
};
const DATA: Schema<RecordedData> = {
  prefix: string,
  preshuffled: boolean,
  split: optional(string),
  absolutePrefix: optional(string),
};
const RNG = check(
  'null or {words: [4 integers], spareNormal}',
  (v) =>
    v === null ||
    (isObject(v) &&
      Array.isArray(v.words) &&
      v.words.length === 4 &&
      v.words.every((w) => Number.isInteger(w)) &&
      (v.spareNormal === null || number.test(v.spareNormal))),
);
const INTERVENTION = check(
  'null or {kind: "pronoun-swap" or "pronoun-swap-pythia", fromStep}',
  (v) =>
    v === null ||
    (isObject(v) && (v.kind === 'pronoun-swap' || v.kind === 'pronoun-swap-pythia') && count.test(v.fromStep)),
);
const STATE: Schema<TrainerState> = {
  format: oneOf('pythia-ts trainer state'),
  version: check('1', (v) => v === 1),
  model: string,
  step: count,
  samplesConsumed: count,
  recipe: RECIPE,
  data: DATA,
  init: { seed: count, from: check('a path or null', (v) => v === null || typeof v === 'string') },
  rng: RNG,
  intervention: INTERVENTION,
  baseline: check(
    "absent, null or the baseline model's name",
    (v) => v === undefined || v === null || typeof v === 'string',
  ),
};

/** The first field of `value` that `schema` refuses, with what it expected. */
function firstProblem(value: unknown, schema: Record<string, Check | object>, path: string): string | undefined {
  if (!isObject(value)) return `${path || 'the file'} is ${JSON.stringify(value) ?? 'missing'}, expected an object`;
  for (const [key, rule] of Object.entries(schema)) {
    const where = path ? `${path}.${key}` : key;
    const v = value[key];
    if ('test' in rule && typeof rule.test === 'function') {
      const c = rule as Check;
      if (!c.test(v))
        return v === undefined
          ? `field ${where} is missing (expected ${c.expected})`
          : `field ${where} is ${JSON.stringify(v)}, expected ${c.expected}`;
    } else {
      const problem = firstProblem(v, rule as Record<string, Check | object>, where);
      if (problem) return problem;
    }
  }
  return undefined;
}

export function checkTrainerState(json: unknown, file: string): TrainerState {
  const problem = firstProblem(json, STATE as unknown as Record<string, Check | object>, '');
  if (problem) throw new FormatError(file, problem);
  return json as TrainerState;
}
