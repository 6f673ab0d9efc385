/** What every weights file looks like to the rest of pythia-ts, whatever its format on disk. */
import { FormatError } from '../util/errors.js';
import { bf16ToF32, f16ToF32 } from './float16.js';

export type StoredDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const STORED_DTYPE_SIZE: Record<StoredDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export function isStoredDType(s: unknown): s is StoredDType {
  return typeof s === 'string' && Object.hasOwn(STORED_DTYPE_SIZE, s);
}

/** Where a tensor's bytes lie in its file, for reads that do not go through its source (layer streaming). */
export interface TensorLocation {
  path: string;
  offset: number;
  byteLength: number;
  dtype: StoredDType;
  shape: number[];
}

export interface TensorInfo {
  name: string;
  dtype: StoredDType;
  shape: number[];
}

/** One checkpoint's weights. Tensors are read on demand, never the whole file at once. */
export interface TensorSource {
  readonly file: string;
  list(): TensorInfo[];
  /** Converts F16/BF16/F64/F32 to f32; refuses integer and bool tensors. */
  readFloat32(name: string): Float32Array;
  /** Little-endian C-order bytes in a fresh buffer (byteOffset 0, so typed views of it are aligned). */
  readRaw(name: string): { dtype: StoredDType; shape: number[]; data: Uint8Array };
  /** The tensor's place in its file, where the format stores it plainly (safetensors); else undefined. */
  locate?(name: string): TensorLocation | undefined;
  close(): void;
}

export interface TensorToWrite {
  name: string;
  dtype: StoredDType;
  shape: number[];
  data: ArrayBufferView;
}

/** Number of elements of a shape; every dimension must be a non-negative safe integer. */
export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function isValidShape(shape: unknown): shape is number[] {
  if (!Array.isArray(shape)) return false;
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) return false;
    n *= d;
  }
  return Number.isSafeInteger(n);
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/** A tensor's little-endian bytes (from `readRaw`, so aligned) as float32. */
export function bytesToFloat32(file: string, name: string, dtype: StoredDType, bytes: Uint8Array): Float32Array {
  const n = bytes.byteLength / STORED_DTYPE_SIZE[dtype];
  switch (dtype) {
    case 'F32':
      return new Float32Array(bytes.buffer, bytes.byteOffset, n);
    case 'F16':
      return f16ToF32(new Uint16Array(bytes.buffer, bytes.byteOffset, n));
    case 'BF16':
      return bf16ToF32(new Uint16Array(bytes.buffer, bytes.byteOffset, n));
    case 'F64':
      return Float32Array.from(new Float64Array(bytes.buffer, bytes.byteOffset, n));
    default:
      throw new FormatError(file, `tensor ${name} has dtype ${dtype}, which is not a floating-point type`);
  }
}
