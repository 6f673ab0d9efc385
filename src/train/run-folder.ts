/**
 * The run folder, the one place its files are named, written and read:
 *
 *   <suite>/suite.json                  the suite's manifest (runSuite writes it)
 *   <suite>/<model>/log.jsonl           one JSON object per training step
 *   <suite>/<model>/step<N>/            a checkpoint: an HF folder (config.json, weights) plus,
 *                                       from pythia train, trainer_state.json and optimizer state
 *
 * A checkpoint is a `step<N>` folder holding `config.json` (saves are folder swaps, so a folder
 * under that name is complete). Every reader checks what it reads in the same way: a missing,
 * mistyped or unparsable field is a one-line FormatError naming the file and the field. Paths the
 * files record resolve against the recording file's folder (src/util/recorded-path.ts).
 */
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseJsonFile } from '../formats/strict-json.js';
import { writeFileAtomic } from '../util/atomic.js';
import { ConfigError, FormatError } from '../util/errors.js';
import { validateRecipe } from './recipes.js';
import { type RecordedData, recordData, recordedData } from './recorded-data.js';
import { checkTrainerState } from './resume-state.js';
import type { DataSpec, Intervention, TrainerState } from './trainer.js';

export const SUITE_MANIFEST = 'suite.json';
export const LOG_FILE = 'log.jsonl';
export const TRAINER_STATE_FILE = 'trainer_state.json';
export const CONFIG_FILE = 'config.json';

/** The one pattern of a checkpoint folder's name. */
export const STEP_FOLDER = /^step(\d+)$/;

export function stepFolderName(step: number): string {
  return `step${step}`;
}

/** The step a folder name stands for (`step<N>`), else undefined. */
export function stepOfFolder(name: string): number | undefined {
  const m = STEP_FOLDER.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Any checkpoint folder, ours or Hugging Face's: it holds `config.json`. */
export function isCheckpointDir(dir: string): boolean {
  return existsSync(join(dir, CONFIG_FILE));
}

/** The steps of the checkpoint folders (`step<N>` holding config.json) in a model folder, ascending. */
export function checkpointSteps(modelDir: string): number[] {
  if (!existsSync(modelDir) || !statSync(modelDir).isDirectory()) return [];
  return readdirSync(modelDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && STEP_FOLDER.test(e.name) && isCheckpointDir(join(modelDir, e.name)))
    .map((e) => stepOfFolder(e.name)!)
    .sort((a, b) => a - b);
}

export interface ModelFolder {
  name: string;
  dir: string;
  steps: number[];
  /** The model's log.jsonl where there is one. */
  log: string | undefined;
}

/** The model folders of a suite folder that hold at least one checkpoint, by name. */
export function modelFolders(suiteDir: string): ModelFolder[] {
  if (!existsSync(suiteDir) || !statSync(suiteDir).isDirectory()) return [];
  return readdirSync(suiteDir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => {
      const dir = join(suiteDir, e.name);
      const log = join(dir, LOG_FILE);
      return { name: e.name, dir, steps: checkpointSteps(dir), log: existsSync(log) ? log : undefined };
    })
    .filter((m) => m.steps.length > 0)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new FormatError(path, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return parseJsonFile(text);
  } catch (e) {
    throw new FormatError(path, `not valid JSON: ${(e as Error).message}`);
  }
}

// ---- trainer_state.json -------------------------------------------------------------------------

/** The text of a checkpoint's trainer_state.json: the data prefix recorded relative to the step folder. */
export function trainerStateText(state: TrainerState, stepDir: string): string {
  return `${JSON.stringify({ ...state, data: recordData(state.data, stepDir) }, null, 2)}\n`;
}

/** A checkpoint folder's `trainer_state.json`, checked; the data prefix where the dataset is now. */
export function readTrainerState(stepDir: string): TrainerState {
  const path = join(stepDir, TRAINER_STATE_FILE);
  if (!existsSync(path))
    throw new FormatError(stepDir, `${TRAINER_STATE_FILE} is missing (not a checkpoint written by pythia train)`);
  const state = checkTrainerState(upgradeRecipe(readJson(path)), path);
  state.data = recordedData(state.data as RecordedData, stepDir);
  try {
    validateRecipe(state.recipe);
  } catch (e) {
    if (e instanceof ConfigError) throw new FormatError(path, `recipe: ${e.message}`);
    throw e;
  }
  state.baseline ??= null; // states written before the field existed
  return state;
}

/**
 * The trainer state of a checkpoint folder where it has one of ours, checked. Hugging Face's
 * checkpoints have none, and transformers' Trainer writes a `trainer_state.json` of its own (no
 * `format` field): such a folder has no state of ours. A file that cannot be read as JSON is an error.
 */
export function trainerStateIfAny(dir: string): TrainerState | undefined {
  const path = join(dir, TRAINER_STATE_FILE);
  if (!existsSync(path)) return undefined;
  const json = readJson(path);
  if (typeof json === 'object' && json !== null && !Array.isArray(json) && !('format' in json)) return undefined;
  return readTrainerState(dir);
}

/** States written before the learning-rate schedule was nested in the recipe get the nested form. */
function upgradeRecipe(json: unknown): unknown {
  if (typeof json !== 'object' || json === null) return json;
  const r = (json as { recipe?: unknown }).recipe as Record<string, unknown> | undefined;
  if (typeof r !== 'object' || r === null || r.schedule !== undefined || r.lr === undefined) return json;
  const { lr, minLr, warmup, lrDecayIters, lrDecayStyle, ...rest } = r;
  return {
    ...json,
    recipe: { ...rest, schedule: { lr, minLr, warmup, decayIters: lrDecayIters, decayStyle: lrDecayStyle } },
  };
}

// ---- log.jsonl ----------------------------------------------------------------------------------

export interface LogEntry {
  step: number;
  loss?: number;
  val_loss?: number;
  lr?: number;
  grad_norm?: number;
  tokens_per_s?: number;
  batch_sha256?: string;
  source_batch_sha256?: string;
}

const LOG_NUMBERS = ['loss', 'val_loss', 'lr', 'grad_norm', 'tokens_per_s'] as const;
const LOG_STRINGS = ['batch_sha256', 'source_batch_sha256'] as const;

function logEntry(line: string, path: string, n: number): LogEntry {
  let v: unknown;
  try {
    v = parseJsonFile(line);
  } catch (e) {
    throw new FormatError(path, `line ${n}: not valid JSON (${(e as Error).message}; cut short?)`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new FormatError(path, `line ${n}: expected an object, got ${JSON.stringify(v)}`);
  const entry = v as Record<string, unknown>;
  if (!Number.isSafeInteger(entry.step) || (entry.step as number) < 0)
    throw new FormatError(
      path,
      `line ${n}: field step is ${JSON.stringify(entry.step) ?? 'missing'}, expected a non-negative integer`,
    );
  for (const key of LOG_NUMBERS)
    if (entry[key] !== undefined && (typeof entry[key] !== 'number' || !Number.isFinite(entry[key])))
      throw new FormatError(path, `line ${n}: field ${key} is ${JSON.stringify(entry[key])}, expected a number`);
  for (const key of LOG_STRINGS)
    if (entry[key] !== undefined && typeof entry[key] !== 'string')
      throw new FormatError(path, `line ${n}: field ${key} is ${JSON.stringify(entry[key])}, expected a string`);
  return entry as unknown as LogEntry;
}

/** A model's log, every line checked; a line a kill cut short is an error naming it. */
export function readLog(path: string): LogEntry[] {
  if (!existsSync(path)) throw new FormatError(path, 'no such log');
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((line, i) => ({ line, n: i + 1 }))
    .filter(({ line }) => line.trim() !== '')
    .map(({ line, n }) => logEntry(line, path, n));
}

export function appendLog(path: string, entry: LogEntry): void {
  appendFileSync(path, `${JSON.stringify(entry)}\n`);
}

/**
 * Starts a log: empty for a fresh run; a run resumed in its own folder keeps the entries up to its
 * starting step and drops later ones and any line a kill cut short (the only reader that passes
 * over such a line: it is about to be rewritten).
 */
export function startLog(path: string, startStep: number, continuing: boolean): void {
  if (!continuing || !existsSync(path)) {
    rmSync(path, { force: true });
    return;
  }
  const kept: string[] = [];
  for (const [i, line] of readFileSync(path, 'utf8').split('\n').entries()) {
    if (line.trim() === '') continue;
    let entry: LogEntry;
    try {
      entry = logEntry(line, path, i + 1);
    } catch {
      continue;
    }
    if (entry.step <= startStep) kept.push(line);
  }
  rmSync(path, { force: true });
  if (kept.length > 0) appendFileSync(path, `${kept.join('\n')}\n`);
}

// ---- suite.json ---------------------------------------------------------------------------------

export interface SuiteModelResult {
  name: string;
  parameters: number;
  nonEmbeddingParameters: number;
  layers: number;
  hiddenSize: number;
  heads: number;
  trainIters: number;
  finalLoss: number | null;
  finalValLoss: number | null;
  checkpoints: number[];
  /** The model's log.jsonl, relative to the suite folder. */
  log: string;
  /** Intervention siblings only: the model whose checkpoint they continued, the swap and its step. */
  baseline?: string;
  intervention?: Intervention;
  interventionFrom?: number;
}

export interface SuiteManifest {
  suite: string;
  /** Its prefix relative to the suite folder, and where it was when written. */
  data: RecordedData;
  /** Read back, a model may carry its name alone: every other field is checked where present. */
  models: SuiteModelResult[];
  /** sha256 of the tokens of each step's batch (index 0: step 1), the same for every model. */
  batchSha256: string[];
}

export async function writeSuiteManifest(
  suiteDir: string,
  manifest: Omit<SuiteManifest, 'data'> & { data: DataSpec },
): Promise<SuiteManifest> {
  const written: SuiteManifest = { ...manifest, data: recordData(manifest.data, suiteDir) };
  await writeFileAtomic(join(suiteDir, SUITE_MANIFEST), `${JSON.stringify(written, null, 2)}\n`);
  return written;
}

type FieldKind = 'string' | 'count' | 'number' | 'number|null' | 'counts' | 'boolean';
const FIELD_TESTS: Record<FieldKind, [string, (v: unknown) => boolean]> = {
  string: ['a string', (v) => typeof v === 'string'],
  count: ['a non-negative integer', (v) => Number.isSafeInteger(v) && (v as number) >= 0],
  number: ['a number', (v) => typeof v === 'number' && Number.isFinite(v)],
  'number|null': ['a number or null', (v) => v === null || (typeof v === 'number' && Number.isFinite(v))],
  counts: [
    'a list of non-negative integers',
    (v) => Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && x >= 0),
  ],
  boolean: ['true or false', (v) => typeof v === 'boolean'],
};
const MODEL_FIELDS: { [K in keyof SuiteModelResult]-?: FieldKind } = {
  name: 'string',
  parameters: 'count',
  nonEmbeddingParameters: 'count',
  layers: 'count',
  hiddenSize: 'count',
  heads: 'count',
  trainIters: 'count',
  finalLoss: 'number|null',
  finalValLoss: 'number|null',
  checkpoints: 'counts',
  log: 'string',
  baseline: 'string',
  intervention: 'string',
  interventionFrom: 'count',
};
const DATA_FIELDS: { [K in keyof RecordedData]-?: FieldKind } = {
  prefix: 'string',
  preshuffled: 'boolean',
  split: 'string',
  absolutePrefix: 'string',
};

function checkFields(
  value: Record<string, unknown>,
  fields: Record<string, FieldKind>,
  required: readonly string[],
  where: string,
  path: string,
): void {
  for (const [key, kind] of Object.entries(fields)) {
    const v = value[key];
    const [expected, test] = FIELD_TESTS[kind];
    if (v === undefined) {
      if (required.includes(key)) throw new FormatError(path, `${where}${key}: missing (expected ${expected})`);
    } else if (!test(v)) throw new FormatError(path, `${where}${key}: expected ${expected}, got ${JSON.stringify(v)}`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `<suiteDir>/suite.json`, checked, as recorded (`data.prefix` relative to the suite folder); undefined where there is none. */
export function readSuiteManifest(suiteDir: string): SuiteManifest | undefined {
  const path = join(suiteDir, SUITE_MANIFEST);
  if (!existsSync(path)) return undefined;
  const json = readJson(path);
  if (!isObject(json)) throw new FormatError(path, `expected an object, got ${JSON.stringify(json)}`);
  if (json.suite !== undefined && typeof json.suite !== 'string')
    throw new FormatError(path, `suite: expected a string, got ${JSON.stringify(json.suite)}`);
  if (!Array.isArray(json.models)) throw new FormatError(path, 'models: expected an array');
  json.models.forEach((m, i) => {
    if (!isObject(m)) throw new FormatError(path, `models[${i}]: expected an object, got ${JSON.stringify(m)}`);
    checkFields(m, MODEL_FIELDS, ['name'], `models[${i}].`, path);
  });
  if (json.data !== undefined) {
    if (!isObject(json.data)) throw new FormatError(path, `data: expected an object, got ${JSON.stringify(json.data)}`);
    checkFields(json.data, DATA_FIELDS, ['prefix'], 'data.', path);
  }
  const hashes = json.batchSha256 ?? [];
  if (!Array.isArray(hashes) || hashes.some((h) => typeof h !== 'string'))
    throw new FormatError(path, 'batchSha256: expected an array of strings');
  return {
    ...(json as unknown as SuiteManifest),
    suite: (json.suite as string | undefined) ?? 'suite',
    batchSha256: hashes,
  };
}

/** The data a suite.json records, with the prefix where the dataset is now (else relative to the suite folder). */
export function suiteData(suiteDir: string, manifest: SuiteManifest): DataSpec | undefined {
  return manifest.data ? recordedData(manifest.data, suiteDir) : undefined;
}
