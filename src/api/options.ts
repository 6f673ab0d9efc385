/**
 * Checks of what a library caller passes where TypeScript cannot stop it (JavaScript callers,
 * values from JSON): an options object holds only known names, a flag is a boolean. Numbers are
 * checked by the layer that uses them, with the rules the CLI shares (src/util/values.ts).
 */
import { ConfigError } from '../util/errors.js';
import { showValue } from '../util/values.js';

/** `options` as an object of known names: a misspelt option would otherwise be silently ignored. */
export function checkOptions(method: string, options: unknown, known: readonly string[]): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw new ConfigError(`${method}: options: expected an object, got ${showValue(options)}`);
  for (const key of Object.keys(options))
    if (!known.includes(key)) throw new ConfigError(`${method}: unknown option ${key} (options: ${known.join(', ')})`);
}

export function checkOptionalBoolean(name: string, value: unknown): boolean | undefined {
  if (value !== undefined && typeof value !== 'boolean')
    throw new ConfigError(`${name}: expected true or false, got ${showValue(value)}`);
  return value;
}
