/**
 * Task files: JSON Lines, one item per line, in the shapes lm-evaluation-harness's four request
 * kinds need. Each line names its kind in `output_type` (or the whole file gets one from
 * `--output-type`); fields beyond the required ones are kept as the item's metadata (for example
 * the arithmetic task's operand `x1`, which the term-frequency study joins on).
 *
 *   multiple_choice        {"id", "context", "choices": [...], "gold": i}   (optional "target_delimiter")
 *                          {"id", "contexts": [...], "continuation", "gold": i}   (partial evaluation)
 *   loglikelihood          {"id", "context", "target"}                       (target scored as written)
 *   loglikelihood_rolling  {"id", "text"}
 *   generate_until         {"id", "context", "answer"}                       (optional "until": [...])
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { JsonSyntaxError, parseStrictJson } from '../formats/strict-json.js';
import { FormatError } from '../util/errors.js';

export const OUTPUT_TYPES = ['multiple_choice', 'loglikelihood', 'loglikelihood_rolling', 'generate_until'] as const;
export type OutputType = (typeof OUTPUT_TYPES)[number];

interface ItemBase {
  id: string;
  /** Every field of the line that is not one of the kind's own. */
  meta: Record<string, unknown>;
}

export interface MultipleChoiceItem extends ItemBase {
  kind: 'multiple_choice';
  context: string;
  choices: string[];
  gold: number;
  targetDelimiter: string;
}

/**
 * Partial evaluation (WinoGrande, WSC273): one continuation scored after each of several contexts;
 * the prediction is the context under which it is most likely. A line of a `multiple_choice` file.
 */
export interface PartialItem extends ItemBase {
  kind: 'partial';
  contexts: string[];
  continuation: string;
  gold: number;
  targetDelimiter: string;
}

export interface LoglikelihoodItem extends ItemBase {
  kind: 'loglikelihood';
  context: string;
  target: string;
}

export interface RollingItem extends ItemBase {
  kind: 'loglikelihood_rolling';
  text: string;
  /** The words and bytes the perplexities divide by, where they are counted on other text than the one scored (WikiText's original page). */
  counts?: { words: number; bytes: number };
}

export interface GenerateItem extends ItemBase {
  kind: 'generate_until';
  context: string;
  answer: string;
  until: string[];
  /** `exact_match` compares the prediction and the answer as written, not trimmed (lm-eval YAML tasks, as lm-eval compares). */
  exactAsWritten?: boolean;
}

export type TaskItem = MultipleChoiceItem | PartialItem | LoglikelihoodItem | RollingItem | GenerateItem;

export interface Task {
  /** The file name without `.jsonl` (a built-in task: lm-evaluation-harness's name). */
  name: string;
  /** The task file (a built-in task: the folder its dataset files were read from). */
  path: string;
  outputType: OutputType;
  items: TaskItem[];
  /**
   * sha256 of the file's bytes (a built-in task: of its definition, version and dataset files'
   * hashes): a results database records which version of a task it scored.
   */
  sha256: string;
  /** The metrics reported, where a task names them (built-in tasks, as lm-eval's metric_list); default all of its kind's. */
  metrics?: readonly string[];
  /** Demonstrations drawn as lm-evaluation-harness draws them, from the task's own few-shot split (built-in tasks). */
  fewshot?: HarnessFewshot;
}

/**
 * lm-evaluation-harness's few-shot setting of a task: its few-shot split, and how a demonstration
 * is written. One `random.Random(seed)` draws every item's demonstrations in item order.
 */
export interface HarnessFewshot {
  /** The few-shot split's documents as items, in dataset order; `meta` holds each document. */
  pool: readonly TaskItem[];
  /**
   * Whether a drawn document equal to the evaluated one is dropped (k + 1 drawn, the first k others
   * kept): lm-eval does so when the task's few-shot split is its test split (`None == None` for a
   * task without one).
   */
  excludeEvalDoc: boolean;
  targetDelimiter: string;
  fewshotDelimiter: string;
  /** The text before an item's demonstrations, from its document (`meta`): lm-eval's `description` (YAML tasks). */
  description?: (doc: Record<string, unknown>) => string;
}

/** lm-evaluation-harness's defaults. */
export const TARGET_DELIMITER = ' ';
export const FEWSHOT_DELIMITER = '\n\n';
export const DEFAULT_UNTIL = ['\n'];

const OWN_FIELDS: Record<OutputType, readonly string[]> = {
  multiple_choice: ['id', 'output_type', 'context', 'choices', 'contexts', 'continuation', 'gold', 'target_delimiter'],
  loglikelihood: ['id', 'output_type', 'context', 'target'],
  loglikelihood_rolling: ['id', 'output_type', 'text'],
  generate_until: ['id', 'output_type', 'context', 'answer', 'until'],
};

export function taskNameOf(path: string): string {
  return basename(path).replace(/\.jsonl$/, '');
}

/** Parses a task file; every problem is a one-line error naming the file, the line and the field. */
export function readTask(path: string, outputType?: OutputType): Task {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FormatError(
      path,
      code === 'ENOENT' ? 'task file not found' : `cannot read (${code ?? (e as Error).message})`,
    );
  }
  const lines = textLines(path, bytes);
  // A byte-order mark may start the file (as Windows editors save UTF-8); anywhere else it is an error.
  if (lines[0]!.charCodeAt(0) === 0xfeff) lines[0] = lines[0]!.slice(1);
  const items: TaskItem[] = [];
  const ids = new Map<string, number>();
  let fileType: OutputType | undefined = outputType;
  let fileShape: { shape: 'choices' | 'contexts'; line: number } | undefined;
  lines.forEach((text, i) => {
    if (text.trim() === '') return;
    const where = `${path}:${i + 1}`;
    let json: unknown;
    try {
      json = parseStrictJson(text);
    } catch (e) {
      if (!(e instanceof JsonSyntaxError)) throw e;
      throw new FormatError(where, `not valid JSON (${e.message})`);
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json))
      throw new FormatError(where, 'expected a JSON object');
    const line = json as Record<string, unknown>;
    const type = lineType(line, outputType, where);
    if (fileType !== undefined && type !== fileType) {
      throw new FormatError(
        where,
        `output_type: "${type}" differs from the file's "${fileType}" (one kind per task file)`,
      );
    }
    fileType = type;
    const item = parseItem(line, type, where);
    const shape = item.kind === 'partial' ? 'contexts' : 'choices';
    if (item.kind === 'multiple_choice' || item.kind === 'partial') {
      if (fileShape !== undefined && shape !== fileShape.shape) {
        throw new FormatError(
          where,
          `${shape}: line ${fileShape.line} has ${fileShape.shape} (a multiple_choice file is all choices or all contexts)`,
        );
      }
      fileShape ??= { shape, line: i + 1 };
    }
    const seen = ids.get(item.id);
    if (seen !== undefined) throw new FormatError(where, `id: "${item.id}" already used on line ${seen}`);
    ids.set(item.id, i + 1);
    items.push(item);
  });
  if (items.length === 0 || fileType === undefined)
    throw new FormatError(path, 'no items: expected JSON Lines, one task item per line');
  return {
    name: taskNameOf(path),
    path,
    outputType: fileType,
    items,
    sha256: createHash('sha256').update(bytes).digest('hex'),
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The file's lines, split at "\n"; a line that is not UTF-8 is an error naming it. */
function textLines(path: string, bytes: Buffer): string[] {
  const lines: string[] = [];
  for (let start = 0; start <= bytes.length; ) {
    const newline = bytes.indexOf(0x0a, start);
    const end = newline < 0 ? bytes.length : newline;
    try {
      lines.push(utf8.decode(bytes.subarray(start, end)));
    } catch {
      throw new FormatError(`${path}:${lines.length + 1}`, 'not valid UTF-8');
    }
    start = end + 1;
  }
  return lines;
}

function lineType(line: Record<string, unknown>, fallback: OutputType | undefined, where: string): OutputType {
  const t = line.output_type;
  if (t === undefined) {
    if (fallback) return fallback;
    throw new FormatError(
      where,
      `output_type: missing (expected one of ${OUTPUT_TYPES.join(', ')}; or pass --output-type for the file)`,
    );
  }
  if (typeof t !== 'string' || !(OUTPUT_TYPES as readonly string[]).includes(t)) {
    throw new FormatError(where, `output_type: expected one of ${OUTPUT_TYPES.join(', ')}, got ${JSON.stringify(t)}`);
  }
  return t as OutputType;
}

function field<T>(
  line: Record<string, unknown>,
  name: string,
  where: string,
  check: (v: unknown) => v is T,
  expected: string,
): T {
  const v = line[name];
  if (v === undefined) throw new FormatError(where, `${name}: missing (expected ${expected})`);
  if (!check(v)) throw new FormatError(where, `${name}: expected ${expected}, got ${JSON.stringify(v)}`);
  return v;
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);
const isTerm = (v: unknown): v is string | number => (isString(v) && v !== '') || typeof v === 'number';

function parseItem(line: Record<string, unknown>, kind: OutputType, where: string): TaskItem {
  const rawId = line.id;
  if (rawId === undefined) throw new FormatError(where, 'id: missing (expected a string or number unique in the file)');
  if (typeof rawId !== 'string' && !(typeof rawId === 'number' && Number.isFinite(rawId))) {
    throw new FormatError(where, `id: expected a string or number, got ${JSON.stringify(rawId)}`);
  }
  const id = String(rawId);
  // No prototype: a "__proto__" field is kept as a key rather than taken for the object's prototype.
  const meta: Record<string, unknown> = Object.create(null);
  for (const [k, v] of Object.entries(line)) if (!OWN_FIELDS[kind].includes(k)) meta[k] = v;
  if (meta.term !== undefined)
    field(line, 'term', where, isTerm, "a non-empty string or a number (the item's key term)");
  switch (kind) {
    case 'multiple_choice': {
      if (line.contexts !== undefined) return parsePartial(line, id, meta, where);
      const context = field(line, 'context', where, isString, 'a string');
      const choices = field(
        line,
        'choices',
        where,
        (v): v is string[] => isStringList(v) && v.length >= 2,
        'an array of at least two strings',
      );
      if (line.continuation !== undefined)
        throw new FormatError(where, 'continuation: belongs with contexts (partial evaluation), not with choices');
      const gold = goldIndex(line, choices.length, 'choices', where);
      const targetDelimiter = targetDelimiterOf(line, where);
      choices.forEach((c, i) => {
        if (targetDelimiter + c === '') throw new FormatError(where, `choices[${i}]: empty (nothing to score)`);
      });
      return { kind, id, meta, context, choices, gold, targetDelimiter };
    }
    case 'loglikelihood': {
      const context = field(line, 'context', where, isString, 'a string');
      const target = field(
        line,
        'target',
        where,
        (v): v is string => isString(v) && v.length > 0,
        'a non-empty string (with its own leading space, e.g. " word")',
      );
      return { kind, id, meta, context, target };
    }
    case 'loglikelihood_rolling': {
      const text = field(line, 'text', where, (v): v is string => isString(v) && v.length > 0, 'a non-empty string');
      return { kind, id, meta, text };
    }
    case 'generate_until': {
      const context = field(line, 'context', where, isString, 'a string');
      const answer = field(line, 'answer', where, isString, 'a string');
      const until =
        line.until === undefined
          ? DEFAULT_UNTIL
          : field(
              line,
              'until',
              where,
              (v): v is string[] => isStringList(v) && v.length > 0 && v.every((s) => s !== ''),
              'a non-empty array of non-empty stop strings',
            );
      return { kind, id, meta, context, answer, until };
    }
  }
}

function goldIndex(line: Record<string, unknown>, count: number, of: string, where: string): number {
  const gold = field(line, 'gold', where, (v): v is number => Number.isInteger(v), `an integer index into ${of}`);
  if (gold < 0 || gold >= count)
    throw new FormatError(where, `gold: ${gold} is out of range for ${count} ${of} (expected 0 to ${count - 1})`);
  return gold;
}

function targetDelimiterOf(line: Record<string, unknown>, where: string): string {
  return line.target_delimiter === undefined
    ? TARGET_DELIMITER
    : field(line, 'target_delimiter', where, isString, 'a string');
}

/** A multiple_choice line with `contexts`: partial evaluation. */
function parsePartial(
  line: Record<string, unknown>,
  id: string,
  meta: Record<string, unknown>,
  where: string,
): TaskItem {
  for (const other of ['context', 'choices'])
    if (line[other] !== undefined)
      throw new FormatError(
        where,
        `${other}: given with contexts (a line has context and choices, or contexts and continuation)`,
      );
  const contexts = field(
    line,
    'contexts',
    where,
    (v): v is string[] => isStringList(v) && v.length >= 2,
    'an array of at least two strings',
  );
  const continuation = field(line, 'continuation', where, isString, 'a string (scored after each context)');
  const gold = goldIndex(line, contexts.length, 'contexts', where);
  const targetDelimiter = targetDelimiterOf(line, where);
  if (targetDelimiter + continuation === '')
    throw new FormatError(where, 'continuation: empty, with an empty target_delimiter (nothing to score)');
  return { kind: 'partial', id, meta, contexts, continuation, gold, targetDelimiter };
}
