/** Parsers for command-line values (commander option coercions) and the options several commands share. */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { EXECUTION_PROVIDERS } from '../runtime/session.js';
import { UserError } from './errors.js';

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError('expected a non-negative integer.');
  return n;
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError('expected a positive integer.');
  return n;
}

export function nonNegativeNumber(value: string): number {
  const x = Number(value);
  if (value.trim() === '' || !Number.isFinite(x) || x < 0) throw new InvalidArgumentError('expected a number >= 0.');
  return x;
}

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

/** A probability in (0, 1]. */
export function probability(value: string): number {
  const x = Number(value);
  if (value.trim() === '' || !(x > 0 && x <= 1)) throw new InvalidArgumentError('expected a number in (0, 1].');
  return x;
}

/** For a flag given several times: each value appended. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
