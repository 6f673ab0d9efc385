/**
 * pythia-ts as a library: `import { GPTNeoX, Suite, TrainingOrder, train } from 'pythia-ts'`.
 * See docs/api.md. Everything here is built on the layers below; nothing reaches the network.
 */

export type {
  ActivationInput,
  ActivationResult,
  FromPretrainedOptions,
  ModelForwardOptions,
  ModelForwardResult,
  ModelGenerateOptions,
  RepeatedTokensOptions,
  RunWithCacheOptions,
  RunWithHooksOptions,
  ScorePair,
} from './api/gpt-neox.js';
export { GPTNeoX, GPTNeoX as GPTNeoXForCausalLM } from './api/gpt-neox.js';
export { Suite, type SuiteCheckpoint } from './api/suite.js';
export { type TrainModelOptions, train } from './api/train.js';
export { TrainingOrder, type TrainingOrderOpenOptions } from './api/training-order.js';
export { type CorpusRecord, type ReadOptions, readCorpus, readDocuments, readRecords } from './data/corpus.js';
export { loadTokenizer, type TextTokenizer } from './data/tokenizer.js';
export { loadBuiltinTask } from './eval/lm-eval/load.js';
export { BUILTIN_TASKS, type BuiltinTask, TASK_GROUPS } from './eval/lm-eval/tasks.js';
export { type EvalModel, runTask, type TaskRunOptions } from './eval/run-task.js';
export { loadTasks, type TaskLookup } from './eval/task-files.js';
export { type OutputType, readTask, type Task, type TaskItem } from './eval/tasks.js';
export type { ActivationCache, LogitsRequest } from './model/activations.js';
export type { NeoXConfig } from './model/config.js';
export type { HeadScore } from './model/head-detectors.js';
export type { Activation } from './model/hooks.js';
export {
  hubCacheDir,
  type ResolvedCheckpoint,
  type ResolveOptions,
  resolveCheckpoint,
  resolveCheckpoints,
} from './model/hub-cache.js';
export type { IclScore } from './model/icl.js';
export type {
  ActivationPatch,
  ActivationScale,
  EditCells,
  HeadAblation,
  Interventions,
} from './model/interventions.js';
export { type LensLayer, type LogitLensOptions, logitLens } from './model/logit-lens.js';
export type { ScoreResult } from './model/score.js';
export { type EvalEvent, type EvaluateOptions, type EvaluateSummary, evaluate } from './results/evaluate.js';
export { exportTables, mergeDatabases } from './results/merge.js';
export { ResultsStore } from './results/store.js';
export type { RecipeOverrides } from './train/overrides.js';
export type { StepProgress, TrainResult } from './train/trainer.js';
export { ConfigError, DataError, FormatError } from './util/errors.js';
