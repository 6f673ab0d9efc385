/**
 * Streaming Zstandard decompression with nothing to compile: Node's built-in zstd where the running
 * Node has it (v22.15 / v23.8 and later), else the pure-JavaScript `fzstd`.
 *
 * fzstd reads a match offset's extra bits from one 32-bit word, so offsets needing more than 25
 * bits come out wrong without an error; we walk the frame headers ahead of it and refuse frames
 * whose window is over 32 MiB (`zstd --long=26` and up, `--ultra -22` on large files) instead.
 */
import { Transform } from 'node:stream';
import * as zlib from 'node:zlib';
import { Decompress } from 'fzstd';
import { FormatError } from '../util/errors.js';

export type ZstdDecoder = 'node' | 'fzstd';

/** The largest window fzstd decodes correctly: every offset then fits its 25-bit read. */
export const FZSTD_MAX_WINDOW = 2 ** 25;

type NodeZstd = { createZstdDecompress?: (options: { params: Record<number, number> }) => Transform };
type NodeZstdConstants = { ZSTD_d_windowLogMax?: number };

/** The decoder this Node uses: its own zstd when it has one. */
export function defaultZstdDecoder(): ZstdDecoder {
  return typeof (zlib as unknown as NodeZstd).createZstdDecompress === 'function' ? 'node' : 'fzstd';
}

/** A Transform from Zstandard bytes (one or more frames) to the decompressed bytes. */
export function createZstdDecompressor(path: string, decoder: ZstdDecoder = defaultZstdDecoder()): Transform {
  if (decoder === 'node') {
    const create = (zlib as unknown as NodeZstd).createZstdDecompress;
    const windowLogMax = (zlib.constants as unknown as NodeZstdConstants).ZSTD_d_windowLogMax;
    if (create === undefined || windowLogMax === undefined)
      throw new Error(`Node ${process.version} has no built-in zstd`);
    // windowLogMax 31: accept frames written with long windows (zstd --long), as large corpora often are.
    return create({ params: { [windowLogMax]: 31 } });
  }
  return fzstdTransform(path);
}

function fzstdTransform(path: string): Transform {
  let output: Transform;
  const decompressor = new Decompress((data) => {
    if (data.length > 0) output.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  });
  const headers = new FrameHeaders((window) => {
    if (window > FZSTD_MAX_WINDOW) {
      throw new FormatError(
        path,
        `a Zstandard frame with a ${mebibytes(window)} window (zstd --long) is past what the pure-JavaScript decoder used on Node ${process.version} reads (${mebibytes(FZSTD_MAX_WINDOW)}): use Node 22.15 or later, or recompress without --long`,
      );
    }
  });
  output = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      try {
        headers.feed(chunk);
        decompressor.push(chunk, false);
        done();
      } catch (e) {
        done(e as Error);
      }
    },
    flush(done) {
      try {
        decompressor.push(new Uint8Array(0), true);
        done();
      } catch (e) {
        done(e as Error);
      }
    },
  });
  return output;
}

function mebibytes(bytes: number): string {
  return `${+(bytes / 2 ** 20).toFixed(2)} MiB`;
}

const ZSTD_MAGIC = 0xfd2fb528;
const isSkippableMagic = (magic: number): boolean => (magic & 0xfffffff0) >>> 0 === 0x184d2a50;

/**
 * Walks Zstandard frame and block headers (RFC 8878, section 3.1) as the bytes pass, reporting each
 * frame's window size: the window descriptor's, or the content size of a single-segment frame.
 */
class FrameHeaders {
  private pending = Buffer.alloc(0);
  private skip = 0;
  private inFrame = false;
  private checksum = false;

  constructor(private readonly onWindow: (bytes: number) => void) {}

  feed(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - at);
        this.skip -= n;
        at += n;
        continue;
      }
      let size = this.headerSize();
      while (this.pending.length < size && at < chunk.length) {
        const n = Math.min(size - this.pending.length, chunk.length - at);
        this.pending = Buffer.concat([this.pending, chunk.subarray(at, at + n)]);
        at += n;
        size = this.headerSize();
      }
      if (this.pending.length === size) {
        this.readHeader(this.pending);
        this.pending = Buffer.alloc(0);
      }
    }
  }

  /** Bytes the header being read takes, as far as the bytes seen so far tell. */
  private headerSize(): number {
    const p = this.pending;
    if (this.inFrame) return 3;
    if (p.length < 4) return 4;
    const magic = p.readUInt32LE(0);
    if (isSkippableMagic(magic)) return 8;
    if (magic !== ZSTD_MAGIC) throw new Error('not a Zstandard frame (bad magic number)');
    if (p.length < 5) return 5;
    const descriptor = p[4]!;
    const singleSegment = (descriptor >> 5) & 1;
    const dictionaryBytes = [0, 1, 2, 4][descriptor & 3]!;
    const contentSizeBytes = [singleSegment, 2, 4, 8][descriptor >> 6]!;
    return 5 + (1 - singleSegment) + dictionaryBytes + contentSizeBytes;
  }

  private readHeader(p: Buffer): void {
    if (this.inFrame) {
      const header = p.readUIntLE(0, 3);
      const last = header & 1;
      const type = (header >> 1) & 3;
      if (type === 3) throw new Error('reserved block type');
      this.skip = type === 1 ? 1 : header >>> 3;
      if (last) {
        this.inFrame = false;
        if (this.checksum) this.skip += 4;
      }
      return;
    }
    if (isSkippableMagic(p.readUInt32LE(0))) {
      this.skip = p.readUInt32LE(4);
      return;
    }
    const descriptor = p[4]!;
    const singleSegment = (descriptor >> 5) & 1;
    this.checksum = ((descriptor >> 2) & 1) === 1;
    let window: number;
    if (singleSegment) {
      const at = 5 + [0, 1, 2, 4][descriptor & 3]!;
      const flag = descriptor >> 6;
      window =
        flag === 0
          ? p[at]!
          : flag === 1
            ? p.readUInt16LE(at) + 256
            : flag === 2
              ? p.readUInt32LE(at)
              : Number(p.readBigUInt64LE(at));
    } else {
      const base = 2 ** (10 + (p[5]! >> 3));
      window = base + (base / 8) * (p[5]! & 7);
    }
    this.inFrame = true;
    this.onWindow(window);
  }
}
