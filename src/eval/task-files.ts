/**
 * Finding tasks: `--tasks` takes paths (anything ending in `.jsonl` or `.yaml`, or naming an
 * existing file) and names, looked up as `<name>.jsonl` in the task folders (`--task-dir`, else
 * the `tasks/` folder of the corpus a suite was trained on, as `pythia synth` lays it out), then
 * among the tasks, tags and groups of lm-evaluation-harness YAML configs in `--include-path`
 * folders, else among the built-in tasks (lm-evaluation-harness's names, and the group `pythia`).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { readSuiteManifest, SUITE_MANIFEST } from '../train/run-folder.js';
import { ConfigError, FormatError } from '../util/errors.js';
import { locateRecorded } from '../util/recorded-path.js';
import type { DatasetLookup } from './hub-datasets.js';
import { loadBuiltinTask } from './lm-eval/load.js';
import { BUILTIN_TASKS, builtinTask, TASK_GROUPS } from './lm-eval/tasks.js';
import { type Entry, indexIncludePaths, selectTasks, type TaskEntry } from './lm-eval/yaml-config.js';
import { loadYamlTask, taskEntryOf } from './lm-eval/yaml-task.js';
import { type OutputType, readTask, type Task } from './tasks.js';

export function tasksIn(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .sort()
    .map((f) => join(dir, f));
}

/**
 * The `tasks/` folder beside the data a suite was trained on (`<corpus>/data/<name>` →
 * `<corpus>/tasks/`), from suite.json's data prefix: relative to suite.json, else where it was
 * written. Older versions recorded the prefix as typed, relative to the directory `pythia suite`
 * ran in, which cannot be known here: where only that reading finds a task folder, it is refused.
 */
export function suiteTaskDir(suiteDir: string): string | undefined {
  const manifest = join(suiteDir, SUITE_MANIFEST);
  const data = readSuiteManifest(suiteDir)?.data;
  if (data === undefined) return undefined;
  const absolute = data.absolutePrefix;
  const tasksBeside = (prefix: string): string => join(dirname(dirname(prefix)), 'tasks');
  const isFolder = (dir: string): boolean => existsSync(dir) && statSync(dir).isDirectory();
  const located = locateRecorded(suiteDir, data.prefix, absolute, (p) => isFolder(tasksBeside(p)));
  if (located.found) return tasksBeside(located.path);
  if (absolute === undefined && !isAbsolute(data.prefix) && isFolder(tasksBeside(resolve(data.prefix))))
    throw new FormatError(
      manifest,
      `data.prefix: ${data.prefix}: no corpus at ${located.path} (relative to suite.json); ${resolve(data.prefix)} ` +
        '(relative to this directory, as older versions recorded it) may be another one: pass --task-dir',
    );
  return undefined;
}

export function resolveTaskPaths(specs: readonly string[] | undefined, taskDirs: readonly string[]): string[] {
  const available = taskDirs.flatMap(tasksIn);
  if (!specs || specs.length === 0) {
    if (available.length === 0) {
      throw new ConfigError(
        `no tasks: pass --tasks <files or names>${taskDirs.length > 0 ? ` (no .jsonl files in ${taskDirs.join(', ')})` : ''}`,
      );
    }
    return available;
  }
  return specs.map((spec) => {
    if (spec.endsWith('.jsonl') || existsSync(spec)) return spec;
    const found = available.find((p) => p.endsWith(`/${spec}.jsonl`));
    if (found) return found;
    const names = available.map((p) => p.slice(p.lastIndexOf('/') + 1, -'.jsonl'.length));
    const where =
      taskDirs.length > 0 ? ` in ${taskDirs.join(', ')}` : ' (no task folder: pass --task-dir or a file path)';
    throw new ConfigError(
      `--tasks: unknown task "${spec}"${where}${names.length > 0 ? `; known: ${names.join(', ')}` : ''}`,
    );
  });
}

export interface TaskLookup extends DatasetLookup {
  /** The kind of task-file lines that lack `output_type`. */
  outputType?: OutputType;
  /** Folders of lm-evaluation-harness YAML task configs (`--include-path`). */
  includePath?: readonly string[];
}

/** The order a `--tasks` entry resolves in, for help texts. */
export const TASK_RESOLUTION =
  "a path (.jsonl, or an lm-eval .yaml task config), then a task in --task-dir or the suite's task folder, then a task, tag or group of the --include-path YAML configs, then a built-in task (lm-eval's name, or pythia for the paper's eight)";

/**
 * The tasks `--tasks` names, read: a path (`.jsonl`, or any existing file) is a task file, a
 * `.yaml`/`.yml` path an lm-eval task config; a name is a task file in the task folders, else a
 * task, tag or group of the `--include-path` configs, else a built-in task or group (each task
 * once, by name). Without `--tasks`, every task file in the task folders.
 */
export async function loadTasks(
  specs: readonly string[] | undefined,
  taskDirs: readonly string[],
  lookup: TaskLookup = {},
): Promise<Task[]> {
  const available = taskDirs.flatMap(tasksIn);
  if (!specs || specs.length === 0) return resolveTaskPaths(specs, taskDirs).map((p) => readTask(p, lookup.outputType));
  const tasks: Task[] = [];
  const named = new Set<string>();
  let index: Map<string, Entry> | undefined;
  const includeIndex = () => (index ??= indexIncludePaths(lookup.includePath ?? []));
  const add = async (name: string, load: () => Promise<Task>) => {
    if (named.has(name)) return;
    named.add(name);
    tasks.push(await load());
  };
  const builtinNames = (spec: string): readonly string[] | undefined =>
    TASK_GROUPS[spec] ?? (builtinTask(spec) ? [spec] : undefined);
  const addSelected = async (selected: readonly (TaskEntry | string)[]) => {
    for (const t of selected)
      if (typeof t === 'string') await add(t, () => loadBuiltinTask(t, lookup));
      else await add(t.name, () => loadYamlTask(t, lookup));
  };
  const outside = (name: string, group: { file: string }): string[] => {
    const names = builtinNames(name);
    if (!names)
      throw new ConfigError(`${group.file}: task: ${name} is neither an --include-path task nor a built-in one`);
    return [...names];
  };
  for (const spec of specs) {
    if (/\.ya?ml$/.test(spec)) {
      const entry = taskEntryOf(spec);
      await add(entry.name, () => loadYamlTask(entry, lookup));
      continue;
    }
    if (spec.endsWith('.jsonl') || existsSync(spec)) {
      tasks.push(readTask(spec, lookup.outputType));
      continue;
    }
    const file = available.find((p) => p.endsWith(`/${spec}.jsonl`));
    if (file) {
      tasks.push(readTask(file, lookup.outputType));
      continue;
    }
    const selected = lookup.includePath?.length ? selectTasks(spec, includeIndex(), outside) : undefined;
    if (selected) {
      await addSelected(selected);
      continue;
    }
    const names = builtinNames(spec);
    if (!names) throw unknownTask(spec, taskDirs, available, lookup.includePath ?? []);
    await addSelected(names);
  }
  return tasks;
}

function unknownTask(
  spec: string,
  taskDirs: readonly string[],
  available: readonly string[],
  includePath: readonly string[],
): ConfigError {
  const files = available.map((p) => p.slice(p.lastIndexOf('/') + 1, -'.jsonl'.length));
  const builtIn = `the built-in tasks (${[...BUILTIN_TASKS.map((t) => t.task), ...Object.keys(TASK_GROUPS)].join(', ')})`;
  const included = includePath.length > 0 ? `, the YAML configs in ${includePath.join(', ')}` : '';
  const where =
    taskDirs.length > 0
      ? `${builtIn}${included} and in ${taskDirs.join(', ')}`
      : `${builtIn}${included} (no task folder: pass --task-dir or a file path)`;
  return new ConfigError(
    `--tasks: unknown task "${spec}" in ${where}${files.length > 0 ? `; known: ${files.join(', ')}` : ''}`,
  );
}
