/** Positioned reads that fail with a FormatError instead of returning short data. */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { FormatError } from '../util/errors.js';

const MAX_READ_CHUNK = 1 << 30; // readSync takes at most 2^31-1 bytes per call

export class RandomAccessFile {
  private fd: number | undefined;
  readonly size: number;

  constructor(readonly path: string) {
    try {
      this.fd = openSync(path, 'r');
    } catch (e) {
      throw new FormatError(path, `cannot open: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    this.size = fstatSync(this.fd).size;
  }

  /** Reads exactly `into.byteLength` bytes starting at `position`. */
  readInto(into: Uint8Array, position: number, what: string): void {
    if (this.fd === undefined) throw new FormatError(this.path, 'file is closed');
    if (position < 0 || position + into.byteLength > this.size) {
      throw new FormatError(
        this.path,
        `${what} needs bytes ${position}..${position + into.byteLength} but the file has ${this.size} (truncated?)`,
      );
    }
    let done = 0;
    while (done < into.byteLength) {
      const n = readSync(this.fd, into, done, Math.min(into.byteLength - done, MAX_READ_CHUNK), position + done);
      if (n === 0) throw new FormatError(this.path, `${what}: unexpected end of file at byte ${position + done}`);
      done += n;
    }
  }

  /** A fresh buffer (byteOffset 0) holding `length` bytes from `position`. */
  read(position: number, length: number, what: string): Uint8Array {
    const out = new Uint8Array(length);
    this.readInto(out, position, what);
    return out;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
