/**
 * What a numeric setting must be, said once for the library and the command line alike. The
 * library names the option as its caller spelled it (`maxNewTokens: expected a positive integer,
 * got -1`); the CLI's parsers (src/cli/arguments.ts) give commander the same "expected ..." and
 * commander names the flag as typed (`option '--max-new-tokens <n>' argument '-1' is invalid`).
 */
import { ConfigError } from './errors.js';

export interface NumberRule {
  /** What a value must be, as the error says it. */
  readonly expected: string;
  /** Written in decimal digits alone on a command line. */
  readonly integer: boolean;
  accepts(x: number): boolean;
}

export const POSITIVE_INTEGER: NumberRule = {
  expected: 'a positive integer',
  integer: true,
  accepts: (x) => Number.isSafeInteger(x) && x >= 1,
};

export const NON_NEGATIVE_INTEGER: NumberRule = {
  expected: 'a non-negative integer',
  integer: true,
  accepts: (x) => Number.isSafeInteger(x) && x >= 0,
};

export const NON_NEGATIVE_NUMBER: NumberRule = {
  expected: 'a number >= 0',
  integer: false,
  accepts: (x) => Number.isFinite(x) && x >= 0,
};

export const PROBABILITY: NumberRule = {
  expected: 'a number in (0, 1]',
  integer: false,
  accepts: (x) => x > 0 && x <= 1,
};

/** A seed of the project's generator (src/util/prng.ts): 32 bits. */
export const SEED: NumberRule = {
  expected: `an integer from 0 to ${2 ** 32 - 1}`,
  integer: true,
  accepts: (x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32,
};

/** A value as an error shows it: strings quoted, so `"5"` is told from `5`. */
export function showValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'object' && value !== null) return 'an object';
  if (typeof value === 'function') return 'a function';
  return String(value);
}

/** `value` if `rule` accepts it; else a ConfigError naming the option `name`. */
export function checkNumber(name: string, value: unknown, rule: NumberRule): number {
  if (typeof value !== 'number' || !rule.accepts(value))
    throw new ConfigError(`${name}: expected ${rule.expected}, got ${showValue(value)}`);
  return value;
}

/** `value` checked by `rule` when given; undefined stays undefined (the default applies). */
export function checkOptionalNumber(name: string, value: unknown, rule: NumberRule): number | undefined {
  return value === undefined ? undefined : checkNumber(name, value, rule);
}
