/**
 * `evaluate`: the grid of (checkpoint × task × shots) cells into a results database. Cells already
 * in the database are skipped, so an interrupted run resumes; `shard` takes a deterministic 1/n of
 * the cells (every n-th of the grid in its sorted order), so array jobs split a grid with no
 * coordination and `mergeDatabases` puts the pieces back together.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadTokenizer, type TextTokenizer } from '../data/tokenizer.js';
import {
  type CheckpointRef,
  checkpointRef,
  hubCheckpointRefs,
  isCheckpointDir,
  readSuite,
  suiteCheckpoints,
} from '../eval/checkpoints.js';
import type { Aggregate } from '../eval/metrics.js';
import { type EvalModel, releaseScorers, runTask } from '../eval/run-task.js';
import { loadTasks, suiteTaskDir } from '../eval/task-files.js';
import { type OutputType, readTask, type Task } from '../eval/tasks.js';
import { readConfig } from '../model/checkpoint.js';
import { countParameters, type NeoXConfig } from '../model/config.js';
import { checkWeightFormat, type WeightFormat } from '../model/int8.js';
import { loadInt8Checkpoint } from '../model/int8-load.js';
import { type MemoryPlan, planMemory, streamingMessage } from '../model/memory-budget.js';
import { loadModelWeights } from '../model/model-weights.js';
import { checkProvider, type ExecutionProvider } from '../runtime/session.js';
import { readLog } from '../train/run-folder.js';
import { ConfigError } from '../util/errors.js';
import type { StudyRuntime } from './case-studies.js';
import { type CellSettings, cellIdentity, checkpointSha256, fileSha256, identityKey } from './identity.js';
import { type CellKey, type CellRecord, ResultsStore } from './store.js';
import { DEFAULT_STUDY_SETTINGS, STUDIES, type StudyName, type StudySettings, studyCells } from './studies.js';

export interface Shard {
  index: number;
  count: number;
}

export interface EvaluateOptions {
  /** Suite folders, checkpoint folders, Hugging Face ids (`org/name[@revision]`, from the local cache), or resolved checkpoints. */
  sources: readonly (string | CheckpointRef)[];
  /** The Hugging Face hub cache for ids (default: $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub). */
  cacheDir?: string;
  /** Task files or names (task files in the task folders, else built-in tasks); default every task in the task folders. */
  tasks?: readonly string[];
  /** Hugging Face datasets for built-in tasks, as `<dir>/<org>/<name>/`, before the hub cache. */
  datasetDir?: string;
  taskDirs?: readonly string[];
  /** Folders of lm-evaluation-harness YAML task configs (`--include-path`). */
  includePath?: readonly string[];
  outputType?: OutputType;
  /** Demonstrations from this file instead of each task's own items. */
  fewshotFile?: string;
  models?: readonly string[];
  steps?: readonly number[];
  /** Numbers of demonstrations; default [0]. */
  shots?: readonly number[];
  /** Seed of the few-shot draw; default 1234 (lm-evaluation-harness's). */
  seed?: number;
  limit?: number;
  /** The results database; default `<suite>/results.duckdb` for one suite. */
  db?: string;
  batchSize?: number;
  maxGenTokens?: number;
  threads?: number;
  /** onnxruntime's execution provider (default cpu). */
  device?: ExecutionProvider;
  /** The task cells' weights: float32 (default) or int8 (CPU only; the studies stay float32). */
  weights?: WeightFormat;
  /** A tokenizer for checkpoints that carry none. */
  tokenizer?: string;
  shard?: Shard;
  /**
   * The peak memory to stay under, in bytes (`--max-memory`): a checkpoint whose float32 weights
   * exceed 70% of it, or without it of the available memory, is scored a layer at a time.
   */
  maxMemory?: number;
  /** The case studies to record (src/results/studies.ts), as cells of the grid beside the task cells. */
  studies?: readonly StudyName[];
  /** Their settings; each one left out takes its default (DEFAULT_STUDY_SETTINGS). */
  studySettings?: Partial<StudySettings>;
  onEvent?: (e: EvalEvent) => void;
}

export type EvalEvent =
  | { type: 'plan'; cells: number; skipped: number; checkpoints: number }
  | { type: 'cell'; cell: CellKey; index: number; total: number; aggregates: Aggregate[]; seconds: number }
  | { type: 'progress'; cell: CellKey; done: number; items: number }
  /** A checkpoint too large for the memory budget, scored a layer at a time; `message` says why. */
  | { type: 'streaming'; model: string; step: number; message: string }
  /** A study recorded: at one checkpoint, or (per-step studies) at `steps` steps. */
  | { type: 'study'; study: StudyName; model: string | null; step: number; steps?: number }
  /** Why a study records nothing where it might be expected to; each message once per run. */
  | { type: 'warning'; message: string };

export interface EvaluateSummary {
  db: string;
  /** Cells of this grid (this shard's), whether evaluated now or found in the database. */
  cells: (CellKey & { cell: string })[];
  evaluated: number;
  skipped: number;
  /** Aggregates of every cell of the grid, from the database. */
  rows: {
    cell: string;
    model: string;
    step: number;
    task: string;
    shots: number;
    metric: string;
    value: number;
    stderr: number | null;
    n: number;
  }[];
}

export const DEFAULT_SEED = 1234;

/** A checkpoint to evaluate, with the content hashes that identify its cells. */
interface HashedCheckpoint {
  ref: CheckpointRef;
  sha256: string;
  tokenizerPath: string;
  tokenizerSha256: string;
}

/** Hashes a checkpoint's files and its tokenizer (its own tokenizer.json, else `fallback`). */
async function hashCheckpoint(ref: CheckpointRef, fallback: string | undefined): Promise<HashedCheckpoint> {
  const own = join(ref.dir, 'tokenizer.json');
  const tokenizerPath = existsSync(own) ? own : fallback;
  if (!tokenizerPath) throw new ConfigError(`${ref.dir}: no tokenizer.json in the checkpoint; pass --tokenizer`);
  return {
    ref,
    sha256: await checkpointSha256(ref.dir),
    tokenizerPath,
    tokenizerSha256: await fileSha256(tokenizerPath),
  };
}

/**
 * One tokenizer per content, not per path: every checkpoint folder of a suite carries its own copy
 * of one tokenizer.json, and each loaded tokenizer keeps an encoding process alive.
 */
async function cachedTokenizer(
  tokenizers: Map<string, TextTokenizer>,
  path: string,
  sha256: string,
): Promise<TextTokenizer> {
  const known = tokenizers.get(sha256);
  if (known) return known;
  const tokenizer = await loadTokenizer(path);
  tokenizers.set(sha256, tokenizer);
  return tokenizer;
}

/**
 * Loads a checkpoint (straight to int8 where only int8 cells run on it; opened for layer streaming
 * where `memory` says so, as model-weights.ts opens it) and its tokenizer, and records the model and
 * checkpoint rows.
 */
async function loadForEvaluation(
  store: ResultsStore,
  hashed: HashedCheckpoint,
  tokenizers: Map<string, TextTokenizer>,
  memory: MemoryPlan,
  int8Only: boolean,
): Promise<EvalModel> {
  const { ref, tokenizerPath } = hashed;
  let model: Omit<EvalModel, 'tokenizer'>;
  if (int8Only) {
    const checkpoint = loadInt8Checkpoint(ref.dir);
    model = { config: checkpoint.config, params: new Map(), int8: checkpoint.weights };
  } else {
    const weights = loadModelWeights(ref.dir, memory);
    model =
      weights.kind === 'resident'
        ? { config: weights.config, params: weights.checkpoint.params }
        : {
            config: weights.config,
            params: new Map(),
            streamed: { stream: weights.stream, activationBytes: weights.activationBytes },
          };
  }
  const tokenizer = await cachedTokenizer(tokenizers, tokenizerPath, hashed.tokenizerSha256);
  const config: NeoXConfig = model.config;
  const counts = countParameters(config);
  await store.upsertModel({
    model: ref.model,
    run: ref.run,
    baseline: ref.baseline,
    parameters: counts.total,
    nonEmbeddingParameters: counts.nonEmbedding,
    layers: config.numLayers,
    hiddenSize: config.hiddenSize,
    heads: config.numHeads,
    vocabSize: config.vocabSize,
    maxPositions: config.maxPositions,
  });
  await store.upsertCheckpoint({
    model: ref.model,
    step: ref.step,
    sha256: hashed.sha256,
    tokens: ref.tokens,
    path: ref.dir,
  });
  return { ...model, tokenizer };
}

/** The studies that only score or read activations, and so run on a streamed checkpoint. */
const STREAMED_STUDIES: ReadonlySet<StudyName> = new Set([
  'logit-lens',
  'tuned-lens',
  'heads',
  'icl',
  'token-curves',
  'attention',
]);

/**
 * Each checkpoint's memory plan, made before any is loaded: a streamed one can score and read
 * activations, not generate (generate_until tasks, memorization, canaries) nor hand over every
 * weight at once (the weights study), so a grid that asks for those there is refused first.
 */
function planCheckpoints(
  refs: readonly CheckpointRef[],
  cellsOf: (ref: CheckpointRef) => readonly { task: string }[],
  tasks: readonly Task[],
  studiesOf: (ref: CheckpointRef) => readonly StudyName[],
  maxMemory: number | undefined,
  int8Only: (ref: CheckpointRef) => boolean,
): Map<CheckpointRef, MemoryPlan> {
  const plans = new Map<CheckpointRef, MemoryPlan>();
  for (const ref of refs) {
    const plan = planMemory(readConfig(ref.dir), maxMemory, undefined, int8Only(ref) ? 'int8' : 'float32');
    plans.set(ref, plan);
    if (!plan.stream) continue;
    const where = `${ref.model} step ${ref.step} streams (its ${plan.reason})`;
    if (int8Only(ref))
      throw new ConfigError(
        `--weights int8 needs the int8 weights resident, but ${where}: give --max-memory room for them`,
      );
    const generating = cellsOf(ref).find((c) => tasks.find((t) => t.name === c.task)?.outputType === 'generate_until');
    if (generating)
      throw new ConfigError(
        `task ${generating.task} generates, which needs the checkpoint resident, but ${where}: give --max-memory room for them`,
      );
    const resident = studiesOf(ref).find((s) => !STREAMED_STUDIES.has(s));
    if (resident)
      throw new ConfigError(
        `the ${resident} study needs the checkpoint resident, but ${where}: give --max-memory room for them`,
      );
  }
  return plans;
}

interface Plan {
  checkpoints: CheckpointRef[];
  suites: NonNullable<ReturnType<typeof readSuite>>[];
  taskDirs: string[];
}

function planSources(options: EvaluateOptions): Plan {
  const plan: Plan = { checkpoints: [], suites: [], taskDirs: [...(options.taskDirs ?? [])] };
  for (const source of options.sources) {
    if (typeof source !== 'string') {
      plan.checkpoints.push(source);
      continue;
    }
    if (!existsSync(source)) {
      plan.checkpoints.push(
        ...stepsOf(source, hubCheckpointRefs(source, { cacheDir: options.cacheDir }), options.steps),
      );
      continue;
    }
    if (isCheckpointDir(source)) {
      plan.checkpoints.push(checkpointRef(source));
      continue;
    }
    const suite = readSuite(source);
    if (!suite)
      throw new ConfigError(
        `${source}: neither a checkpoint folder (config.json) nor a suite folder (<model>/step<N>/config.json)`,
      );
    plan.suites.push(suite);
    plan.checkpoints.push(...suiteCheckpoints(suite, { models: options.models, steps: options.steps }));
    if (!options.taskDirs?.length) {
      const dir = suiteTaskDir(source);
      if (dir && !plan.taskDirs.includes(dir)) plan.taskDirs.push(dir);
    }
  }
  const seen = new Map<string, string>();
  for (const c of plan.checkpoints) {
    const id = `${c.model}@${c.step}`;
    const other = seen.get(id);
    if (other !== undefined && other !== c.dir)
      throw new ConfigError(`two checkpoints are both ${c.model} step ${c.step}: ${other} and ${c.dir}`);
    seen.set(id, c.dir);
  }
  return plan;
}

/** The hub revisions of `source` at the `--steps` asked for; a step it does not have is an error. */
function stepsOf(source: string, refs: CheckpointRef[], steps: readonly number[] | undefined): CheckpointRef[] {
  if (!steps) return refs;
  const missing = steps.filter((s) => !refs.some((r) => r.step === s));
  if (missing.length > 0)
    throw new ConfigError(
      `--steps: ${missing.join(', ')} not among the revisions of ${source} in the cache (${refs.map((r) => r.step).join(', ')})`,
    );
  return refs.filter((r) => steps.includes(r.step));
}

export function defaultDatabase(sources: EvaluateOptions['sources']): string | undefined {
  if (sources.length === 1 && typeof sources[0] === 'string' && readSuite(sources[0]))
    return `${sources[0]}/results.duckdb`;
  return undefined;
}

function compareCells(a: CellKey, b: CellKey): number {
  return a.model < b.model
    ? -1
    : a.model > b.model
      ? 1
      : a.step - b.step || (a.task < b.task ? -1 : a.task > b.task ? 1 : 0) || a.shots - b.shots;
}

/** The grid's cells in their canonical order, then this shard's share. */
export function gridCells(
  checkpoints: readonly CheckpointRef[],
  tasks: readonly Task[],
  shots: readonly number[],
  shard?: Shard,
): CellKey[] {
  const cells: CellKey[] = [];
  for (const c of checkpoints) {
    for (const t of tasks) {
      for (const k of shots)
        if (k === 0 || t.outputType !== 'loglikelihood_rolling')
          cells.push({ model: c.model, step: c.step, task: t.name, shots: k });
    }
  }
  cells.sort(compareCells);
  return shard ? cells.filter((_, i) => i % shard.count === shard.index) : cells;
}

export async function evaluate(options: EvaluateOptions): Promise<EvaluateSummary> {
  if (options.device) checkProvider(options.device);
  checkWeightFormat(options.weights, options.device);
  const plan = planSources(options);
  if (plan.checkpoints.length === 0) throw new ConfigError('no checkpoints to evaluate');
  const db = options.db ?? defaultDatabase(options.sources);
  if (!db) throw new ConfigError('--db: needed when the sources are not exactly one suite folder');
  const tasks = await loadTasks(options.tasks, plan.taskDirs, {
    outputType: options.outputType,
    cacheDir: options.cacheDir,
    datasetDir: options.datasetDir,
    includePath: options.includePath,
  });
  const names = new Map<string, string>();
  for (const t of tasks) {
    const other = names.get(t.name);
    if (other) throw new ConfigError(`--tasks: ${other} and ${t.path} are both named "${t.name}"`);
    names.set(t.name, t.path);
  }
  const fewshotPool = options.fewshotFile ? readTask(options.fewshotFile, options.outputType).items : undefined;
  const shots = [...new Set(options.shots ?? [0])].sort((a, b) => a - b);
  const grid = gridCells(plan.checkpoints, tasks, shots, options.shard);
  const batchSize = options.batchSize ?? 16;
  const maxGenTokens = options.maxGenTokens ?? 32;
  const device = options.device ?? 'cpu';

  // The database is checked before any checkpoint is hashed, loaded or scored.
  const store = await ResultsStore.open(db);
  try {
    for (const t of tasks) await store.registerTask(t);
    for (const suite of plan.suites) {
      for (const m of suite.models) if (m.log) await store.loadTrainingLog(m.name, readLog(m.log));
    }
    const hashed = new Map<string, HashedCheckpoint>();
    for (const ref of plan.checkpoints)
      hashed.set(`${ref.model}@${ref.step}`, await hashCheckpoint(ref, options.tokenizer));
    const settings = {
      seed: options.seed ?? DEFAULT_SEED,
      fewshotSha256: options.fewshotFile ? await fileSha256(options.fewshotFile) : null,
      limit: options.limit,
      maxGenTokens,
      device,
      weights: options.weights ?? 'float32',
      batchSize,
    };
    const cells = grid.map((c) => {
      const h = hashed.get(`${c.model}@${c.step}`)!;
      const task = tasks.find((t) => t.name === c.task)!;
      const identity = cellIdentity(c, { sha256: task.sha256, outputType: task.outputType, items: task.items.length }, {
        ...settings,
        checkpointSha256: h.sha256,
        tokenizerSha256: h.tokenizerSha256,
      } satisfies CellSettings);
      return { ...identity, cell: identityKey(identity) };
    });
    const finished = await store.finishedCells();
    const todo = cells.filter((c) => !finished.has(c.cell));
    const byCheckpoint = new Map<string, typeof todo>();
    for (const c of todo) {
      const id = `${c.model}@${c.step}`;
      byCheckpoint.set(id, [...(byCheckpoint.get(id) ?? []), c]);
    }
    const studyGrid = studyCells(options.studies ?? [], plan.checkpoints, options.shard);
    const studySettings: StudySettings = {
      ...DEFAULT_STUDY_SETTINGS,
      ...options.studySettings,
    };
    const studiesAt = (ref: CheckpointRef) =>
      studyGrid.filter((c) => c.model === ref.model && c.step === ref.step).map((c) => c.study);
    const toLoad = plan.checkpoints.filter((r) => byCheckpoint.has(`${r.model}@${r.step}`) || studiesAt(r).length > 0);
    // A checkpoint whose only work is int8 task cells is loaded straight to int8: a quarter of the memory.
    const int8Only = (r: CheckpointRef) => settings.weights === 'int8' && studiesAt(r).length === 0;
    const memory = planCheckpoints(
      toLoad,
      (r) => byCheckpoint.get(`${r.model}@${r.step}`) ?? [],
      tasks,
      studiesAt,
      options.maxMemory,
      int8Only,
    );
    options.onEvent?.({
      type: 'plan',
      cells: cells.length,
      skipped: cells.length - todo.length,
      checkpoints: toLoad.length,
    });
    const runtime = { threads: options.threads, provider: options.device };
    const tokenizers = new Map<string, TextTokenizer>();
    const warned = new Set<string>();
    const warn = (message: string) => {
      if (warned.has(message)) return;
      warned.add(message);
      options.onEvent?.({ type: 'warning', message });
    };
    let index = cells.length - todo.length;
    for (const ref of toLoad) {
      const h = hashed.get(`${ref.model}@${ref.step}`)!;
      const mine = byCheckpoint.get(`${ref.model}@${ref.step}`) ?? [];
      const weights = memory.get(ref)!;
      const model = await loadForEvaluation(store, h, tokenizers, weights, int8Only(ref));
      if (weights.stream)
        options.onEvent?.({
          type: 'streaming',
          model: ref.model,
          step: ref.step,
          message: streamingMessage(weights, model.streamed!.stream.bufferBytes),
        });
      try {
        try {
          for (const cell of mine) {
            const where: CellKey = { model: cell.model, step: cell.step, task: cell.task, shots: cell.shots };
            const task = tasks.find((t) => t.name === cell.task)!;
            const started = performance.now();
            const run = await runTask(model, task, {
              shots: cell.shots,
              seed: settings.seed,
              fewshotPool,
              limit: options.limit,
              batchSize,
              maxGenTokens,
              runtime,
              weights: settings.weights,
              onProgress: (done, items) => options.onEvent?.({ type: 'progress', cell: where, done, items }),
            });
            const seconds = (performance.now() - started) / 1000;
            const record: CellRecord = {
              ...cell,
              items: run.items.length,
              batchSize,
              threads: options.threads ?? null,
              seconds,
            };
            await store.writeCell(record, run.items, run.aggregates);
            options.onEvent?.({
              type: 'cell',
              cell: where,
              index: ++index,
              total: cells.length,
              aggregates: run.aggregates,
              seconds,
            });
          }
        } finally {
          await releaseScorers(model);
        }
        const context: StudyRuntime = {
          runtime,
          device,
          checkpointSha256: h.sha256,
          tokenizerSha256: h.tokenizerSha256,
          warn,
          checkpoints: plan.checkpoints,
        };
        for (const name of studiesAt(ref)) {
          const study = STUDIES[name];
          if (study.per === 'checkpoint' && (await study.record(store, ref, model, studySettings, context)))
            options.onEvent?.({ type: 'study', study: name, model: ref.model, step: ref.step });
        }
      } finally {
        await model.streamed?.stream.close();
      }
    }
    for (const name of new Set(studyGrid.filter((c) => c.model === null).map((c) => c.study))) {
      const study = STUDIES[name];
      if (study.per !== 'step') continue;
      const steps = studyGrid.filter((c) => c.study === name).map((c) => c.step);
      const first = plan.checkpoints[0]!;
      const h = hashed.get(`${first.model}@${first.step}`)!;
      const tokenizer = await cachedTokenizer(tokenizers, h.tokenizerPath, h.tokenizerSha256);
      const counted = await study.record(store, plan.checkpoints, steps, tokenizer, h.tokenizerSha256);
      if (counted > 0)
        options.onEvent?.({ type: 'study', study: name, model: null, step: steps.at(-1)!, steps: counted });
    }
    const wanted = new Set(cells.map((c) => c.cell));
    const all = await store.rows(
      'SELECT cell, model, step, task, shots, metric, value, stderr, n FROM aggregates ORDER BY model, step, task, shots, metric',
    );
    const rows = all.filter((r) => wanted.has(r.cell as string)) as EvaluateSummary['rows'];
    return {
      db,
      cells: cells.map((c) => ({ cell: c.cell, model: c.model, step: c.step, task: c.task, shots: c.shots })),
      evaluated: todo.length,
      skipped: cells.length - todo.length,
      rows,
    };
  } finally {
    store.close();
  }
}
