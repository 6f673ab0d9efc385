/**
 * Finding task files: `--tasks` takes paths (anything ending in `.jsonl` or naming an existing
 * file) and names, looked up as `<name>.jsonl` in the task folders (`--task-dir`, else the `tasks/`
 * folder of the corpus a suite was trained on, as `pythia synth` lays it out).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError } from '../util/errors.js';

export function tasksIn(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .sort()
    .map((f) => join(dir, f));
}

/** The `tasks/` folder beside the data a suite was trained on (suite.json's data prefix), if any. */
export function suiteTaskDir(suiteDir: string): string | undefined {
  const manifest = join(suiteDir, 'suite.json');
  if (!existsSync(manifest)) return undefined;
  try {
    const prefix = (JSON.parse(readFileSync(manifest, 'utf8')) as { data?: { prefix?: unknown } }).data?.prefix;
    if (typeof prefix !== 'string') return undefined;
    const dir = join(dirname(dirname(prefix)), 'tasks');
    return existsSync(dir) ? dir : undefined;
  } catch {
    return undefined;
  }
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
