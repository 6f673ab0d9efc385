/**
 * The whole pipeline `pythia run` (and `npm start`) runs, in order, each stage skipping what is
 * already done: the synthetic corpus (unless the user brings tokenized data), the suite with its
 * intervention siblings, evaluation of every checkpoint with the case studies, and the report. The
 * wall time of each stage is recorded in `<out>/run.json`, which the report shows.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadTokenizer } from '../data/tokenizer.js';
import { writeReport } from '../report/report.js';
import type { EvalEvent } from '../results/evaluate.js';
import { evaluate } from '../results/evaluate.js';
import { STUDY_NAMES, type StudyName, type StudySettings } from '../results/studies.js';
import { NANO_TUNED_LENS_STUDY } from '../results/tuned-lens-study.js';
import type { ExecutionProvider } from '../runtime/session.js';
import { DEFAULT_OPTIONS } from '../synth/corpus.js';
import { DATASET_PREFIX, type SynthProgress, synthesize, TOKENIZER_FILE, TRUTH_FILE } from '../synth/synthesize.js';
import type { RecipeOverrides } from '../train/overrides.js';
import type { ModelPreset } from '../train/recipes.js';
import { runSuite, type SuiteManifest, suiteModels } from '../train/suite.js';
import type { StepProgress } from '../train/trainer.js';
import { writeFileAtomic } from '../util/atomic.js';
import { ConfigError } from '../util/errors.js';
import { relativePath } from '../util/recorded-path.js';

export const RUN_RECORD = 'run.json';

export const STAGES = ['synth', 'train', 'eval', 'report'] as const;
export type Stage = (typeof STAGES)[number];

export interface RunOptions {
  out: string;
  preset: string;
  /** Tokenized training data (a .bin/.idx prefix); default: the synthetic corpus, generated into `<out>/synth`. */
  data?: string;
  preshuffled?: boolean;
  tokenizer?: string;
  /** Task files' folder; default: the synthetic corpus's `tasks/`. */
  taskDir?: string;
  skipTrain?: boolean;
  /** Documents of the synthetic corpus (default: its standard size). */
  synthDocuments?: number;
  /** Only these models of the preset. */
  models?: string[];
  overrides?: RecipeOverrides;
  /** Held-out validation batches at every checkpoint (default 2, as `pythia suite`). */
  evalIters?: number;
  /** Continue each model with the pronoun swap from this fraction of training (or step). */
  interventionFrom?: number;
  /** Items per task at each checkpoint (default: all). */
  limit?: number;
  /** Most tokens a generate_until item may generate. */
  maxGenTokens?: number;
  shots?: readonly number[];
  /** The case studies recorded at every checkpoint (default: every one), and their settings. */
  studies?: readonly StudyName[];
  studySettings?: Partial<StudySettings>;
  /** Threads of training (each model; see member-schedule.ts) and evaluation. */
  threads?: number;
  /** Models trained side by side (member-schedule.ts; default: the small ones, one per core). */
  parallelMembers?: number;
  /** onnxruntime execution provider for training and evaluation (default: cpu). */
  device?: ExecutionProvider;
  onEvent?: (e: RunEvent) => void;
}

export type RunEvent =
  | { type: 'stage'; stage: Stage; status: 'start' | 'skip' | 'done'; seconds?: number; detail?: string }
  | { type: 'synth'; progress: SynthProgress }
  /** How the suite's models share the machine (member-schedule.ts), said before the first trains. */
  | { type: 'train-schedule'; description: string }
  /** `run` of `runs`: baselines and intervention siblings in the order they start, for the stage's share done. */
  | {
      type: 'train';
      model: ModelPreset;
      run: number;
      runs: number;
      status?: 'fresh' | 'resume' | 'done';
      progress?: StepProgress;
    }
  | { type: 'eval'; event: EvalEvent };

export interface StageTime {
  stage: Stage;
  seconds: number;
  status: 'done' | 'skipped';
}

/** `<out>/run.json`. */
export interface RunRecord {
  stages: StageTime[];
  totalSeconds: number;
  /** The report's page, relative to the run folder. */
  report?: string;
}

export async function runPipeline(options: RunOptions): Promise<RunRecord> {
  const emit = options.onEvent ?? (() => {});
  const stages: StageTime[] = [];
  const started = performance.now();
  const stage = async (
    name: Stage,
    skip: string | undefined,
    body: () => Promise<string | undefined>,
  ): Promise<void> => {
    if (skip !== undefined) {
      emit({ type: 'stage', stage: name, status: 'skip', detail: skip });
      stages.push({ stage: name, seconds: 0, status: 'skipped' });
      return;
    }
    emit({ type: 'stage', stage: name, status: 'start' });
    const t0 = performance.now();
    const detail = await body();
    const seconds = (performance.now() - t0) / 1000;
    stages.push({ stage: name, seconds, status: 'done' });
    emit({ type: 'stage', stage: name, status: 'done', seconds, detail: detail ?? undefined });
  };

  const synthDir = join(options.out, 'synth');
  const data = options.data ?? join(synthDir, DATASET_PREFIX);
  const tokenizerPath = options.tokenizer ?? (options.data ? undefined : join(synthDir, TOKENIZER_FILE));
  const suiteDir = join(options.out, 'suite');
  if (options.data && !options.tokenizer)
    throw new ConfigError('--data needs --tokenizer <tokenizer.json> (the one the data was tokenized with)');

  const synthDone = options.data
    ? 'using --data'
    : existsSync(join(synthDir, TRUTH_FILE))
      ? `${synthDir} already there`
      : undefined;
  await stage('synth', synthDone, async () => {
    await synthesize(synthDir, { ...DEFAULT_OPTIONS, documents: options.synthDocuments }, (progress) =>
      emit({ type: 'synth', progress }),
    );
    return synthDir;
  });

  let manifest: SuiteManifest | undefined;
  await stage('train', options.skipTrain ? '--skip-train' : undefined, async () => {
    const tokenizerVocab = tokenizerPath ? (await loadTokenizer(tokenizerPath)).vocabSize : undefined;
    const runs =
      suiteModels({ preset: options.preset, tokenizerVocab, overrides: options.overrides, only: options.models })
        .length * (options.interventionFrom === undefined ? 1 : 2);
    const order = new Map<string, number>();
    const runOf = (model: ModelPreset): number => {
      if (!order.has(model.name)) order.set(model.name, order.size);
      return order.get(model.name)!;
    };
    manifest = await runSuite({
      preset: options.preset,
      data: { prefix: data, preshuffled: options.preshuffled ?? false },
      outDir: suiteDir,
      tokenizerPath,
      tokenizerVocab,
      overrides: options.overrides,
      only: options.models,
      evalIters: options.evalIters ?? 2,
      threads: options.threads,
      parallelMembers: options.parallelMembers,
      device: options.device,
      interventionFrom:
        options.interventionFrom === undefined
          ? undefined
          : options.interventionFrom < 1
            ? { fraction: options.interventionFrom }
            : { step: options.interventionFrom },
      onSchedule: (schedule) => emit({ type: 'train-schedule', description: schedule.description }),
      onModelStart: (model, status) => emit({ type: 'train', model, run: runOf(model), runs, status }),
      onProgress: (model, progress) => emit({ type: 'train', model, run: runOf(model), runs, progress }),
    });
    return `${manifest.models.length} models`;
  });

  await stage('eval', undefined, async () => {
    const summary = await evaluate({
      sources: [suiteDir],
      taskDirs: options.taskDir ? [options.taskDir] : undefined,
      shots: options.shots,
      limit: options.limit,
      maxGenTokens: options.maxGenTokens,
      threads: options.threads,
      device: options.device,
      studies: options.studies ?? STUDY_NAMES,
      // The nano suite trains its tuned lenses scaled down (docs/analyses.md), unless told otherwise.
      studySettings: { ...(options.preset === 'nano' && NANO_TUNED_LENS_STUDY), ...options.studySettings },
      onEvent: (event) => emit({ type: 'eval', event }),
    });
    return `${summary.evaluated} cells evaluated, ${summary.skipped} already there`;
  });

  // Recorded before the report is drawn, so that it shows the time each stage took.
  const record = (report?: string): RunRecord => ({
    stages,
    totalSeconds: (performance.now() - started) / 1000,
    report: report === undefined ? undefined : relativePath(options.out, report),
  });
  await writeFileAtomic(join(options.out, RUN_RECORD), `${JSON.stringify(record(), null, 2)}\n`);
  let report: string | undefined;
  await stage('report', undefined, async () => {
    report = (await writeReport({ suiteDir })).html;
    return report;
  });

  const final = record(report);
  await writeFileAtomic(join(options.out, RUN_RECORD), `${JSON.stringify(final, null, 2)}\n`);
  return final;
}
