/** A built-in task by name: its dataset found offline (src/eval/hub-datasets.ts), read, and built. */
import { ConfigError } from '../../util/errors.js';
import { type DatasetLookup, locateDataset, readSplit } from '../hub-datasets.js';
import type { Task } from '../tasks.js';
import { buildTask, takesDemonstrations } from './build.js';
import { BUILTIN_TASKS, builtinTask, evalSplit, fewshotSplit } from './tasks.js';

export async function loadBuiltinTask(name: string, lookup: DatasetLookup = {}): Promise<Task> {
  const def = builtinTask(name);
  if (!def)
    throw new ConfigError(`${name}: not a built-in task (built in: ${BUILTIN_TASKS.map((t) => t.task).join(', ')})`);
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
    def,
    { repository: found.repository, config: found.config, revision: found.revision, dir: found.dir },
    evalDocs,
    fewshotDocs,
  );
}
