/**
 * safetensors: u64 LE header length N, N bytes of JSON (space-padded), then the tensor bytes.
 * Each header entry is {"dtype", "shape", "data_offsets": [begin, end)} relative to the byte
 * after the header; the optional "__metadata__" maps strings to strings.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { AtomicFileWriter } from '../util/atomic.js';
import { DataError, FormatError } from '../util/errors.js';
import { RandomAccessFile } from './file-io.js';
import { bf16ToF32, f16ToF32 } from './float16.js';
import { isJsonObject, JsonSyntaxError, type JsonValue, parseStrictJson } from './strict-json.js';
import {
  bytesToFloat32,
  formatShape,
  isStoredDType,
  isValidShape,
  numelOf,
  STORED_DTYPE_SIZE,
  type StoredDType,
  type TensorInfo,
  type TensorLocation,
  type TensorSource,
  type TensorToWrite,
} from './tensor-file.js';

/** The reference implementation's limit (safetensors' MAX_HEADER_SIZE). */
const MAX_HEADER_BYTES = 100_000_000;
/**
 * Values (objects, arrays, scalars) a header may hold: room for 65536 tensors of any usual rank.
 * A header of millions of zero-size entries would otherwise take some 20 bytes of memory per byte.
 */
const MAX_HEADER_VALUES = 1 << 20;
const METADATA_KEY = '__metadata__';

interface StoredTensor extends TensorInfo {
  begin: number;
  end: number;
}

export interface SafetensorsSource extends TensorSource {
  readonly metadata: Record<string, string>;
}

export function openSafetensors(path: string): SafetensorsSource {
  const file = new RandomAccessFile(path);
  try {
    return new SafetensorsReader(file, readHeader(file));
  } catch (e) {
    file.close();
    throw e;
  }
}

interface Header {
  dataStart: number;
  metadata: Record<string, string>;
  tensors: StoredTensor[];
}

function readHeader(file: RandomAccessFile): Header {
  const fail = (message: string): never => {
    throw new FormatError(file.path, message);
  };
  if (file.size < 8) fail(`file is ${file.size} bytes, too short for the 8-byte header length`);
  const lengthBytes = file.read(0, 8, 'header length');
  const n = new DataView(lengthBytes.buffer).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) fail(`header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
  const headerLength = Number(n);
  if (8 + headerLength > file.size)
    fail(`header length ${headerLength} runs past the end of the file (${file.size} bytes; truncated?)`);

  let text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(file.read(8, headerLength, 'header'));
  } catch {
    fail('header is not valid UTF-8');
  }
  let json: JsonValue = null;
  try {
    json = parseStrictJson(text, { maxValues: MAX_HEADER_VALUES });
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    fail(`header is not valid JSON: ${e.message}`);
  }
  if (!isJsonObject(json)) return fail('header JSON is not an object');

  let metadata: Record<string, string> = {};
  const tensors: StoredTensor[] = [];
  for (const [name, entry] of Object.entries(json)) {
    if (name === METADATA_KEY) {
      metadata = parseMetadata(file.path, entry);
      continue;
    }
    const where = `tensor ${JSON.stringify(name)}`;
    if (!isJsonObject(entry)) fail(`${where}: header entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, JsonValue>;
    if (!isStoredDType(dtype))
      fail(`${where}: dtype ${JSON.stringify(dtype)} is not one of ${Object.keys(STORED_DTYPE_SIZE).join(' ')}`);
    if (!isValidShape(shape)) fail(`${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)
    ) {
      fail(`${where}: data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(`${where}: data_offsets [${begin},${end}] end before they begin`);
    const validDtype = dtype as StoredDType;
    const validShape = shape as number[];
    const needed = numelOf(validShape) * STORED_DTYPE_SIZE[validDtype];
    if (end - begin !== needed) {
      fail(
        `${where}: data_offsets [${begin},${end}] hold ${end - begin} bytes but ${validDtype} ${formatShape(validShape)} needs ${needed}`,
      );
    }
    tensors.push({ name, dtype: validDtype, shape: validShape, begin, end });
  }

  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const t of tensors) {
    if (t.begin !== expected) {
      const problem = t.begin < expected ? 'overlaps the previous tensor' : 'leaves a gap after the previous tensor';
      fail(`tensor ${JSON.stringify(t.name)}: data_offsets start at ${t.begin}, expected ${expected} (${problem})`);
    }
    expected = t.end;
  }
  const dataStart = 8 + headerLength;
  if (dataStart + expected !== file.size) {
    const problem =
      dataStart + expected > file.size
        ? 'runs past the end of the file (truncated?)'
        : 'does not reach the end of the file';
    fail(`tensor data ends at byte ${dataStart + expected} but the file has ${file.size} bytes: the data ${problem}`);
  }
  return { dataStart, metadata, tensors };
}

function parseMetadata(path: string, entry: JsonValue): Record<string, string> {
  if (!isJsonObject(entry)) throw new FormatError(path, `${METADATA_KEY} is not an object of strings`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(entry)) {
    if (typeof v !== 'string')
      throw new FormatError(path, `${METADATA_KEY}.${k} is ${JSON.stringify(v)}, expected a string`);
    out[k] = v;
  }
  return out;
}

/** Values widened at a time from 16-bit floats (1 MiB read). */
const PIECE = 1 << 19;

class SafetensorsReader implements SafetensorsSource {
  private readonly byName: Map<string, StoredTensor>;
  private piece: Uint16Array | undefined;
  readonly metadata: Record<string, string>;

  constructor(
    private readonly handle: RandomAccessFile,
    private readonly header: Header,
  ) {
    this.byName = new Map(header.tensors.map((t) => [t.name, t]));
    this.metadata = header.metadata;
  }

  get file(): string {
    return this.handle.path;
  }

  list(): TensorInfo[] {
    return this.header.tensors.map(({ name, dtype, shape }) => ({ name, dtype, shape: [...shape] }));
  }

  private tensor(name: string): StoredTensor {
    const t = this.byName.get(name);
    if (!t) throw new FormatError(this.file, `no tensor named ${JSON.stringify(name)}`);
    return t;
  }

  readRaw(name: string): { dtype: StoredDType; shape: number[]; data: Uint8Array } {
    const t = this.tensor(name);
    const data = this.handle.read(this.header.dataStart + t.begin, t.end - t.begin, `tensor ${name}`);
    return { dtype: t.dtype, shape: [...t.shape], data };
  }

  locate(name: string): TensorLocation {
    const t = this.tensor(name);
    const offset = this.header.dataStart + t.begin;
    return { path: this.file, offset, byteLength: t.end - t.begin, dtype: t.dtype, shape: [...t.shape] };
  }

  /** 16-bit floats are widened piece by piece through one small buffer, never held whole beside the result. */
  readFloat32(name: string): Float32Array {
    const t = this.tensor(name);
    if (t.dtype !== 'F16' && t.dtype !== 'BF16')
      return bytesToFloat32(this.file, name, t.dtype, this.readRaw(name).data);
    const widen = t.dtype === 'F16' ? f16ToF32 : bf16ToF32;
    const out = new Float32Array((t.end - t.begin) / 2);
    this.piece ??= new Uint16Array(PIECE);
    const bytes = new Uint8Array(this.piece.buffer);
    for (let at = 0; at < out.length; at += PIECE) {
      const n = Math.min(PIECE, out.length - at);
      this.handle.readInto(bytes.subarray(0, 2 * n), this.header.dataStart + t.begin + 2 * at, `tensor ${name}`);
      widen(this.piece.subarray(0, n), out.subarray(at, at + n));
    }
    return out;
  }

  close(): void {
    this.handle.close();
  }
}

/**
 * Order used by the reference writer: dtype alignment descending (the rank of the dtype in
 * safetensors' Dtype enum), then name.
 */
const DTYPE_RANK: Record<StoredDType, number> = {
  BOOL: 0,
  U8: 1,
  I8: 2,
  I16: 5,
  F16: 7,
  BF16: 8,
  I32: 9,
  F32: 11,
  F64: 12,
  I64: 13,
};

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The header exactly as the reference (Rust) writer serializes it, padded to a multiple of 8. */
function safetensorsHeader(tensors: readonly TensorInfo[], metadata: Record<string, string> | null): Buffer {
  const parts: string[] = [];
  if (metadata !== null) {
    const keys = Object.keys(metadata).sort(compareUtf8);
    parts.push(
      `"${METADATA_KEY}":{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`,
    );
  }
  let offset = 0;
  for (const t of tensors) {
    const bytes = numelOf(t.shape) * STORED_DTYPE_SIZE[t.dtype];
    parts.push(
      `${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + bytes}]}`,
    );
    offset += bytes;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Buffer.alloc(Math.ceil(json.length / 8) * 8, 0x20);
  json.copy(padded);
  return padded;
}

/**
 * The length prefix, header and tensors in the order the Python `safetensors` package writes
 * them, after checking names, dtypes, shapes and sizes (`where` names the destination in errors).
 */
function serialisation(
  where: string,
  tensors: readonly TensorToWrite[],
  metadata: Record<string, string> | null,
): { prefix: Buffer[]; ordered: TensorToWrite[] } {
  const seen = new Set<string>();
  for (const t of tensors) {
    const what = `${where}: tensor ${JSON.stringify(t.name)}`;
    if (t.name === METADATA_KEY || seen.has(t.name)) throw new DataError(`${what}: name is reserved or repeated`);
    seen.add(t.name);
    if (!isStoredDType(t.dtype)) throw new DataError(`${what}: unknown dtype ${String(t.dtype)}`);
    if (!isValidShape(t.shape))
      throw new DataError(`${what}: shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`);
    const needed = numelOf(t.shape) * STORED_DTYPE_SIZE[t.dtype];
    if (t.data.byteLength !== needed)
      throw new DataError(
        `${what}: data has ${t.data.byteLength} bytes, ${t.dtype} ${formatShape(t.shape)} needs ${needed}`,
      );
  }
  if (metadata !== null) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new DataError(`${where}: metadata ${k} must be a string`);
    }
  }
  const ordered = [...tensors].sort((a, b) => DTYPE_RANK[b.dtype] - DTYPE_RANK[a.dtype] || compareUtf8(a.name, b.name));
  const header = safetensorsHeader(ordered, metadata);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  return { prefix: [length, header], ordered };
}

const bytesOf = (t: TensorToWrite): Uint8Array => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);

/**
 * A whole safetensors file in memory, byte for byte what `writeSafetensors` writes: for files
 * that go into a folder written in one atomic step. `metadata` as for `writeSafetensors`.
 */
export function safetensorsBytes(
  tensors: readonly TensorToWrite[],
  metadata: Record<string, string> | null = { format: 'pt' },
): Uint8Array {
  const { prefix, ordered } = serialisation('safetensorsBytes', tensors, metadata);
  return Buffer.concat([...prefix, ...ordered.map(bytesOf)]);
}

/**
 * Writes tensors as the Python `safetensors` package does (same order, same header bytes),
 * atomically, streaming each tensor's bytes. `metadata` defaults to {"format":"pt"} as
 * Hugging Face writes it; pass null to leave `__metadata__` out.
 */
export async function writeSafetensors(
  path: string,
  tensors: TensorToWrite[],
  metadata: Record<string, string> | null = { format: 'pt' },
): Promise<void> {
  const { prefix, ordered } = serialisation(`writeSafetensors ${path}`, tensors, metadata);
  mkdirSync(dirname(path), { recursive: true });
  const out = new AtomicFileWriter(path);
  try {
    for (const part of prefix) out.write(part);
    for (const t of ordered) out.write(bytesOf(t));
    out.commit();
  } catch (e) {
    out.abort();
    throw e;
  }
}
