/**
 * A task from an lm-evaluation-harness YAML config, evaluated as ConfigurableTask
 * (lm_eval/api/task.py, release 0.4.12) evaluates it, for the output types we score
 * (multiple_choice, loglikelihood, loglikelihood_rolling, generate_until). The config becomes a
 * task row like a built-in one (src/eval/lm-eval/tasks.ts) and is built the same way; its identity
 * is the resolved config (includes merged) and the dataset files' hashes.
 *
 * `doc_to_text`, `doc_to_target` and `doc_to_choice` read as lm-eval reads them: an integer is
 * itself; a string naming a column of the evaluated split is that column; any other string is a
 * Jinja template (src/eval/lm-eval/jinja.ts), whose text is an integer where it is digits alone
 * and the task has choices, a list where `doc_to_choice` renders one (or `doc_to_target` one in
 * brackets); a list (or a mapping's values) is itself. A multiple-choice task whose `doc_to_text`
 * is an integer is partial evaluation (WinoGrande's shape). `!function module.fn` is accepted for
 * the functions lm-eval's own configs name that we have ported (src/eval/lm-eval/preprocess.ts);
 * any other is a one-line error. Every setting that would change the numbers and is not supported
 * (filters, a prompt library, a few-shot config of its own...) is refused rather than ignored.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError, DataError } from '../../util/errors.js';
import type { DatasetLookup } from '../hub-datasets.js';
import type { Task } from '../tasks.js';
import type { Doc, SplitDocs } from './build.js';
import { compileTemplate } from './jinja.js';
import { loadTaskRow } from './load.js';
import {
  type LogiqaDoc,
  logiqaGold,
  logiqaPrompt,
  type WinograndeDoc,
  type Wsc273Doc,
  wikitextDetokenize,
  winograndeContexts,
  winograndeContinuation,
  winograndeGold,
  wsc273Normalise,
} from './preprocess.js';
import { literalEval } from './python-literal.js';
import { countSplitAtSpaces } from './python-str.js';
import type { BuiltinTask, Columns } from './tasks.js';
import { type Config, PythonFunction, readConfig, type TaskEntry } from './yaml-config.js';

/** A Python function of lm-eval 0.4.12's task folders that we have ported, and the key it serves. */
interface KnownFunction {
  /** `module.fn` as configs name it. */
  reference: string;
  key: 'process_docs' | 'doc_to_text' | 'doc_to_target' | 'doc_to_choice' | 'process_results';
  /** Where lm-eval 0.4.12 defines it, and the sha256 of that file. */
  source: string;
  sha256: string;
  columns: Columns;
  fn: (doc: never) => unknown;
}

const WSC273 = {
  source: 'lm_eval/tasks/wsc273/utils.py',
  sha256: '2c295d37e8d75f58a5ce948839d20cb9971d1c0d7627878291bebd4584c63507',
  columns: { text: 'string', pronoun: 'string', pronoun_loc: 'integer', options: 'string[]', label: 'integer' },
} as const;
const WINOGRANDE = {
  source: 'lm_eval/tasks/winogrande/preprocess_winogrande.py',
  sha256: 'e55327629264a98f1d383fda24645b6779afb53fa0bce2150042b9416b1ae006',
  columns: { sentence: 'string', option1: 'string', option2: 'string', answer: 'string' },
} as const;
const LOGIQA = {
  source: 'lm_eval/tasks/logiqa/utils_logiqa.py',
  sha256: '46399f40065469d234c0c9e1ef3de9b67e50d5fe1c2c4130607eda2dda268260',
  columns: { label: 'string', context: 'string', question: 'string', options: 'string[]' },
} as const;
const WIKITEXT = {
  source: 'lm_eval/tasks/wikitext/preprocess_wikitext.py',
  sha256: 'a44020374b172159bf5be80a64d2c4194c9d5c77284f696ac666361338c8da7d',
  columns: { page: 'string' },
} as const;

export const KNOWN_FUNCTIONS: readonly KnownFunction[] = [
  { reference: 'utils.process_doc', key: 'process_docs', ...WSC273, fn: (d: Wsc273Doc) => wsc273Normalise(d) },
  {
    reference: 'preprocess_winogrande.doc_to_text',
    key: 'doc_to_text',
    ...WINOGRANDE,
    fn: (d: WinograndeDoc) => winograndeGold(d),
  },
  {
    reference: 'preprocess_winogrande.doc_to_target',
    key: 'doc_to_target',
    ...WINOGRANDE,
    fn: (d: WinograndeDoc) => winograndeContinuation(d),
  },
  {
    reference: 'preprocess_winogrande.doc_to_choice',
    key: 'doc_to_choice',
    ...WINOGRANDE,
    fn: (d: WinograndeDoc) => winograndeContexts(d),
  },
  { reference: 'utils_logiqa.doc_to_text', key: 'doc_to_text', ...LOGIQA, fn: (d: LogiqaDoc) => logiqaPrompt(d) },
  { reference: 'utils_logiqa.doc_to_target', key: 'doc_to_target', ...LOGIQA, fn: (d: LogiqaDoc) => logiqaGold(d) },
  {
    reference: 'preprocess_wikitext.wikitext_detokenizer',
    key: 'doc_to_target',
    ...WIKITEXT,
    fn: (d: { page: string }) => wikitextDetokenize(d.page),
  },
  {
    reference: 'preprocess_wikitext.process_results',
    key: 'process_results',
    ...WIKITEXT,
    fn: (d: { page: string }) => ({ words: countSplitAtSpaces(d.page), bytes: Buffer.byteLength(d.page, 'utf8') }),
  },
];

/** The port of a `!function`; a one-line ConfigError naming the file, the key and the function where there is none. */
function knownFunction(file: string, key: string, f: PythonFunction): KnownFunction {
  const known = KNOWN_FUNCTIONS.find((k) => k.reference === f.reference && k.key === key);
  const where = `${f.file === file ? file : `${file} (from ${f.file})`}: ${key}: !function ${f.reference}`;
  if (!known) {
    const ported = KNOWN_FUNCTIONS.filter((k) => k.key === key).map((k) => k.reference);
    throw new ConfigError(
      `${where}: a Python function that is not built in (for ${key}: ${ported.length > 0 ? ported.join(', ') : 'none'})`,
    );
  }
  // lm-eval imports the module beside the YAML first: where one is there, it must be the file we ported.
  const module = join(dirname(f.file), `${f.reference.slice(0, f.reference.lastIndexOf('.')).replaceAll('.', '/')}.py`);
  if (existsSync(module)) {
    const sha256 = createHash('sha256').update(readFileSync(module)).digest('hex');
    if (sha256 !== known.sha256)
      throw new ConfigError(`${where}: ${module} is not lm-eval 0.4.12's ${known.source}, whose function is built in`);
  }
  return known;
}

const OUTPUT_TYPES = ['multiple_choice', 'loglikelihood', 'loglikelihood_rolling', 'generate_until'] as const;
type YamlOutputType = (typeof OUTPUT_TYPES)[number];

/** lm-eval's metrics per output type (its DEFAULT_METRIC_REGISTRY), and each one's own aggregation. */
const METRICS: Record<YamlOutputType, Record<string, string>> = {
  multiple_choice: { acc: 'mean', acc_norm: 'mean' },
  loglikelihood: { perplexity: 'perplexity', acc: 'mean' },
  loglikelihood_rolling: {
    word_perplexity: 'weighted_perplexity',
    byte_perplexity: 'weighted_perplexity',
    bits_per_byte: 'bits_per_byte',
  },
  generate_until: { exact_match: 'mean' },
};

/** Settings read; settings that do not change what is scored (decontamination, aliases, metadata). */
const READ = new Set([
  'task',
  'task_alias',
  'tag',
  'group',
  'dataset_path',
  'dataset_name',
  'dataset_kwargs',
  'training_split',
  'validation_split',
  'test_split',
  'fewshot_split',
  'process_docs',
  'doc_to_text',
  'doc_to_target',
  'doc_to_choice',
  'process_results',
  'description',
  'target_delimiter',
  'fewshot_delimiter',
  'num_fewshot',
  'metric_list',
  'output_type',
  'generation_kwargs',
  'repeats',
  'should_decontaminate',
  'doc_to_decontamination_query',
  'metadata',
  // lm-eval 0.4.12 drops it from a task's config.
  'task_list',
]);
/** lm-eval settings that change what is scored, which we do not support. */
const UNSUPPORTED = new Set([
  'custom_dataset',
  'doc_to_image',
  'doc_to_audio',
  'unsafe_code',
  'use_prompt',
  'fewshot_config',
  'filter_list',
  'gen_prefix',
  'class',
]);

/** The YAML's settings, checked: the task's splits, delimiters, metrics and functions, before any data is read. */
interface Settings {
  file: string;
  config: Config;
  name: string;
  outputType: YamlOutputType;
  str(key: string, fallback?: string): string | undefined;
}

function settingsOf(entry: TaskEntry): Settings {
  const { file, config } = entry;
  for (const key of Object.keys(config)) {
    if (UNSUPPORTED.has(key) && config[key] !== null && config[key] !== undefined)
      throw new ConfigError(
        `${file}: ${key}: not supported (only the task settings lm-eval's built-in task configs use are)`,
      );
    if (!READ.has(key) && !UNSUPPORTED.has(key)) throw new ConfigError(`${file}: ${key}: not an lm-eval task setting`);
  }
  const str = (key: string, fallback?: string): string | undefined => {
    const v = config[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string') throw new ConfigError(`${file}: ${key}: expected a string, got ${JSON.stringify(v)}`);
    return v;
  };
  const outputType = str('output_type', 'generate_until')!;
  if (!(OUTPUT_TYPES as readonly string[]).includes(outputType))
    throw new ConfigError(
      `${file}: output_type: ${outputType} is not supported (expected one of ${OUTPUT_TYPES.join(', ')})`,
    );
  const repeats = config.repeats ?? 1;
  if (repeats !== 1) throw new ConfigError(`${file}: repeats: only 1 is supported, got ${JSON.stringify(repeats)}`);
  const kwargs = config.dataset_kwargs;
  if (kwargs !== undefined && kwargs !== null) {
    const keys = typeof kwargs === 'object' ? Object.keys(kwargs).filter((k) => k !== 'trust_remote_code') : ['?'];
    if (keys.length > 0)
      throw new ConfigError(`${file}: dataset_kwargs: ${keys.join(', ')} not supported (only trust_remote_code)`);
  }
  const shots = config.num_fewshot;
  if (shots !== undefined && shots !== null && !(Number.isInteger(shots) && (shots as number) >= 0))
    throw new ConfigError(`${file}: num_fewshot: expected a whole number, got ${JSON.stringify(shots)}`);
  return { file, config, name: entry.name, outputType: outputType as YamlOutputType, str };
}

function metricsOf(s: Settings, partial: boolean): string[] {
  const allowed = METRICS[s.outputType];
  const list = s.config.metric_list;
  if (list === undefined || list === null) return partial ? ['acc'] : Object.keys(allowed);
  if (!Array.isArray(list)) throw new ConfigError(`${s.file}: metric_list: expected a list of {metric: name} entries`);
  return list.map((m, i) => {
    const where = `${s.file}: metric_list[${i}]`;
    if (m === null || typeof m !== 'object' || typeof (m as Config).metric !== 'string')
      throw new ConfigError(`${where}: expected {metric: name}, got ${JSON.stringify(m)}`);
    const { metric, aggregation, higher_is_better: _, ...rest } = m as Config;
    const name = metric as string;
    if (!(name in allowed) || (partial && name !== 'acc'))
      throw new ConfigError(
        `${where}: metric ${name} is not supported for ${partial ? 'partial evaluation' : s.outputType} (expected ${partial ? 'acc' : Object.keys(allowed).join(', ')})`,
      );
    if (aggregation !== undefined && aggregation !== allowed[name])
      throw new ConfigError(
        `${where}: aggregation ${JSON.stringify(aggregation)} is not supported for ${name} (expected ${allowed[name]})`,
      );
    const options = Object.keys(rest);
    if (options.length > 0) throw new ConfigError(`${where}: ${options.join(', ')}: metric options are not supported`);
    return name;
  });
}

function untilOf(s: Settings, fewshotDelimiter: string): string[] {
  const kwargs = s.config.generation_kwargs;
  if (kwargs === undefined || kwargs === null) return [fewshotDelimiter];
  if (typeof kwargs !== 'object' || Array.isArray(kwargs))
    throw new ConfigError(`${s.file}: generation_kwargs: expected a mapping`);
  const { until, do_sample, temperature, max_gen_toks: _, ...rest } = kwargs as Config;
  const others = Object.keys(rest);
  if (others.length > 0)
    throw new ConfigError(`${s.file}: generation_kwargs: ${others.join(', ')} not supported (generation is greedy)`);
  if ((do_sample !== undefined && do_sample !== false) || (temperature !== undefined && temperature !== 0))
    throw new ConfigError(
      `${s.file}: generation_kwargs: only greedy generation is supported (do_sample: false, temperature: 0)`,
    );
  if (until === undefined) return [fewshotDelimiter];
  const list = typeof until === 'string' ? [until] : until;
  if (!Array.isArray(list) || list.length === 0 || !list.every((u) => typeof u === 'string' && u !== ''))
    throw new ConfigError(`${s.file}: generation_kwargs.until: expected a non-empty stop string or a list of them`);
  return list as string[];
}

const DIGITS = /^[0-9]+$/;

/** A doc_to_* setting as a function of the document, read as lm-eval reads it. */
function field(
  s: Settings,
  key: 'doc_to_text' | 'doc_to_target' | 'doc_to_choice',
  features: ReadonlySet<string>,
  functions: KnownFunction[],
): ((doc: Doc) => unknown) | undefined {
  const spec = s.config[key];
  const hasChoices = s.config.doc_to_choice !== undefined && s.config.doc_to_choice !== null;
  if (spec === undefined || spec === null) return undefined;
  if (spec instanceof PythonFunction) {
    const known = knownFunction(s.file, key, spec);
    functions.push(known);
    return known.fn as (doc: Doc) => unknown;
  }
  if (typeof spec === 'number') {
    if (!Number.isInteger(spec) || key === 'doc_to_choice')
      throw new ConfigError(
        `${s.file}: ${key}: expected a template, a column name${key === 'doc_to_choice' ? ' or a list' : ' or an integer'}, got ${spec}`,
      );
    return () => spec;
  }
  if (Array.isArray(spec) && key !== 'doc_to_text') return () => spec;
  if (spec !== null && typeof spec === 'object' && !Array.isArray(spec) && key === 'doc_to_choice') {
    const values = Object.values(spec);
    return () => values;
  }
  if (typeof spec !== 'string')
    throw new ConfigError(`${s.file}: ${key}: expected a template or a column name, got ${JSON.stringify(spec)}`);
  if (features.has(spec)) return (doc) => doc[spec];
  let template: ReturnType<typeof compileTemplate>;
  try {
    template = compileTemplate(spec);
  } catch (e) {
    throw new ConfigError(`${s.file}: ${key}: not a template we can read (${(e as Error).message.split('\n')[0]})`);
  }
  return (doc) => {
    let text: string;
    try {
      text = template.render(doc);
    } catch (e) {
      if (!(e instanceof DataError)) throw e;
      throw new DataError(`${key}: the template does not render (${e.message})`);
    }
    if (key === 'doc_to_choice') return readLiteral(key, text);
    if (DIGITS.test(text) && hasChoices) return Number(text);
    if (key === 'doc_to_target' && text.length >= 2 && text.startsWith('[') && text.endsWith(']')) {
      try {
        return literalEval(text);
      } catch {
        return text;
      }
    }
    return text;
  };
}

function readLiteral(key: string, text: string): unknown {
  try {
    return literalEval(text);
  } catch (e) {
    throw new DataError(`${key}: ${(e as Error).message}`);
  }
}

const describe = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v));

function asString(key: string, v: unknown): string {
  if (typeof v !== 'string') throw new DataError(`${key}: expected a string, got ${describe(v)}`);
  return v;
}

function asStrings(key: string, v: unknown): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
    throw new DataError(`${key}: expected a list of strings, got ${describe(v)}`);
  return v;
}

/** lm-eval's gold: an index, or a string that is one of the choices. */
function goldIn(key: string, v: unknown, choices: readonly string[]): number {
  if (typeof v === 'string' && choices.includes(v)) return choices.indexOf(v);
  if (Number.isInteger(v)) return v as number;
  throw new DataError(`${key}: expected an index into the choices or one of them, got ${describe(v)}`);
}

/** The first document as process_docs leaves it, for its columns; undefined where it does not process (refused later, naming its row). */
function processedSample(doc: Doc, process: ((doc: Doc) => Doc) | undefined): Doc | undefined {
  return process ? (attempt(() => process({ ...doc })) as Doc | undefined) : doc;
}

function attempt(f: () => unknown): unknown {
  try {
    return f();
  } catch {
    return undefined;
  }
}

function columnsOf(functions: readonly KnownFunction[]): Columns {
  return Object.assign({}, ...functions.map((f) => f.columns));
}

/** The row a YAML config defines, given the evaluated split's documents (whose columns decide what a string names). */
function defineRow(s: Settings, evalDocs: SplitDocs | undefined): BuiltinTask {
  const { file, config } = s;
  const functions: KnownFunction[] = [];
  const processDocs = config.process_docs;
  let process: ((doc: Doc) => Doc) | undefined;
  if (processDocs !== undefined && processDocs !== null) {
    if (!(processDocs instanceof PythonFunction))
      throw new ConfigError(`${file}: process_docs: expected !function module.fn, got ${JSON.stringify(processDocs)}`);
    const known = knownFunction(file, 'process_docs', processDocs);
    functions.push(known);
    process = known.fn as (doc: Doc) => Doc;
  }
  let counts: ((doc: Doc) => { words: number; bytes: number }) | undefined;
  const processResults = config.process_results;
  if (processResults !== undefined && processResults !== null) {
    if (!(processResults instanceof PythonFunction) || s.outputType !== 'loglikelihood_rolling')
      throw new ConfigError(
        `${file}: process_results: only WikiText's !function preprocess_wikitext.process_results is supported`,
      );
    const known = knownFunction(file, 'process_results', processResults);
    functions.push(known);
    counts = known.fn as typeof counts;
  }
  // lm-eval's features: the evaluated split's columns, after process_docs.
  const first = evalDocs?.docs[0];
  const sample = first === undefined ? undefined : processedSample(first, process);
  const features = new Set(sample === undefined ? [] : Object.keys(sample));
  const text = field(s, 'doc_to_text', features, functions);
  const target = field(s, 'doc_to_target', features, functions);
  const choice = field(s, 'doc_to_choice', features, functions);
  const targetDelimiter = s.str('target_delimiter', ' ')!;
  const fewshotDelimiter = s.str('fewshot_delimiter', '\n\n')!;
  const descriptionSpec = s.str('description', '')!;
  let descriptionTemplate: ReturnType<typeof compileTemplate> | undefined;
  try {
    descriptionTemplate = descriptionSpec === '' ? undefined : compileTemplate(descriptionSpec);
  } catch (e) {
    throw new ConfigError(`${file}: description: not a template we can read (${(e as Error).message.split('\n')[0]})`);
  }
  const description =
    descriptionTemplate &&
    ((doc: Doc) => (descriptionSpec in doc ? String(doc[descriptionSpec]) : descriptionTemplate.render(doc)));
  const need = <T>(f: T | undefined, key: string): T => {
    if (f === undefined) throw new ConfigError(`${file}: ${key}: missing (a ${s.outputType} task needs it)`);
    return f;
  };
  const version = (config.metadata as { version?: unknown } | null | undefined)?.version;
  const common = {
    task: s.name,
    version: typeof version === 'number' ? version : 0,
    repository: need(s.str('dataset_path'), 'dataset_path'),
    config: s.str('dataset_name') ?? null,
    trainingSplit: s.str('training_split'),
    validationSplit: s.str('validation_split'),
    testSplit: s.str('test_split'),
    fewshotSplit: s.str('fewshot_split'),
    columns: columnsOf(functions),
    // The documents hold whatever the dataset holds; the row's columns are those its functions check.
    processDocs: process as BuiltinTask['processDocs'],
    targetDelimiter,
    fewshotDelimiter,
    description: description as BuiltinTask['description'],
    definition: {
      source: 'lm-eval YAML',
      config,
      functions: functions.map((f) => `${f.source}:${f.reference}`),
    },
  };
  if (common.testSplit === undefined && common.validationSplit === undefined)
    throw new ConfigError(`${file}: test_split, validation_split: neither is set (lm-eval evaluates one of them)`);
  switch (s.outputType) {
    case 'multiple_choice': {
      const docToText = need(text, 'doc_to_text');
      const docToChoice = need(choice, 'doc_to_choice');
      const docToTarget = need(target, 'doc_to_target');
      // lm-eval decides on the first document; one that does not read is refused when the items are built.
      const partial = sample !== undefined && typeof attempt(() => docToText(sample)) === 'number';
      if (partial)
        return {
          ...common,
          kind: 'partial',
          docToText: (d) => goldIn('doc_to_text', docToText(d), asStrings('doc_to_choice', docToChoice(d))),
          docToChoice: (d) => asStrings('doc_to_choice', docToChoice(d)),
          docToTarget: (d) => {
            const v = docToTarget(d);
            if (typeof v !== 'string' && typeof v !== 'number')
              throw new DataError(`doc_to_target: expected a string, got ${describe(v)}`);
            return String(v);
          },
          metrics: metricsOf(s, true) as 'acc'[],
        };
      return {
        ...common,
        kind: 'multiple_choice',
        docToText: (d) => asString('doc_to_text', docToText(d)),
        docToChoice: (d) => asStrings('doc_to_choice', docToChoice(d)),
        docToTarget: (d) => goldIn('doc_to_target', docToTarget(d), asStrings('doc_to_choice', docToChoice(d))),
        metrics: metricsOf(s, false) as ('acc' | 'acc_norm')[],
      };
    }
    case 'loglikelihood': {
      const docToText = need(text, 'doc_to_text');
      const docToTarget = need(target, 'doc_to_target');
      return {
        ...common,
        kind: 'loglikelihood',
        docToText: (d) => asString('doc_to_text', docToText(d)),
        docToTarget: (d) => asString('doc_to_target', docToTarget(d)),
        metrics: metricsOf(s, false) as ('perplexity' | 'acc')[],
      };
    }
    case 'loglikelihood_rolling': {
      const docToTarget = need(target, 'doc_to_target');
      return {
        ...common,
        kind: 'loglikelihood_rolling',
        docToTarget: (d) => asString('doc_to_target', docToTarget(d)),
        counts: counts as ((doc: unknown) => { words: number; bytes: number }) | undefined,
        metrics: metricsOf(s, false) as ('word_perplexity' | 'byte_perplexity' | 'bits_per_byte')[],
      };
    }
    case 'generate_until': {
      const docToText = need(text, 'doc_to_text');
      const docToTarget = need(target, 'doc_to_target');
      return {
        ...common,
        kind: 'generate_until',
        docToText: (d) => asString('doc_to_text', docToText(d)),
        docToTarget: (d) => {
          const v = docToTarget(d);
          if (Number.isInteger(v) && choice) return asStrings('doc_to_choice', choice(d))[v as number] ?? String(v);
          if (typeof v !== 'string' && typeof v !== 'number')
            throw new DataError(`doc_to_target: expected a string, got ${describe(v)}`);
          return String(v);
        },
        until: untilOf(s, fewshotDelimiter),
        metrics: metricsOf(s, false) as 'exact_match'[],
      };
    }
  }
}

/** A YAML task (an index entry), its dataset read offline and built; its rows carry the config's task name. */
export async function loadYamlTask(entry: TaskEntry, lookup: DatasetLookup = {}): Promise<Task> {
  const settings = settingsOf(entry);
  const task = await loadTaskRow(defineRow(settings, undefined), lookup, (evalDocs) => defineRow(settings, evalDocs));
  return { ...task, path: entry.file };
}

/** A YAML task file given by path. */
export function taskEntryOf(path: string): TaskEntry {
  const config = readConfig(path);
  if (typeof config.task !== 'string')
    throw new ConfigError(
      `${path}: task: expected the task's name (a group file is selected by its group name with --include-path)`,
    );
  return { kind: 'task', name: config.task, file: path, config };
}
