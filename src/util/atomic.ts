/**
 * Atomic file writes: write a temporary file beside the target, then rename it into place. A
 * folder (a checkpoint) or a pair of files (a dataset's .bin and .idx) that replaces an existing
 * one is swapped so that its path always names either the old or the new whole.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { withPath } from './errors.js';

export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Where an existing file or folder waits while its replacement moves in (`.<name>.<hex>.old`). */
export function asidePathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.old`);
}

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw withPath(e, path);
  }
}

/**
 * Moves the finished folder `tmp` to `dir`. An existing `dir` is renamed aside first and deleted
 * only once the new one is in place, so a kill at any moment leaves `dir` either absent, old and
 * whole, or new and whole, and the other copy under a `.<name>.<hex>.old` name.
 */
export async function replaceDirectory(tmp: string, dir: string): Promise<void> {
  if (!existsSync(dir)) {
    await rename(tmp, dir);
    return;
  }
  const aside = asidePathFor(dir);
  await rename(dir, aside);
  try {
    await rename(tmp, dir);
  } catch (e) {
    await rename(aside, dir);
    throw e;
  }
  await rm(aside, { recursive: true, force: true });
}

/** Writes chunks to a temporary file with a synchronous handle; `commit` renames it into place. */
export class AtomicFileWriter {
  readonly tmp: string;
  private fd: number | undefined;
  private position = 0;
  private closed = false;

  constructor(readonly path: string) {
    this.tmp = tempPathFor(path);
    try {
      this.fd = openSync(this.tmp, 'w');
    } catch (e) {
      throw withPath(e, path);
    }
  }

  get bytesWritten(): number {
    return this.position;
  }

  write(chunk: Uint8Array): void {
    if (this.fd === undefined) throw new Error(`${this.path}: write after close`);
    let done = 0;
    try {
      while (done < chunk.length) done += writeSync(this.fd, chunk, done, chunk.length - done);
    } catch (e) {
      throw withPath(e, this.path);
    }
    this.position += chunk.length;
  }

  /** Flushes the temporary file to disk and closes it; `commit` then only renames. */
  close(): void {
    if (this.closed) return;
    if (this.fd === undefined) throw new Error(`${this.path}: closed after abort`);
    try {
      fsyncSync(this.fd);
    } catch (e) {
      throw withPath(e, this.path);
    } finally {
      closeSync(this.fd);
      this.fd = undefined;
    }
    this.closed = true;
  }

  commit(): void {
    this.close();
    renameSync(this.tmp, this.path);
  }

  abort(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    rmSync(this.tmp, { force: true });
  }
}
