/** Parsers for command-line values (commander option coercions) and the options several commands share. */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { parseMemorySize } from '../model/memory-budget.js';
import { EXECUTION_PROVIDERS } from '../runtime/session.js';
import {
  NON_NEGATIVE_INTEGER,
  NON_NEGATIVE_NUMBER,
  type NumberRule,
  POSITIVE_INTEGER,
  PROBABILITY,
  SEED,
} from '../util/values.js';
import { UserError } from './errors.js';

/**
 * A commander parser for a number by one of the rules the library checks with (src/util/values.ts),
 * so both say the same "expected ..."; an integer is written in decimal digits alone.
 */
function numberBy(rule: NumberRule): (value: string) => number {
  return (value) => {
    const text = value.trim();
    const x = text === '' || (rule.integer && !/^\d+$/.test(text)) ? Number.NaN : Number(text);
    if (!rule.accepts(x)) throw new InvalidArgumentError(`expected ${rule.expected}.`);
    return x;
  };
}

export const nonNegativeInt = numberBy(NON_NEGATIVE_INTEGER);
export const positiveInt = numberBy(POSITIVE_INTEGER);
export const nonNegativeNumber = numberBy(NON_NEGATIVE_NUMBER);
/** A probability in (0, 1]. */
export const probability = numberBy(PROBABILITY);
/** A seed of the project's 32-bit generator. */
export const seed = numberBy(SEED);

/** `--device`: the onnxruntime execution provider of the commands that compute. */
export function deviceOption(): Option {
  return new Option(
    '--device <device>',
    "where to compute: cpu, or a GPU through onnxruntime's webgpu or cuda provider",
  )
    .choices([...EXECUTION_PROVIDERS])
    .default('cpu');
}

/**
 * `--tokenizer <tokenizer.json>`, with GPT-NeoX's name `--vocab-file` accepted as a hidden alias.
 * Read the value with `tokenizerFlag`.
 */
export function addTokenizerOption(cmd: Command, description: string): Command {
  return cmd
    .option('--tokenizer <tokenizer.json>', `${description} (GPT-NeoX's vocab-file; --vocab-file is accepted too)`)
    .addOption(new Option('--vocab-file <tokenizer.json>').hideHelp());
}

export interface TokenizerFlags {
  tokenizer?: string;
  vocabFile?: string;
}

export function tokenizerFlag(flags: TokenizerFlags): string | undefined {
  if (flags.tokenizer !== undefined && flags.vocabFile !== undefined && flags.tokenizer !== flags.vocabFile)
    throw new UserError('--tokenizer and --vocab-file name the same setting: give one');
  return flags.tokenizer ?? flags.vocabFile;
}

/** The tokenizer of a command that cannot do without one. */
export function requiredTokenizer(flags: TokenizerFlags): string {
  const path = tokenizerFlag(flags);
  if (!path) throw new UserError('--tokenizer <tokenizer.json> is required');
  return path;
}

/** For a flag given several times: each value appended. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `--max-memory SIZE`: the peak memory to stay under, `8GB` or `512MiB`, in bytes. */
export function memorySize(value: string): number {
  try {
    return parseMemorySize(value);
  } catch {
    throw new InvalidArgumentError('expected a size such as 8GB, 512MiB or 1.5GiB.');
  }
}

/** `--max-memory` of the commands that score or read activations. */
export function maxMemoryOption(): Option {
  return new Option(
    '--max-memory <size>',
    'peak memory to stay under (8GB, 512MiB): a checkpoint whose float32 weights exceed 70% of it runs a layer at a time ' +
      'from its files (default: 70% of the available memory decides)',
  ).argParser(memorySize);
}

/**
 * `--max-memory` on a command that cannot stream: accepted by the parser only to be refused in
 * one line that says why.
 */
export function refusedMaxMemoryOption(): Option {
  return new Option('--max-memory <size>').hideHelp();
}

export function refuseMaxMemory(flags: { maxMemory?: unknown }, why: string): void {
  if (flags.maxMemory !== undefined) throw new UserError(`--max-memory: ${why}`);
}
