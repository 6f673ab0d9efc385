/**
 * lm-evaluation-harness task configs read from YAML, as its loader reads them
 * (lm_eval/tasks/_yaml_loader.py and _index.py in release 0.4.12): YAML 1.1, `!function
 * module.fn` kept as a reference to the Python function, `include:` (a path or a list of paths
 * relative to the file, whose keys the including file overrides, later includes over earlier
 * ones), and an index of the `--include-path` folders: every `*.yaml` under them, in path order,
 * registering a task under its `task` name, a group under its `group` name (a `task:` list of
 * members), and each of a task's `tag`s as a name for all the tasks that carry it. A later folder's
 * task overrides an earlier one's; within a folder the first wins.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { parse as parseYaml, type ScalarTag } from 'yaml';
import { ConfigError, FormatError } from '../../util/errors.js';

/** A `!function module.fn` in a config: the Python function it names, and the file that names it. */
export class PythonFunction {
  constructor(
    readonly reference: string,
    readonly file: string,
  ) {}

  /** Hashed into a task's identity as written. */
  toJSON(): string {
    return `!function ${this.reference}`;
  }
}

export type Config = Record<string, unknown>;

/** One YAML file's mapping, `!function` tags as PythonFunction; `include:` not yet merged. */
function readYaml(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FormatError(
      path,
      code === 'ENOENT' ? 'task config not found' : `cannot read (${code ?? (e as Error).message})`,
    );
  }
  const functionTag: ScalarTag = {
    tag: '!function',
    resolve: (reference: string) => new PythonFunction(reference, path),
  };
  let value: unknown;
  try {
    value = parseYaml(text, { version: '1.1', customTags: [functionTag] });
  } catch (e) {
    throw new FormatError(path, `not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new FormatError(path, 'expected a mapping of task settings');
  return value as Config;
}

/** A config with its `include:` files merged under it (the file's own keys win). */
export function readConfig(path: string, seen: readonly string[] = []): Config {
  const file = resolve(path);
  if (seen.includes(file))
    throw new ConfigError(`${seen.at(-1)}: include: ${file} includes itself (${[...seen, file].join(' → ')})`);
  const own = readYaml(file);
  if (own.include === undefined) return own;
  const { include, ...rest } = own;
  const paths = Array.isArray(include) ? include : [include];
  const merged: Config = {};
  for (const p of paths) {
    if (typeof p !== 'string' || p === '')
      throw new FormatError(file, `include: expected a file path or a list of them, got ${JSON.stringify(include)}`);
    const target = isAbsolute(p) ? p : join(dirname(file), p);
    if (!existsSync(target)) throw new FormatError(file, `include: ${p}: no such file (looked for ${target})`);
    const { task_list: _, ...included } = readConfig(target, [...seen, file]);
    Object.assign(merged, included);
  }
  return Object.assign(merged, rest);
}

export interface TaskEntry {
  kind: 'task';
  name: string;
  file: string;
  config: Config;
}

export interface GroupEntry {
  kind: 'group';
  name: string;
  file: string;
  config: Config;
}

export interface TagEntry {
  kind: 'tag';
  name: string;
  /** The tasks that carry the tag. */
  tasks: Set<string>;
}

export type Entry = TaskEntry | GroupEntry | TagEntry;

const IGNORED_DIRS = new Set(['__pycache__', '.ipynb_checkpoints']);

function yamlFilesUnder(root: string): string[] {
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .map((name) => name.split(sep).join('/'))
    .filter((name) => name.endsWith('.yaml') && !name.split('/').some((part) => IGNORED_DIRS.has(part)))
    .map((name) => join(root, name))
    .filter((path) => statSync(path).isFile())
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function namesOf(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  return (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string');
}

/** The tasks, groups and tags of the `--include-path` folders. */
export function indexIncludePaths(dirs: readonly string[]): Map<string, Entry> {
  const index = new Map<string, Entry>();
  for (const dir of dirs) {
    if (!existsSync(dir) || !statSync(dir).isDirectory())
      throw new ConfigError(`--include-path: ${dir} is not a folder`);
    const own = new Map<string, Entry>();
    for (const file of yamlFilesUnder(dir)) {
      const config = readConfig(file);
      const tagAlso: string[] = [];
      if (typeof config.group === 'string' && Array.isArray(config.task)) {
        if (!own.has(config.group)) own.set(config.group, { kind: 'group', name: config.group, file, config });
        continue;
      }
      // A task naming a `group` of its own (lm-eval's older spelling of `tag`) is tagged with it.
      if (typeof config.task !== 'string') continue;
      tagAlso.push(...namesOf(config.group));
      const name = config.task;
      if (own.get(name)?.kind === 'task') continue;
      own.set(name, { kind: 'task', name, file, config });
      for (const tag of [...namesOf(config.tag), ...tagAlso]) {
        let entry = own.get(tag);
        if (entry === undefined) {
          entry = { kind: 'tag', name: tag, tasks: new Set() };
          own.set(tag, entry);
        }
        if (entry.kind === 'tag') entry.tasks.add(name);
      }
    }
    for (const [name, entry] of own) {
      const earlier = index.get(name);
      if (entry.kind === 'tag' && earlier?.kind === 'tag') for (const t of earlier.tasks) entry.tasks.add(t);
      index.set(name, entry);
    }
  }
  return index;
}

/** Keys of a group config; any other is an override of its members' settings, which is not supported. */
const GROUP_KEYS = new Set(['group', 'group_alias', 'task', 'tag', 'aggregate_metric_list', 'metadata']);

/**
 * The tasks a name selects in the index: a task itself; a tag's tasks, sorted by name; a group's
 * members in order, each a name resolved the same way (or by `outside`, for names the index does
 * not hold, such as built-in tasks). Undefined where the index does not hold the name.
 */
export function selectTasks(
  name: string,
  index: ReadonlyMap<string, Entry>,
  outside: (name: string, group: GroupEntry) => string[],
  within: readonly string[] = [],
): (TaskEntry | string)[] | undefined {
  const entry = index.get(name);
  if (!entry) return undefined;
  if (entry.kind === 'task') return [entry];
  if (entry.kind === 'tag') return [...entry.tasks].sort().map((t) => index.get(t) as TaskEntry);
  if (within.includes(name))
    throw new ConfigError(`${entry.file}: group ${name} contains itself (${[...within, name].join(' → ')})`);
  for (const key of Object.keys(entry.config))
    if (!GROUP_KEYS.has(key))
      throw new ConfigError(
        `${entry.file}: ${key}: a group's settings for its members are not supported (give them in each task's YAML)`,
      );
  const selected: (TaskEntry | string)[] = [];
  for (const member of entry.config.task as unknown[]) {
    if (typeof member !== 'string')
      throw new ConfigError(
        `${entry.file}: task: ${JSON.stringify(member)}: members with settings of their own are not supported (expected task, tag or group names)`,
      );
    selected.push(...(selectTasks(member, index, outside, [...within, name]) ?? outside(member, entry)));
  }
  return selected;
}
