/**
 * A built-in task from its dataset's documents: each document's columns checked against the row's
 * types, `process_docs` applied, and the row's functions turning it into an item (its id the
 * document's index, lm-eval's doc_id; its metadata the processed document). The task's identity is
 * a hash of its definition (harness release, name, version, definition revision, splits,
 * delimiters, metrics) and of the dataset files the documents came from.
 */
import { createHash } from 'node:crypto';
import { DataError, FormatError } from '../../util/errors.js';
import type { HarnessFewshot, Task, TaskItem } from '../tasks.js';
import {
  type BuiltinTask,
  type Columns,
  type ColumnType,
  DEFINITION_REVISION,
  type DocOf,
  evalSplit,
  fewshotExcludesEvalDoc,
  fewshotSplit,
  LM_EVAL_VERSION,
} from './tasks.js';

export type Doc = Record<string, unknown>;

/** One split's documents, in dataset order, and where each came from. */
export interface SplitDocs {
  split: string;
  docs: readonly Doc[];
  /** The file and 0-based row of each document. */
  origins: readonly { file: string; row: number }[];
  /** The files read, in order, with the sha256 of their bytes. */
  files: readonly { name: string; sha256: string }[];
}

/** Where a dataset was found. */
export interface DatasetSource {
  repository: string;
  config: string;
  /** The commit of the snapshot the files came from, where known (the hub cache). */
  revision: string | null;
  /** The folder the files were read from. */
  dir: string;
}

function describe(v: unknown): string {
  return v === undefined ? 'nothing' : JSON.stringify(v);
}

/** A document's value against a column type; a message saying what was expected, or undefined. */
function mismatch(type: ColumnType, value: unknown, name: string): string | undefined {
  if (type === 'string')
    return typeof value === 'string' ? undefined : `${name}: expected a string, got ${describe(value)}`;
  if (type === 'integer')
    return Number.isSafeInteger(value) ? undefined : `${name}: expected an integer, got ${describe(value)}`;
  if (type === 'string[]')
    return Array.isArray(value) && value.every((s) => typeof s === 'string')
      ? undefined
      : `${name}: expected a list of strings, got ${describe(value)}`;
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return `${name}: expected a struct of ${Object.keys(type).join(', ')}, got ${describe(value)}`;
  for (const [field, fieldType] of Object.entries(type)) {
    const problem = mismatch(fieldType, (value as Doc)[field], `${name}.${field}`);
    if (problem) return problem;
  }
  return undefined;
}

function toItem(task: BuiltinTask, doc: DocOf<Columns>, id: string): TaskItem {
  const meta: Doc = doc;
  switch (task.kind) {
    case 'multiple_choice': {
      const choices = task.docToChoice(doc);
      const gold = task.docToTarget(doc);
      if (!(Number.isInteger(gold) && gold >= 0 && gold < choices.length))
        throw new DataError(`gold: ${gold} is out of range for ${choices.length} choices`);
      return {
        kind: 'multiple_choice',
        id,
        meta,
        context: task.docToText(doc),
        choices,
        gold,
        targetDelimiter: task.targetDelimiter,
      };
    }
    case 'partial': {
      const contexts = task.docToChoice(doc);
      const gold = task.docToText(doc);
      if (!(Number.isInteger(gold) && gold >= 0 && gold < contexts.length))
        throw new DataError(`gold: ${gold} is out of range for ${contexts.length} contexts`);
      return {
        kind: 'partial',
        id,
        meta,
        contexts,
        continuation: task.docToTarget(doc),
        gold,
        targetDelimiter: task.targetDelimiter,
      };
    }
    case 'loglikelihood':
      return { kind: 'loglikelihood', id, meta, context: task.docToText(doc), target: task.docToTarget(doc) };
    case 'generate_until':
      return {
        kind: 'generate_until',
        id,
        meta,
        context: task.docToText(doc),
        answer: task.docToTarget(doc),
        until: [...task.until],
        exactAsWritten: true,
      };
    case 'loglikelihood_rolling': {
      const item: TaskItem = { kind: 'loglikelihood_rolling', id, meta, text: task.docToTarget(doc) };
      return task.counts ? { ...item, counts: task.counts(doc) } : item;
    }
  }
}

/** The split's documents as items; a bad document is a one-line error naming its file and row. */
export function splitItems(task: BuiltinTask, split: SplitDocs): TaskItem[] {
  return split.docs.map((raw, i) => {
    const { file, row } = split.origins[i]!;
    try {
      for (const [column, type] of Object.entries(task.columns)) {
        const problem = mismatch(type, raw[column], column);
        if (problem) throw new DataError(problem);
      }
      // Checked above: the row's columns have the row's types.
      const checked = raw as DocOf<Columns>;
      return toItem(task, task.processDocs ? task.processDocs(checked) : checked, String(i));
    } catch (e) {
      if (!(e instanceof DataError)) throw e;
      throw new FormatError(file, `row ${row}: ${e.message} (task ${task.task}, ${split.split} split)`);
    }
  });
}

/** sha256 of the definition and the dataset files. */
export function builtinTaskHash(task: BuiltinTask, source: DatasetSource, splits: readonly SplitDocs[]): string {
  const identity = {
    harness: `lm-evaluation-harness ${LM_EVAL_VERSION}`,
    task: task.task,
    version: task.version,
    definitionRevision: DEFINITION_REVISION,
    kind: task.kind,
    evalSplit: evalSplit(task),
    fewshotSplit: fewshotSplit(task),
    fewshotExcludesEvalDoc: fewshotExcludesEvalDoc(task),
    targetDelimiter: task.targetDelimiter,
    fewshotDelimiter: task.fewshotDelimiter,
    metrics: task.metrics,
    definition: task.definition,
    dataset: { repository: source.repository, config: source.config, revision: source.revision },
    files: splits.map((s) => ({ split: s.split, files: s.files })),
  };
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex');
}

/** Whether a task draws demonstrations at all (rolling log-likelihood takes none, so its few-shot split is never read). */
export function takesDemonstrations(task: BuiltinTask): boolean {
  return task.kind !== 'loglikelihood_rolling';
}

/**
 * The task: the evaluated split's items, and the few-shot split's as its demonstration pool
 * (absent for a task that takes no demonstrations; a few-shot split that is the evaluated one is
 * read once, from `evalDocs`).
 */
export function buildTask(
  task: BuiltinTask,
  source: DatasetSource,
  evalDocs: SplitDocs,
  fewshotDocs?: SplitDocs,
): Task {
  const items = splitItems(task, evalDocs);
  const sameSplit = !fewshotDocs || fewshotDocs.split === evalDocs.split;
  const built: Task = {
    name: task.task,
    path: source.dir,
    outputType: task.kind === 'partial' ? 'multiple_choice' : task.kind,
    items,
    sha256: builtinTaskHash(task, source, sameSplit ? [evalDocs] : [evalDocs, fewshotDocs]),
    metrics: task.metrics,
  };
  if (!takesDemonstrations(task)) return built;
  if (!fewshotDocs) throw new Error(`buildTask: task ${task.task} needs its few-shot split`);
  const fewshot: HarnessFewshot = {
    pool: sameSplit ? items : splitItems(task, fewshotDocs),
    excludeEvalDoc: fewshotExcludesEvalDoc(task),
    targetDelimiter: task.targetDelimiter,
    fewshotDelimiter: task.fewshotDelimiter,
    ...(task.description ? { description: task.description as (doc: Doc) => string } : {}),
  };
  return { ...built, fewshot };
}
