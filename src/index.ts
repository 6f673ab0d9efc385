/**
 * pythia-ts as a library: `import { GPTNeoX, Suite, TrainingOrder, train } from 'pythia-ts'`.
 * See docs/api.md. Everything here is built on the layers below; nothing reaches the network.
 */
export { GPTNeoX, GPTNeoX as GPTNeoXForCausalLM } from './api/gpt-neox.js';
export type { FromPretrainedOptions, ModelForwardOptions, ModelForwardResult, ModelGenerateOptions, ScorePair } from './api/gpt-neox.js';
export { Suite, type SuiteCheckpoint } from './api/suite.js';
export { TrainingOrder, type TrainingOrderOpenOptions } from './api/training-order.js';
export { train, type TrainModelOptions } from './api/train.js';

export { evaluate, type EvalEvent, type EvaluateOptions, type EvaluateSummary } from './results/evaluate.js';
export { ResultsStore } from './results/store.js';
export { mergeDatabases, exportTables } from './results/merge.js';
export { runTask, type EvalModel, type TaskRunOptions } from './eval/run-task.js';
export { readTask, type Task, type TaskItem, type OutputType } from './eval/tasks.js';

export { hubCacheDir, resolveCheckpoint, type ResolvedCheckpoint, type ResolveOptions } from './model/hub-cache.js';
export { loadTokenizer, type TextTokenizer } from './data/tokenizer.js';
export { readCorpus, readDocuments, readRecords, type CorpusRecord, type ReadOptions } from './data/corpus.js';
export type { NeoXConfig } from './model/config.js';
export type { ScoreResult } from './model/score.js';
export type { RecipeOverrides } from './train/overrides.js';
export type { StepProgress, TrainResult } from './train/trainer.js';
export { ConfigError, DataError, FormatError } from './util/errors.js';
