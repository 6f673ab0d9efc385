/**
 * Errors whose messages are written for users: one line naming the file, the field and what was
 * expected. Every such error is a PythiaError; the CLI prints it as one line without a stack
 * trace (src/cli/errors.ts), and anything else is a bug that keeps its stack.
 *
 *   PythiaError
 *   ├── FormatError   a file that is not what it claims to be (names the file)
 *   ├── ConfigError   settings that cannot work (flags, config.json, recipes)
 *   ├── DataError     data that does not fit what it is used for
 *   ├── UserError     a command-line mistake
 *   ├── GraphError    (src/graph) a graph built wrongly, with the op that met it
 *   └── RuntimeError  (src/runtime) feeds that do not fit a compiled graph
 */
export class PythiaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class FormatError extends PythiaError {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
  }
}

export class DataError extends PythiaError {}

export class ConfigError extends PythiaError {}

export class UserError extends PythiaError {}

/** Names of the PythiaError classes, for errors that crossed a thread boundary and lost their class. */
export const PYTHIA_ERROR_NAMES: ReadonlySet<string> = new Set([
  'PythiaError',
  'FormatError',
  'DataError',
  'ConfigError',
  'UserError',
  'GraphError',
  'RuntimeError',
]);

export function isPythiaError(e: unknown): e is Error {
  return e instanceof PythiaError || (e instanceof Error && PYTHIA_ERROR_NAMES.has(e.name));
}

/** A Node.js system error (ENOSPC, EACCES, ...): an Error with a string `code` and a `syscall`. */
export function isSystemError(e: unknown): e is NodeJS.ErrnoException {
  return (
    e instanceof Error &&
    typeof (e as NodeJS.ErrnoException).code === 'string' &&
    typeof (e as NodeJS.ErrnoException).syscall === 'string'
  );
}

/**
 * Names `path` on a system error that lacks one (a write through a file descriptor reports ENOSPC
 * without it), so the one-line report can say which file could not be written. Returns `e`.
 */
export function withPath(e: unknown, path: string): unknown {
  if (isSystemError(e) && e.path === undefined) e.path = path;
  return e;
}
