/**
 * numpy .npy files: "\x93NUMPY", version (1.0: u16 header length; 2.0/3.0: u32), then a Python
 * dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...), } padded with spaces and a
 * newline so the data starts on a 64-byte boundary, then the C-order little-endian data.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { AtomicFileWriter } from '../util/atomic.js';
import { DataError, FormatError } from '../util/errors.js';
import { RandomAccessFile } from './file-io.js';

export type NpyArray =
  | Int32Array
  | BigInt64Array
  | Uint16Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | Uint8Array;
export type NpyDType = '<i4' | '<i8' | '<u2' | '<u4' | '<f4' | '<f8' | '|u1';

interface NpyType {
  descr: NpyDType;
  size: number;
  make(length: number): NpyArray;
}

const TYPES: NpyType[] = [
  { descr: '<i4', size: 4, make: (n) => new Int32Array(n) },
  { descr: '<i8', size: 8, make: (n) => new BigInt64Array(n) },
  { descr: '<u2', size: 2, make: (n) => new Uint16Array(n) },
  { descr: '<f4', size: 4, make: (n) => new Float32Array(n) },
  { descr: '<f8', size: 8, make: (n) => new Float64Array(n) },
  { descr: '|u1', size: 1, make: (n) => new Uint8Array(n) },
  { descr: '<u4', size: 4, make: (n) => new Uint32Array(n) },
];
/** Spellings numpy accepts for the same single-byte type. */
const DESCR_ALIASES: Record<string, NpyDType> = { '<u1': '|u1', u1: '|u1' };

const MAGIC = Buffer.from('\x93NUMPY', 'latin1');
const ARRAY_ALIGN = 64;
/** numpy leaves room for the first dimension to grow to this many digits. */
const GROWTH_AXIS_MAX_DIGITS = 21;
const MAX_HEADER_BYTES = 1 << 20;

export interface NpyHeader {
  dtype: NpyDType;
  shape: number[];
  /** File offset of the first data byte. */
  dataOffset: number;
}

function typeOf(descr: string): NpyType | undefined {
  const canonical = DESCR_ALIASES[descr] ?? descr;
  return TYPES.find((t) => t.descr === canonical);
}

function typeOfArray(data: NpyArray): NpyType {
  if (data instanceof Int32Array) return TYPES[0]!;
  if (data instanceof BigInt64Array) return TYPES[1]!;
  if (data instanceof Uint16Array) return TYPES[2]!;
  if (data instanceof Float32Array) return TYPES[3]!;
  if (data instanceof Float64Array) return TYPES[4]!;
  if (data instanceof Uint8Array) return TYPES[5]!;
  if (data instanceof Uint32Array) return TYPES[6]!;
  throw new DataError(`writeNpy: unsupported array type ${(data as object).constructor.name}`);
}

/** Parses the header dict literal, e.g. {'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }. */
function parseHeaderDict(path: string, text: string): { descr: string; fortranOrder: boolean; shape: number[] } {
  const fail = (message: string): never => {
    throw new FormatError(path, `npy header ${JSON.stringify(text.trim())}: ${message}`);
  };
  const m = /^\s*\{\s*(.*?),?\s*\}\s*$/s.exec(text);
  if (!m) return fail('is not a dict literal');
  const fields = new Map<string, string>();
  const entry = /\s*(['"])(\w+)\1\s*:\s*('[^']*'|"[^"]*"|True|False|\([^)]*\))\s*(?:,|$)/y;
  const body = m[1]!;
  let at = 0;
  while (at < body.length) {
    entry.lastIndex = at;
    const e = entry.exec(body);
    if (!e) fail(`cannot parse from character ${at}`);
    if (fields.has(e![2]!)) fail(`key ${e![2]} appears twice`);
    fields.set(e![2]!, e![3]!);
    at = entry.lastIndex;
  }
  const keys = [...fields.keys()].sort().join(',');
  if (keys !== 'descr,fortran_order,shape') fail('expected exactly the keys descr, fortran_order, shape');

  const descrLiteral = fields.get('descr')!;
  if (!/^['"]/.test(descrLiteral)) fail('descr is not a string');
  const shapeLiteral = fields.get('shape')!;
  if (!shapeLiteral.startsWith('(')) fail('shape is not a tuple');
  const dims = shapeLiteral
    .slice(1, -1)
    .split(',')
    .map((s) => s.trim());
  if (dims.length > 1 && dims[dims.length - 1] === '') dims.pop(); // "(3,)"
  if (dims.length === 1 && dims[0] === '') dims.pop(); // "()"
  const shape = dims.map((d) => (/^[0-9]+L?$/.test(d) ? Number(d.replace('L', '')) : NaN));
  if (shape.some((d) => !Number.isSafeInteger(d))) fail('shape is not a tuple of non-negative integers');
  if (!Number.isSafeInteger(shape.reduce((a, b) => a * b, 1))) fail('shape has too many elements');
  const fortran = fields.get('fortran_order')!;
  if (fortran !== 'True' && fortran !== 'False') fail('fortran_order is not True or False');
  return { descr: descrLiteral.slice(1, -1), fortranOrder: fortran === 'True', shape };
}

function readHeader(file: RandomAccessFile): NpyHeader & { type: NpyType } {
  const fail = (message: string): never => {
    throw new FormatError(file.path, message);
  };
  if (file.size < 10) fail(`file is ${file.size} bytes, too short for an npy header`);
  const prefix = file.read(0, 12 <= file.size ? 12 : 10, 'npy header');
  if (!Buffer.from(prefix.subarray(0, 6)).equals(MAGIC)) fail('not an npy file (no \\x93NUMPY magic)');
  const [major, minor] = [prefix[6]!, prefix[7]!];
  if (![1, 2, 3].includes(major) || minor !== 0)
    fail(`npy format version ${major}.${minor} is not supported (1.0, 2.0 and 3.0 are)`);
  const view = new DataView(prefix.buffer);
  if (major > 1 && prefix.length < 12) fail('file is too short for an npy 2.0 header');
  const headerStart = major === 1 ? 10 : 12;
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (headerLength > MAX_HEADER_BYTES) fail(`npy header length ${headerLength} is implausibly large`);
  const bytes = file.read(headerStart, headerLength, 'npy header');
  const text = Buffer.from(bytes).toString(major === 3 ? 'utf8' : 'latin1');
  const { descr, fortranOrder, shape } = parseHeaderDict(file.path, text);
  const type = typeOf(descr);
  if (!type)
    return fail(`npy dtype ${JSON.stringify(descr)} is not supported (${TYPES.map((t) => t.descr).join(' ')})`);
  if (fortranOrder && shape.filter((d) => d > 1).length > 1)
    fail('Fortran-order arrays are not supported (save a C-order array)');
  const dataOffset = headerStart + headerLength;
  const dataBytes = shape.reduce((a, b) => a * b, 1) * type.size;
  if (dataOffset + dataBytes !== file.size) {
    const problem = dataOffset + dataBytes > file.size ? 'truncated' : 'has trailing bytes';
    fail(
      `npy data is ${file.size - dataOffset} bytes but ${type.descr} shape (${shape.join(', ')}) needs ${dataBytes}: the file is ${problem}`,
    );
  }
  return { dtype: type.descr, shape, dataOffset, type };
}

/** The header alone, for callers that read the data themselves (positioned reads of big arrays). */
export function readNpyHeader(path: string): NpyHeader {
  const file = new RandomAccessFile(path);
  try {
    const { dtype, shape, dataOffset } = readHeader(file);
    return { dtype, shape, dataOffset };
  } finally {
    file.close();
  }
}

export function readNpy(path: string): { dtype: NpyDType; shape: number[]; data: NpyArray } {
  const file = new RandomAccessFile(path);
  try {
    const { type, shape, dataOffset } = readHeader(file);
    const data = type.make(shape.reduce((a, b) => a * b, 1));
    file.readInto(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), dataOffset, 'npy data');
    return { dtype: type.descr, shape, data };
  } finally {
    file.close();
  }
}

/** The header bytes numpy's np.save writes for this dtype and shape (version 1.0 unless too long). */
export function npyHeader(descr: NpyDType, shape: readonly number[]): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  if (shape.length > 0) dict += ' '.repeat(GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length);
  const body = Buffer.from(dict, 'latin1');
  for (const [major, lengthBytes] of [
    [1, 2],
    [2, 4],
  ] as const) {
    const headerLength = body.length + 1;
    const pad = ARRAY_ALIGN - ((MAGIC.length + 2 + lengthBytes + headerLength) % ARRAY_ALIGN);
    const total = headerLength + pad;
    if (major === 1 && total >= 0x10000) continue;
    const prefix = Buffer.alloc(MAGIC.length + 2 + lengthBytes);
    MAGIC.copy(prefix);
    prefix[6] = major;
    prefix[7] = 0;
    if (major === 1) prefix.writeUInt16LE(total, 8);
    else prefix.writeUInt32LE(total, 8);
    return Buffer.concat([prefix, body, Buffer.alloc(pad, 0x20), Buffer.from('\n')]);
  }
  throw new DataError('npy header too long');
}

const WRITE_CHUNK = 1 << 26;

/** Writes a C-order array exactly as np.save would, atomically. */
export async function writeNpy(path: string, array: { shape: number[]; data: NpyArray }): Promise<void> {
  const { shape, data } = array;
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new DataError(`writeNpy ${path}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  const numel = shape.reduce((a, b) => a * b, 1);
  if (numel !== data.length)
    throw new DataError(
      `writeNpy ${path}: shape (${shape.join(', ')}) has ${numel} elements but the data has ${data.length}`,
    );
  const type = typeOfArray(data);
  mkdirSync(dirname(path), { recursive: true });
  const out = new AtomicFileWriter(path);
  try {
    out.write(npyHeader(type.descr, shape));
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    for (let at = 0; at < bytes.length; at += WRITE_CHUNK) out.write(bytes.subarray(at, at + WRITE_CHUNK));
    out.commit();
  } catch (e) {
    out.abort();
    throw e;
  }
}
