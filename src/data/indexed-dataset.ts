/**
 * GPT-NeoX's MMapIndexedDataset: `<prefix>.idx` (header, sizes, pointers, doc_idx) and `<prefix>.bin`
 * (the items' tokens back to back). Layout, all little-endian (GPT-NeoX v1.0
 * `megatron/data/indexed_dataset.py`, `MMapIndexedDataset.Index`):
 *
 *   0   9 bytes  magic "MMIDIDX\0\0"
 *   9   u64      version = 1
 *   17  u8       dtype code
 *   18  u64      N items
 *   26  u64      D doc_idx entries
 *   34  i32[N]   sizes (tokens per item)
 *       i64[N]   pointers (byte offset of each item in .bin; not 8-byte aligned in the file)
 *       i64[D]   doc_idx
 *
 * The reader never loads the .bin: each read is one positioned read of exactly the bytes needed.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import { endianness } from 'node:os';
import { dirname } from 'node:path';
import { AtomicFileWriter, asidePathFor } from '../util/atomic.js';
import { DataError, FormatError } from '../util/errors.js';
import { ShardedFile } from './sharded-file.js';

export type DatasetDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'int64' | 'float32' | 'float64' | 'uint16';

/** dtype codes of indexed_dataset.py (codes 6 and 7 were both float64 before v1.0; we use v1.0's table). */
const DTYPE_CODES: Record<number, { dtype: DatasetDtype; itemSize: number }> = {
  1: { dtype: 'uint8', itemSize: 1 },
  2: { dtype: 'int8', itemSize: 1 },
  3: { dtype: 'int16', itemSize: 2 },
  4: { dtype: 'int32', itemSize: 4 },
  5: { dtype: 'int64', itemSize: 8 },
  6: { dtype: 'float32', itemSize: 4 },
  7: { dtype: 'float64', itemSize: 8 },
  8: { dtype: 'uint16', itemSize: 2 },
};

export const INDEX_MAGIC = Uint8Array.from([0x4d, 0x4d, 0x49, 0x44, 0x49, 0x44, 0x58, 0x00, 0x00]);
export const INDEX_HEADER_BYTES = 34;

/** An index larger than this is checked item by item as items are read (its end against the .bin always). */
const FULL_CHECK_MAX_INDEX_BYTES = 64 * 1024 * 1024;
const CHUNK_ITEMS = 1 << 20;

if (endianness() !== 'LE') throw new Error('indexed datasets are read with little-endian typed arrays');

/** GPT-NeoX's `__best_fitting_dtype`: uint16 when the vocabulary has fewer than 65500 tokens. */
export function bestFittingDtype(vocabSize: number): 'uint16' | 'int32' {
  return vocabSize < 65500 ? 'uint16' : 'int32';
}

export function indexPath(prefix: string): string {
  return `${prefix}.idx`;
}

export function binPath(prefix: string): string {
  return `${prefix}.bin`;
}

/** Accepts a prefix, or a path to its .bin or .idx, as Pythia's reader does. */
export function datasetPrefix(path: string): string {
  return path.endsWith('.bin') || path.endsWith('.idx') ? path.slice(0, -4) : path;
}

function codeOf(dtype: DatasetDtype): number {
  for (const [code, d] of Object.entries(DTYPE_CODES)) if (d.dtype === dtype) return Number(code);
  throw new Error(`unknown dtype ${dtype}`);
}

/** Streams documents into `<prefix>.bin`, then writes `<prefix>.idx`; both appear only on finish. */
export class IndexedDatasetWriter {
  private readonly bin: AtomicFileWriter;
  private readonly itemSize: number;
  private readonly maxToken: number;
  private readonly minToken: number;
  private sizes = new Int32Array(1024);
  private count = 0;
  private tokenCount = 0;
  /** Tokens appended to the document not yet ended. */
  private current = 0;
  private pending: Uint8Array;
  private pendingBytes = 0;
  private done = false;

  private constructor(
    readonly prefix: string,
    readonly dtype: 'uint16' | 'int32',
  ) {
    this.itemSize = dtype === 'uint16' ? 2 : 4;
    this.minToken = dtype === 'uint16' ? 0 : -0x80000000;
    this.maxToken = dtype === 'uint16' ? 0xffff : 0x7fffffff;
    this.pending = new Uint8Array(1 << 20);
    mkdirSync(dirname(prefix), { recursive: true });
    this.bin = new AtomicFileWriter(binPath(prefix));
  }

  /** uint16 when the vocabulary fits (GPT-NeoX's rule), else int32; `dtype` overrides the choice. */
  static create(prefix: string, options: { vocabSize: number; dtype?: 'uint16' | 'int32' }): IndexedDatasetWriter {
    return new IndexedDatasetWriter(prefix, options.dtype ?? bestFittingDtype(options.vocabSize));
  }

  get documents(): number {
    return this.count;
  }

  get tokens(): number {
    return this.tokenCount;
  }

  /** Appends one document (one item). Callers append the EOD token themselves when asked to. */
  add(tokens: ArrayLike<number>): void {
    this.append(tokens);
    this.endDocument();
  }

  /** Appends tokens to the document being written; `endDocument` closes it. A document may come in any number of parts. */
  append(tokens: ArrayLike<number>): void {
    if (this.done) throw new Error(`${this.prefix}: add after finish or abort`);
    if (this.current + tokens.length > 0x7fffffff)
      throw new DataError(
        `document ${this.count}: ${this.current + tokens.length} tokens do not fit the int32 sizes array`,
      );
    const bytes = tokens.length * this.itemSize;
    if (this.pendingBytes + bytes > this.pending.length) this.flush();
    if (bytes > this.pending.length) this.pending = new Uint8Array(bytes);
    const view =
      this.itemSize === 2
        ? new Uint16Array(this.pending.buffer, this.pendingBytes, tokens.length)
        : new Int32Array(this.pending.buffer, this.pendingBytes, tokens.length);
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (!Number.isInteger(t) || t < this.minToken || t > this.maxToken) {
        throw new DataError(`document ${this.count}, token ${this.current + i}: ${t} does not fit ${this.dtype}`);
      }
      view[i] = t;
    }
    this.pendingBytes += bytes;
    this.current += tokens.length;
  }

  endDocument(): void {
    if (this.count === this.sizes.length) {
      const grown = new Int32Array(this.sizes.length * 2);
      grown.set(this.sizes);
      this.sizes = grown;
    }
    this.sizes[this.count++] = this.current;
    this.tokenCount += this.current;
    this.current = 0;
  }

  private flush(): void {
    if (this.pendingBytes === 0) return;
    this.bin.write(this.pending.subarray(0, this.pendingBytes));
    this.pendingBytes = 0;
  }

  /**
   * Writes the index, then swaps the pair into place: the old .idx is moved aside, the new .bin
   * renamed in, then the new .idx. A reader finds the old pair, the new pair, or no .idx (an
   * error), never one file of each; a kill leaves at worst hidden `.<name>.<hex>.tmp/.old` files.
   */
  async finish(): Promise<void> {
    if (this.done) throw new Error(`${this.prefix}: finished twice`);
    if (this.current !== 0) throw new Error(`${this.prefix}: finish with document ${this.count} not ended`);
    this.done = true;
    const idx = new AtomicFileWriter(indexPath(this.prefix));
    try {
      this.flush();
      writeIndex(idx, this.sizes.subarray(0, this.count), this.itemSize, codeOf(this.dtype));
      this.bin.close();
      idx.close();
    } catch (e) {
      idx.abort();
      this.bin.abort();
      throw e;
    }
    publishPair(this.bin, idx);
  }

  /** Discards everything written; neither file appears. */
  abort(): void {
    this.done = true;
    this.bin.abort();
  }
}

function publishPair(bin: AtomicFileWriter, idx: AtomicFileWriter): void {
  const aside = existsSync(idx.path) ? asidePathFor(idx.path) : undefined;
  try {
    if (aside) renameSync(idx.path, aside);
    bin.commit();
  } catch (e) {
    if (aside) renameSync(aside, idx.path);
    bin.abort();
    idx.abort();
    throw e;
  }
  idx.commit();
  if (aside) rmSync(aside, { force: true });
}

/** Header, sizes, pointers and doc_idx = [0, 1, …, N] (one document per item, as preprocess_data writes). */
function writeIndex(out: AtomicFileWriter, sizes: Int32Array, itemSize: number, dtypeCode: number): void {
  const n = sizes.length;
  const header = new Uint8Array(INDEX_HEADER_BYTES);
  const view = new DataView(header.buffer);
  header.set(INDEX_MAGIC, 0);
  view.setBigUint64(9, 1n, true);
  view.setUint8(17, dtypeCode);
  view.setBigUint64(18, BigInt(n), true);
  view.setBigUint64(26, BigInt(n + 1), true);
  out.write(header);
  for (let start = 0; start < n; start += CHUNK_ITEMS) {
    out.write(new Uint8Array(sizes.slice(start, start + CHUNK_ITEMS).buffer));
  }
  let pointer = 0;
  for (let start = 0; start < n; start += CHUNK_ITEMS) {
    const end = Math.min(n, start + CHUNK_ITEMS);
    const chunk = new BigInt64Array(end - start);
    for (let i = start; i < end; i++) {
      chunk[i - start] = BigInt(pointer);
      pointer += sizes[i]! * itemSize;
    }
    out.write(new Uint8Array(chunk.buffer));
  }
  for (let start = 0; start <= n; start += CHUNK_ITEMS) {
    const end = Math.min(n + 1, start + CHUNK_ITEMS);
    const chunk = new BigInt64Array(end - start);
    for (let i = start; i < end; i++) chunk[i - start] = BigInt(i);
    out.write(new Uint8Array(chunk.buffer));
  }
}

/** Reads a dataset written by GPT-NeoX, Pythia or us, without loading the .bin. */
export class IndexedDataset {
  readonly dtype: DatasetDtype;
  readonly itemSize: number;
  /** Items (documents, for preprocess_data output). */
  readonly length: number;
  readonly docIdxLength: number;
  private readonly idxFd: number;
  private readonly bin: ShardedFile;
  private readonly idxFile: string;
  private sizesCache: Int32Array | undefined;
  private docIdxCache: BigInt64Array | undefined;

  private constructor(
    readonly prefix: string,
    fullCheckMaxIndexBytes: number,
  ) {
    this.idxFile = indexPath(prefix);
    this.idxFd = openSync(this.idxFile, 'r');
    try {
      const idxBytes = fstatSync(this.idxFd).size;
      if (idxBytes < INDEX_HEADER_BYTES) {
        throw new FormatError(this.idxFile, `truncated: ${idxBytes} bytes, the header alone is ${INDEX_HEADER_BYTES}`);
      }
      const header = this.readIndexBytes(0, INDEX_HEADER_BYTES);
      const view = new DataView(header.buffer);
      if (!INDEX_MAGIC.every((b, i) => header[i] === b)) {
        throw new FormatError(
          this.idxFile,
          `magic is ${JSON.stringify(Buffer.from(header.subarray(0, 9)).toString('latin1'))}, expected "MMIDIDX\\u0000\\u0000" (not an MMapIndexedDataset index)`,
        );
      }
      const version = view.getBigUint64(9, true);
      if (version !== 1n) throw new FormatError(this.idxFile, `version is ${version}, expected 1`);
      const code = view.getUint8(17);
      const dtype = DTYPE_CODES[code];
      if (!dtype) throw new FormatError(this.idxFile, `dtype code is ${code}, expected one of 1-8`);
      this.dtype = dtype.dtype;
      this.itemSize = dtype.itemSize;
      const n = view.getBigUint64(18, true);
      const d = view.getBigUint64(26, true);
      const expected = BigInt(INDEX_HEADER_BYTES) + 12n * n + 8n * d;
      if (BigInt(idxBytes) < expected) {
        throw new FormatError(
          this.idxFile,
          `truncated: ${idxBytes} bytes, expected ${expected} for ${n} items and ${d} doc_idx entries`,
        );
      }
      if (BigInt(idxBytes) > expected) {
        throw new FormatError(
          this.idxFile,
          `${BigInt(idxBytes) - expected} bytes past the end of doc_idx (expected ${expected} bytes for ${n} items and ${d} doc_idx entries)`,
        );
      }
      this.length = Number(n);
      this.docIdxLength = Number(d);
      this.bin = ShardedFile.open(binPath(prefix));
      this.checkSamePair();
      if (idxBytes <= fullCheckMaxIndexBytes) this.verify();
      else this.checkEnds();
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /**
   * The .idx we hold must still be the one at its path after the .bin was opened: a writer swaps the
   * .idx out before the .bin in (IndexedDatasetWriter.finish), so an old .idx beside a new .bin shows
   * up here as a changed or missing .idx.
   */
  private checkSamePair(): void {
    const held = fstatSync(this.idxFd);
    const now = existsSync(this.idxFile) ? statSync(this.idxFile) : undefined;
    if (!now || now.ino !== held.ino || now.dev !== held.dev) {
      throw new FormatError(
        this.idxFile,
        'was replaced while the dataset was being opened (tokenized again?); open it again once the writer has finished',
      );
    }
  }

  /** The first item starts at byte 0 and the last ends exactly at the end of the .bin. */
  private checkEnds(): void {
    const end = this.length === 0 ? 0 : this.pointer(this.length - 1) + this.size(this.length - 1) * this.itemSize;
    if (this.length > 0 && this.pointer(0) !== 0)
      throw new FormatError(this.idxFile, `pointers[0] is ${this.pointer(0)}, expected 0`);
    if (end !== this.bin.size) {
      const problem = end > this.bin.size ? 'shorter' : 'longer';
      throw new FormatError(
        binPath(this.prefix),
        `${problem} than the index says: ${this.bin.size} bytes, the last item ends at byte ${end} (${this.idxFile} belongs to other data?)`,
      );
    }
  }

  /**
   * Opens `<prefix>.idx` and `<prefix>.bin` (or its shards); `prefix` may end in .bin or .idx. An index
   * up to `fullCheckMaxIndexBytes` (64 MiB) is verified in full at once.
   */
  static open(prefix: string, options: { fullCheckMaxIndexBytes?: number } = {}): IndexedDataset {
    return new IndexedDataset(datasetPrefix(prefix), options.fullCheckMaxIndexBytes ?? FULL_CHECK_MAX_INDEX_BYTES);
  }

  private readIndexBytes(position: number, length: number): Uint8Array {
    const bytes = new Uint8Array(length);
    let got = 0;
    while (got < length) {
      const n = readSync(this.idxFd, bytes, got, length - got, position + got);
      if (n === 0) throw new FormatError(this.idxFile, `truncated at byte ${position + got}`);
      got += n;
    }
    return bytes;
  }

  private get pointersOffset(): number {
    return INDEX_HEADER_BYTES + 4 * this.length;
  }

  /** Tokens per item, loaded from the index on first use. */
  get sizes(): Int32Array {
    if (!this.sizesCache) {
      const bytes = this.readIndexBytes(INDEX_HEADER_BYTES, 4 * this.length);
      this.sizesCache = new Int32Array(bytes.buffer, 0, this.length);
    }
    return this.sizesCache;
  }

  /** The index's doc_idx (item index where each document starts), loaded on first use. */
  get docIdx(): BigInt64Array {
    if (!this.docIdxCache) {
      const bytes = this.readIndexBytes(this.pointersOffset + 8 * this.length, 8 * this.docIdxLength);
      this.docIdxCache = new BigInt64Array(bytes.buffer, 0, this.docIdxLength);
    }
    return this.docIdxCache;
  }

  /** sha256 (hex) of sizes[start, stop) as int32 little-endian bytes, streamed from the index. */
  sizesSha256(start: number, stop: number): string {
    if (!(Number.isInteger(start) && Number.isInteger(stop) && 0 <= start && start <= stop && stop <= this.length)) {
      throw new DataError(
        `${this.prefix}: items [${start}, ${stop}) are out of range; the dataset has ${this.length} items`,
      );
    }
    const hash = createHash('sha256');
    if (this.sizesCache)
      return hash
        .update(new Uint8Array(this.sizesCache.buffer, this.sizesCache.byteOffset + 4 * start, 4 * (stop - start)))
        .digest('hex');
    for (let at = start; at < stop; at += CHUNK_ITEMS) {
      hash.update(this.readIndexBytes(INDEX_HEADER_BYTES + 4 * at, 4 * Math.min(CHUNK_ITEMS, stop - at)));
    }
    return hash.digest('hex');
  }

  /** Size in bytes of the .bin (all shards together). */
  get binBytes(): number {
    return this.bin.size;
  }

  get totalTokens(): number {
    const sizes = this.sizes;
    let total = 0;
    for (let i = 0; i < sizes.length; i++) total += sizes[i]!;
    return total;
  }

  private checkItem(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) {
      throw new DataError(`${this.prefix}: item ${i} is out of range; the dataset has ${this.length} items`);
    }
  }

  size(i: number): number {
    this.checkItem(i);
    if (this.sizesCache) return this.sizesCache[i]!;
    return new DataView(this.readIndexBytes(INDEX_HEADER_BYTES + 4 * i, 4).buffer).getInt32(0, true);
  }

  /** Byte offset of item i in the .bin. */
  pointer(i: number): number {
    this.checkItem(i);
    const p = new DataView(this.readIndexBytes(this.pointersOffset + 8 * i, 8).buffer).getBigInt64(0, true);
    return Number(p);
  }

  /** The tokens of item i. */
  document(i: number): Int32Array {
    return this.read(i, 0, this.size(i));
  }

  /** `length` tokens of item i from token `offset`, as GPT-NeoX's `get(i, offset, length)`. */
  read(i: number, offset: number, length: number): Int32Array {
    const size = this.size(i);
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > size) {
      throw new DataError(
        `${this.prefix}: tokens [${offset}, ${offset + length}) of item ${i} are out of range; it has ${size}`,
      );
    }
    const start = this.pointer(i);
    this.checkExtent(i, start, size);
    return this.decode(start + offset * this.itemSize, length);
  }

  /** Items [start, start + count) in one read: their tokens back to back, and their sizes. */
  readItems(start: number, count: number): { tokens: Int32Array; sizes: Int32Array } {
    if (count === 0) return { tokens: new Int32Array(0), sizes: new Int32Array(0) };
    this.checkItem(start);
    this.checkItem(start + count - 1);
    const sizes = this.sizesCache
      ? this.sizesCache.slice(start, start + count)
      : new Int32Array(this.readIndexBytes(INDEX_HEADER_BYTES + 4 * start, 4 * count).buffer);
    let total = 0;
    for (let i = 0; i < count; i++) total += sizes[i]!;
    const first = this.pointer(start);
    const last = this.pointer(start + count - 1);
    if (last !== first + (total - sizes[count - 1]!) * this.itemSize) {
      throw new FormatError(
        this.idxFile,
        `pointers and sizes disagree between items ${start} and ${start + count - 1}`,
      );
    }
    this.checkExtent(start + count - 1, last, sizes[count - 1]!);
    return { tokens: this.decode(first, total), sizes };
  }

  private checkExtent(i: number, pointer: number, size: number): void {
    if (size < 0) throw new FormatError(this.idxFile, `sizes[${i}] is ${size}, expected a count ≥ 0`);
    if (pointer < 0 || pointer % this.itemSize !== 0) {
      throw new FormatError(
        this.idxFile,
        `pointers[${i}] is ${pointer}, expected a non-negative multiple of ${this.itemSize}`,
      );
    }
    if (pointer + size * this.itemSize > this.bin.size) {
      throw new FormatError(
        binPath(this.prefix),
        `shorter than the index says: ${this.bin.size} bytes, item ${i} ends at byte ${pointer + size * this.itemSize}`,
      );
    }
  }

  private decode(position: number, count: number): Int32Array {
    const bytes = new Uint8Array(count * this.itemSize);
    this.bin.readInto(position, bytes);
    switch (this.dtype) {
      case 'int32':
        return new Int32Array(bytes.buffer);
      case 'uint16':
        return new Int32Array(new Uint16Array(bytes.buffer));
      case 'int16':
        return new Int32Array(new Int16Array(bytes.buffer));
      case 'uint8':
        return new Int32Array(bytes);
      case 'int8':
        return new Int32Array(new Int8Array(bytes.buffer));
      case 'int64': {
        const wide = new BigInt64Array(bytes.buffer);
        const out = new Int32Array(count);
        for (let i = 0; i < count; i++) {
          const v = wide[i]!;
          if (v < -0x80000000n || v > 0x7fffffffn)
            throw new FormatError(binPath(this.prefix), `token ${v} does not fit int32`);
          out[i] = Number(v);
        }
        return out;
      }
      default:
        throw new FormatError(this.idxFile, `dtype ${this.dtype} does not hold token ids`);
    }
  }

  /**
   * Checks the whole index against itself and the .bin: sizes ≥ 0, pointers[i] = Σ sizes[<i] ·
   * itemsize, and the last item ends exactly at the end of the .bin. Streams the index in chunks.
   */
  verify(): void {
    let expected = 0;
    for (let start = 0; start < this.length; start += CHUNK_ITEMS) {
      const count = Math.min(CHUNK_ITEMS, this.length - start);
      const sizes = new Int32Array(this.readIndexBytes(INDEX_HEADER_BYTES + 4 * start, 4 * count).buffer);
      const pointers = new BigInt64Array(this.readIndexBytes(this.pointersOffset + 8 * start, 8 * count).buffer);
      for (let i = 0; i < count; i++) {
        if (sizes[i]! < 0)
          throw new FormatError(this.idxFile, `sizes[${start + i}] is ${sizes[i]}, expected a count ≥ 0`);
        if (Number(pointers[i]!) !== expected) {
          throw new FormatError(
            this.idxFile,
            `pointers[${start + i}] is ${pointers[i]}, expected ${expected} (the sum of the sizes before it × ${this.itemSize}): pointers and sizes are inconsistent`,
          );
        }
        expected += sizes[i]! * this.itemSize;
      }
    }
    if (expected > this.bin.size) {
      throw new FormatError(
        binPath(this.prefix),
        `shorter than the index says: ${this.bin.size} bytes, expected ${expected}`,
      );
    }
    if (expected < this.bin.size) {
      throw new FormatError(
        binPath(this.prefix),
        `longer than the index says: ${this.bin.size} bytes, expected ${expected}`,
      );
    }
  }

  close(): void {
    try {
      closeSync(this.idxFd);
    } catch {
      // already closed
    }
    this.bin?.close();
  }
}
