/**
 * Built-in tasks: lm-evaluation-harness 0.4.12's task configs (`lm_eval/tasks/<name>/*.yaml` and
 * the Python functions they name), one row each, under lm-eval's task names. A row says what the
 * YAML says: the dataset repository and config, the splits, `doc_to_text`, `doc_to_choice`,
 * `doc_to_target`, the delimiters, `process_docs`, the metrics and the version; and the dataset
 * columns it reads, with their types, which are checked on every document. A new task is a new row,
 * typed by its kind: the compiler checks that each function gets a document of the row's columns
 * and returns what the kind needs (a gold index, choices, contexts, a continuation).
 *
 * The splits follow lm-eval's rules (ConfigurableTask in lm_eval/api/task.py): the evaluated split
 * is the test split, else the validation split; demonstrations come from the few-shot split, else
 * the training split, else the validation split, else the test split; and a drawn demonstration
 * equal to the evaluated document is dropped when the few-shot split equals the test split
 * (both unset for PIQA and WinoGrande).
 */
import {
  arcGold,
  logiqaGold,
  logiqaPrompt,
  wikitextDetokenize,
  winograndeContexts,
  winograndeContinuation,
  winograndeGold,
  wsc273Contexts,
  wsc273Continuation,
  wsc273Normalise,
} from './preprocess.js';
import { countSplitAtSpaces, lstrip } from './python-str.js';

/** The harness release whose task definitions these rows copy. */
export const LM_EVAL_VERSION = '0.4.12';

/**
 * Bumped whenever the code that turns a row's documents into prompts changes (this folder's
 * functions), so that results scored by an older definition are not taken for this one's.
 */
export const DEFINITION_REVISION = 1;

/** A column's type: `integer` is any whole number (int32 or int64 in parquet); a record type is a struct. */
export type ColumnType = 'string' | 'integer' | 'string[]' | { readonly [field: string]: ColumnType };
export type Columns = { readonly [column: string]: ColumnType };

type ValueOf<C> = C extends 'string'
  ? string
  : C extends 'integer'
    ? number
    : C extends 'string[]'
      ? string[]
      : C extends { readonly [field: string]: ColumnType }
        ? { [K in keyof C]: ValueOf<C[K]> }
        : never;

/** A document of a dataset with these columns (others may be present too). */
export type DocOf<C extends Columns> = { [K in keyof C]: ValueOf<C[K]> };

interface Common<C extends Columns> {
  /** lm-eval's task name. */
  task: string;
  /** `metadata.version` */
  version: number;
  /** `dataset_path`, and the repositories it has been published under for other 0.4.x releases. */
  repository: string;
  alsoAt?: readonly string[];
  /** `dataset_name` (null: the dataset's default config). */
  config: string | null;
  trainingSplit?: string;
  validationSplit?: string;
  testSplit?: string;
  fewshotSplit?: string;
  /** The columns the functions read, with their types. */
  columns: C;
  processDocs?: (doc: DocOf<C>) => DocOf<C>;
  targetDelimiter: string;
  fewshotDelimiter: string;
  /** `description`, rendered for each evaluated document: the text before its demonstrations (YAML tasks). */
  description?: (doc: DocOf<C>) => string;
  /** What else defines the task, hashed into its identity (a YAML task's resolved config). */
  definition?: unknown;
}

/** One context, several choices (`doc_to_target` an index into `doc_to_choice`). */
interface MultipleChoiceTask<C extends Columns> extends Common<C> {
  kind: 'multiple_choice';
  docToText: (doc: DocOf<C>) => string;
  docToChoice: (doc: DocOf<C>) => string[];
  docToTarget: (doc: DocOf<C>) => number;
  metrics: readonly ('acc' | 'acc_norm')[];
}

/** Partial evaluation: `doc_to_text` is the gold index into the contexts `doc_to_choice` gives, `doc_to_target` the continuation. */
interface PartialTask<C extends Columns> extends Common<C> {
  kind: 'partial';
  docToText: (doc: DocOf<C>) => number;
  docToChoice: (doc: DocOf<C>) => string[];
  docToTarget: (doc: DocOf<C>) => string;
  metrics: readonly 'acc'[];
}

/** A context and its target, scored as written. */
interface LoglikelihoodTask<C extends Columns> extends Common<C> {
  kind: 'loglikelihood';
  docToText: (doc: DocOf<C>) => string;
  docToTarget: (doc: DocOf<C>) => string;
  metrics: readonly ('perplexity' | 'acc')[];
}

/** A whole document (`doc_to_target`); words and bytes counted by `process_results` where the task has its own. */
interface RollingTask<C extends Columns> extends Common<C> {
  kind: 'loglikelihood_rolling';
  docToTarget: (doc: DocOf<C>) => string;
  counts?: (doc: DocOf<C>) => { words: number; bytes: number };
  metrics: readonly ('word_perplexity' | 'byte_perplexity' | 'bits_per_byte')[];
}

/** A context, and the answer greedy generation up to a stop string is compared with. */
interface GenerateTask<C extends Columns> extends Common<C> {
  kind: 'generate_until';
  docToText: (doc: DocOf<C>) => string;
  docToTarget: (doc: DocOf<C>) => string;
  until: readonly string[];
  metrics: readonly 'exact_match'[];
}

export type BuiltinTaskOf<C extends Columns> =
  | MultipleChoiceTask<C>
  | PartialTask<C>
  | LoglikelihoodTask<C>
  | RollingTask<C>
  | GenerateTask<C>;

/** A row with its document type erased, as the loader sees it. */
export type BuiltinTask = BuiltinTaskOf<Columns>;

function row<const C extends Columns>(task: BuiltinTaskOf<C>): BuiltinTask {
  return task as unknown as BuiltinTask;
}

const DEFAULTS = { targetDelimiter: ' ', fewshotDelimiter: '\n\n' } as const;

const ARC_COLUMNS = {
  question: 'string',
  choices: { text: 'string[]', label: 'string[]' },
  answerKey: 'string',
} as const;

function arc(task: string, config: string): BuiltinTask {
  return row({
    task,
    version: 1,
    repository: 'allenai/ai2_arc',
    alsoAt: ['ai2_arc'],
    config,
    trainingSplit: 'train',
    validationSplit: 'validation',
    testSplit: 'test',
    columns: ARC_COLUMNS,
    ...DEFAULTS,
    kind: 'multiple_choice',
    docToText: (d) => `Question: ${d.question}\nAnswer:`,
    docToChoice: (d) => d.choices.text,
    docToTarget: arcGold,
    metrics: ['acc', 'acc_norm'],
  });
}

/** In lm-eval's alphabetical order. */
export const BUILTIN_TASKS: readonly BuiltinTask[] = [
  arc('arc_challenge', 'ARC-Challenge'),
  arc('arc_easy', 'ARC-Easy'),
  row({
    task: 'lambada_openai',
    version: 1,
    repository: 'EleutherAI/lambada_openai',
    config: 'default',
    testSplit: 'test',
    columns: { text: 'string' },
    ...DEFAULTS,
    kind: 'loglikelihood',
    docToText: (d) => d.text.split(' ').slice(0, -1).join(' '),
    docToTarget: (d) => ` ${d.text.split(' ').pop()!}`,
    metrics: ['perplexity', 'acc'],
  }),
  row({
    task: 'logiqa',
    version: 1,
    repository: 'EleutherAI/logiqa',
    config: 'logiqa',
    trainingSplit: 'train',
    validationSplit: 'validation',
    testSplit: 'test',
    columns: { label: 'string', context: 'string', question: 'string', options: 'string[]' },
    ...DEFAULTS,
    kind: 'multiple_choice',
    docToText: logiqaPrompt,
    docToChoice: (d) => d.options,
    docToTarget: logiqaGold,
    metrics: ['acc', 'acc_norm'],
  }),
  row({
    task: 'piqa',
    version: 1,
    repository: 'baber/piqa',
    alsoAt: ['ybisk/piqa', 'piqa'],
    config: null,
    trainingSplit: 'train',
    validationSplit: 'validation',
    columns: { goal: 'string', sol1: 'string', sol2: 'string', label: 'integer' },
    ...DEFAULTS,
    kind: 'multiple_choice',
    docToText: (d) => `Question: ${d.goal}\nAnswer:`,
    docToChoice: (d) => [d.sol1, d.sol2],
    docToTarget: (d) => d.label,
    metrics: ['acc', 'acc_norm'],
  }),
  row({
    task: 'sciq',
    version: 1,
    repository: 'allenai/sciq',
    alsoAt: ['sciq'],
    config: null,
    trainingSplit: 'train',
    validationSplit: 'validation',
    testSplit: 'test',
    columns: {
      question: 'string',
      distractor1: 'string',
      distractor2: 'string',
      distractor3: 'string',
      correct_answer: 'string',
      support: 'string',
    },
    ...DEFAULTS,
    kind: 'multiple_choice',
    docToText: (d) => `${lstrip(d.support)}\nQuestion: ${d.question}\nAnswer:`,
    docToChoice: (d) => [d.distractor1, d.distractor2, d.distractor3, d.correct_answer],
    docToTarget: () => 3,
    metrics: ['acc', 'acc_norm'],
  }),
  row({
    task: 'wikitext',
    version: 2,
    repository: 'EleutherAI/wikitext_document_level',
    config: 'wikitext-2-raw-v1',
    trainingSplit: 'train',
    validationSplit: 'validation',
    testSplit: 'test',
    columns: { page: 'string' },
    ...DEFAULTS,
    kind: 'loglikelihood_rolling',
    docToTarget: (d) => wikitextDetokenize(d.page),
    // Counted on the page before detokenization, as the task's process_results does.
    counts: (d) => ({ words: countSplitAtSpaces(d.page), bytes: Buffer.byteLength(d.page, 'utf8') }),
    metrics: ['word_perplexity', 'byte_perplexity', 'bits_per_byte'],
  }),
  row({
    task: 'winogrande',
    version: 1,
    repository: 'allenai/winogrande',
    alsoAt: ['winogrande'],
    config: 'winogrande_xl',
    trainingSplit: 'train',
    validationSplit: 'validation',
    columns: { sentence: 'string', option1: 'string', option2: 'string', answer: 'string' },
    ...DEFAULTS,
    kind: 'partial',
    docToText: winograndeGold,
    docToChoice: winograndeContexts,
    docToTarget: winograndeContinuation,
    metrics: ['acc'],
  }),
  row({
    task: 'wsc273',
    version: 1,
    // 0.4.12 names `winograd_wsc` (now ErnestSDavis/winograd_wsc, a loading script); later releases the parquet copy.
    repository: 'lighteval/winograd_wsc',
    alsoAt: ['ErnestSDavis/winograd_wsc', 'winograd_wsc'],
    config: 'wsc273',
    testSplit: 'test',
    columns: { text: 'string', pronoun: 'string', pronoun_loc: 'integer', options: 'string[]', label: 'integer' },
    processDocs: wsc273Normalise,
    // lm-eval would turn a rendered target of digits alone into a number; no WSC273 text ends so.
    ...DEFAULTS,
    kind: 'partial',
    docToText: (d) => d.label,
    docToChoice: wsc273Contexts,
    docToTarget: wsc273Continuation,
    metrics: ['acc'],
  }),
];

/** Names that stand for several tasks. */
export const TASK_GROUPS: Readonly<Record<string, readonly string[]>> = {
  /** The Pythia paper's benchmarks (its WikiText perplexity apart). */
  pythia: ['lambada_openai', 'piqa', 'winogrande', 'wsc273', 'arc_easy', 'arc_challenge', 'sciq', 'logiqa'],
};

export function builtinTask(name: string): BuiltinTask | undefined {
  return BUILTIN_TASKS.find((t) => t.task === name);
}

/** The split lm-eval evaluates: test, else validation. */
export function evalSplit(task: BuiltinTask): string {
  const split = task.testSplit ?? task.validationSplit;
  if (split === undefined) throw new Error(`built-in task ${task.task} has neither a test nor a validation split`);
  return split;
}

/** The split lm-eval draws demonstrations from. */
export function fewshotSplit(task: BuiltinTask): string {
  return task.fewshotSplit ?? task.trainingSplit ?? task.validationSplit ?? evalSplit(task);
}

/** Whether lm-eval drops a drawn demonstration equal to the evaluated document (few-shot split == test split, as set in the config). */
export function fewshotExcludesEvalDoc(task: BuiltinTask): boolean {
  return task.fewshotSplit === task.testSplit;
}
