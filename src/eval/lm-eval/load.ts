/** A built-in task by name: its dataset found offline (src/eval/hub-datasets.ts), read, and built. */
import { ConfigError } from '../../util/errors.js';
import { type DatasetLookup, locateDataset, readSplit } from '../hub-datasets.js';
import type { Task } from '../tasks.js';
import { buildTask, type SplitDocs, takesDemonstrations } from './build.js';
import { BUILTIN_TASKS, type BuiltinTask, builtinTask, evalSplit, fewshotSplit } from './tasks.js';

export async function loadBuiltinTask(name: string, lookup: DatasetLookup = {}): Promise<Task> {
  const def = builtinTask(name);
  if (!def)
    throw new ConfigError(`${name}: not a built-in task (built in: ${BUILTIN_TASKS.map((t) => t.task).join(', ')})`);
  return loadTaskRow(def, lookup);
}

/**
 * A task row's dataset, read: the evaluated split, and the few-shot split where the task takes
 * demonstrations and it is another split. `define` turns the evaluated split's documents into the
 * row (a YAML task's row depends on the dataset's columns); a built-in row is fixed.
 */
export async function loadTaskRow(
  def: BuiltinTask,
  lookup: DatasetLookup,
  define: (evalDocs: SplitDocs) => BuiltinTask = () => def,
): Promise<Task> {
  const evaluated = evalSplit(def);
  const fewshot = takesDemonstrations(def) ? fewshotSplit(def) : undefined;
  const found = locateDataset(
    {
      repository: def.repository,
      alsoAt: def.alsoAt,
      config: def.config,
      splits: fewshot === undefined || fewshot === evaluated ? [evaluated] : [evaluated, fewshot],
    },
    lookup,
  );
  const evalDocs = await readSplit(evaluated, found.splits.get(evaluated)!);
  const fewshotDocs =
    fewshot === undefined
      ? undefined
      : fewshot === evaluated
        ? evalDocs
        : await readSplit(fewshot, found.splits.get(fewshot)!);
  return buildTask(
    define(evalDocs),
    { repository: found.repository, config: found.config, revision: found.revision, dir: found.dir },
    evalDocs,
    fewshotDocs,
  );
}
