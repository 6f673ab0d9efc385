/**
 * Which checkpoints a set of sources names: a suite folder (every `<model>/step<N>/`), a checkpoint
 * folder (an HF folder, or a suite's `<model>/step<N>`), or a resolved hub snapshot. Each comes
 * with its model name, step and, where known, the tokens it has trained on.
 */
import { basename, dirname, join, resolve } from 'node:path';
import { type ResolvedCheckpoint, type ResolveOptions, resolveCheckpoints } from '../model/hub-cache.js';
import {
  isCheckpointDir,
  type ModelFolder,
  modelFolders,
  stepFolderName,
  stepOfFolder,
  trainerStateIfAny,
} from '../train/run-folder.js';
import { ConfigError } from '../util/errors.js';

export { isCheckpointDir };

export interface CheckpointRef {
  model: string;
  /** Training step; -1 where the source does not say. */
  step: number;
  dir: string;
  tokens: number | null;
  /** `intervention` for a run continued with the pronoun swap (trainer_state.json's `intervention`). */
  run?: 'baseline' | 'intervention';
  /** The run an intervention continued from. */
  baseline?: string | null;
}

export interface SuiteModels {
  dir: string;
  models: ModelFolder[];
}

/** A suite folder: one subfolder per model, each holding `step<N>` checkpoint folders. */
export function readSuite(dir: string): SuiteModels | undefined {
  if (isCheckpointDir(dir)) return undefined;
  const models = modelFolders(dir);
  return models.length > 0 ? { dir, models } : undefined;
}

/** Tokens seen by a checkpoint our trainer wrote (trainer_state.json), else null. */
export function tokensSeen(dir: string): number | null {
  const state = trainerStateIfAny(dir);
  return state ? state.samplesConsumed * state.recipe.seqLength : null;
}

/**
 * Whether a checkpoint belongs to an intervention run (trainer_state.json records the swap), and
 * the baseline it continued: the state's `baseline`, else the model name without `-intervention`.
 */
export function runOf(dir: string, model: string): Pick<CheckpointRef, 'run' | 'baseline'> {
  const state = trainerStateIfAny(dir);
  if (!state?.intervention) return { run: 'baseline', baseline: null };
  const baseline =
    state.baseline !== null
      ? state.baseline
      : model.endsWith('-intervention')
        ? model.slice(0, -'-intervention'.length)
        : null;
  return { run: 'intervention', baseline };
}

/** A single checkpoint folder: `<model>/step<N>` gives (model, N); any other folder is its own model at step −1. */
export function checkpointRef(
  dir: string,
  named?: { model: string; step?: number; tokens?: number | null },
): CheckpointRef {
  const abs = resolve(dir);
  const folderStep = stepOfFolder(basename(abs));
  const model = named?.model ?? (folderStep !== undefined ? basename(dirname(abs)) : basename(abs));
  const step = named?.step ?? folderStep ?? -1;
  return {
    model,
    step,
    dir,
    tokens: named?.tokens !== undefined ? named.tokens : tokensSeen(dir),
    ...runOf(dir, model),
  };
}

/** Tokens per Pythia training step: 1024 sequences of 2048 tokens (the Pythia paper, §2). */
export const PYTHIA_TOKENS_PER_STEP = 1024 * 2048;

/** A hub snapshot: EleutherAI's Pythia checkpoints at `step<N>` have seen N × 2,097,152 tokens. */
export function hubCheckpointRef(r: ResolvedCheckpoint): CheckpointRef {
  const pythia = /^EleutherAI\/pythia-/.test(r.model);
  return {
    model: r.model,
    step: r.step ?? -1,
    dir: r.dir,
    tokens: pythia && r.step !== undefined ? r.step * PYTHIA_TOKENS_PER_STEP : tokensSeen(r.dir),
  };
}

/** A hub id, or a glob over its step revisions (`EleutherAI/pythia-160m@step*`), as checkpoints in step order. */
export function hubCheckpointRefs(spec: string, options: ResolveOptions = {}): CheckpointRef[] {
  return resolveCheckpoints(spec, options).map(hubCheckpointRef);
}

export interface CheckpointFilter {
  models?: readonly string[];
  /** Only these steps (each must exist for some model); undefined: all. */
  steps?: readonly number[];
}

/** Every checkpoint of a suite, filtered; unknown model names and steps are errors. */
export function suiteCheckpoints(suite: SuiteModels, filter: CheckpointFilter): CheckpointRef[] {
  let models = suite.models;
  if (filter.models && filter.models.length > 0) {
    const unknown = filter.models.filter((n) => !models.some((m) => m.name === n));
    if (unknown.length > 0)
      throw new ConfigError(
        `--models: ${unknown.join(', ')} not in ${suite.dir} (${models.map((m) => m.name).join(', ')})`,
      );
    models = models.filter((m) => filter.models!.includes(m.name));
  }
  if (filter.steps) {
    const all = new Set(models.flatMap((m) => m.steps));
    const missing = filter.steps.filter((s) => !all.has(s));
    if (missing.length > 0)
      throw new ConfigError(
        `--steps: no checkpoint at step ${missing.join(', ')} in ${suite.dir} (steps: ${[...all].sort((a, b) => a - b).join(', ')})`,
      );
  }
  return models.flatMap((m) =>
    m.steps
      .filter((s) => !filter.steps || filter.steps.includes(s))
      .map((step) => checkpointRef(join(m.dir, stepFolderName(step)), { model: m.name, step })),
  );
}
