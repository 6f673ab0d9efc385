/**
 * Errors a user can act on. A UserError is printed as one line (`pythia: <message>`) with no stack
 * trace; anything else is a bug and keeps its stack.
 */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** Error classes whose messages are written for users (one line naming the file and field). */
const USER_FACING = new Set(['UserError', 'FormatError', 'GraphError', 'RuntimeError', 'ConfigError', 'DataError']);

export function reportError(e: unknown): void {
  if (e instanceof Error && USER_FACING.has(e.name)) {
    process.stderr.write(`pythia: ${e.message}\n`);
  } else if (e instanceof Error && (e as NodeJS.ErrnoException).code && (e as NodeJS.ErrnoException).path) {
    const err = e as NodeJS.ErrnoException;
    process.stderr.write(`pythia: ${err.path}: ${err.code === 'ENOENT' ? 'no such file or directory' : err.message}\n`);
  } else {
    process.stderr.write(`pythia: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  }
}
