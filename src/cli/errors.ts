/**
 * How the CLI reports errors: every PythiaError (src/util/errors.ts) and every Node.js system error
 * (disk full, permission denied, missing file, closed pipe) as one line, `pythia: <message>`;
 * anything else is a bug and keeps its stack.
 */
import { isPythiaError, isSystemError, UserError, withPath } from '../util/errors.js';

export { UserError };

const SYSTEM_ERRORS: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOENT: 'no such file or directory',
  EEXIST: 'already exists',
  EISDIR: 'is a directory, expected a file',
  ENOTDIR: 'not a directory',
  ENOTEMPTY: 'directory not empty',
  EMFILE: 'too many open files',
  EIO: 'input/output error',
  EPIPE: 'broken pipe (the reader closed it)',
  EFBIG: 'file too large',
  ENAMETOOLONG: 'file name too long',
};

const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, ' ').trim();

/** The one line printed for `e` (without the `pythia: ` prefix). */
export function describeError(e: unknown): string {
  if (isPythiaError(e)) return oneLine(e.message);
  if (isSystemError(e)) {
    const code = e.code!;
    const what = SYSTEM_ERRORS[code] ?? oneLine(e.message);
    return e.path !== undefined ? `${e.path}: ${what}` : `${what} during ${e.syscall}`;
  }
  if (e instanceof RangeError && /allocation failed|Invalid (typed )?array length/.test(e.message)) {
    return `out of memory: ${oneLine(e.message)}`;
  }
  return `internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`;
}

export function reportError(e: unknown): void {
  process.stderr.write(`pythia: ${describeError(e)}\n`);
}

/**
 * A reader that closes our output early (`pythia inspect ... | head`) is not an error: stop quietly,
 * as a program killed by SIGPIPE does. Other stream errors are reported as one line.
 */
export function handleClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(0);
      if (stream !== process.stderr) reportError(withPath(e, 'standard output'));
      process.exit(1);
    });
  }
}
