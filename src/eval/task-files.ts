/**
 * Finding task files: `--tasks` takes paths (anything ending in `.jsonl` or naming an existing
 * file) and names, looked up as `<name>.jsonl` in the task folders (`--task-dir`, else the `tasks/`
 * folder of the corpus a suite was trained on, as `pythia synth` lays it out).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { readSuiteManifest, SUITE_MANIFEST } from '../train/run-folder.js';
import { ConfigError, FormatError } from '../util/errors.js';
import { locateRecorded } from '../util/recorded-path.js';

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
