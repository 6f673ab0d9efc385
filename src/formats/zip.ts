/**
 * Read-only access to uncompressed ("stored") zip archives, as torch.save writes them.
 * Layout read: End of Central Directory (+ Zip64 locator and record), the central directory,
 * then each entry's local header, whose own extra-field length fixes where the data starts.
 */
import { FormatError } from '../util/errors.js';
import type { RandomAccessFile } from './file-io.js';

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
const EOCD_SIZE = 22;
const ZIP64_LOCATOR_SIZE = 20;
const ZIP64_EOCD_MIN_SIZE = 56;
const CENTRAL_SIZE = 46;
const LOCAL_SIZE = 30;
const MAX_COMMENT = 0xffff;
const ZIP64_EXTRA_ID = 0x0001;
const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;

export interface ZipEntry {
  name: string;
  /** Absolute file offset of the entry's first data byte. */
  dataOffset: number;
  size: number;
}

function u64(view: DataView, at: number, file: string, what: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(file, `zip ${what} ${v} is too large`);
  return Number(v);
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A name is safe when it is relative and never climbs out of the archive with "..". */
function isSafeEntryName(name: string): boolean {
  if (name === '' || name.startsWith('/') || name.startsWith('\\') || /^[A-Za-z]:/.test(name) || name.includes('\0'))
    return false;
  return !name.split(/[/\\]/).includes('..');
}

interface Directory {
  entries: number;
  offset: number;
  size: number;
}

function findDirectory(file: RandomAccessFile): Directory {
  const fail = (message: string): never => {
    throw new FormatError(file.path, message);
  };
  if (file.size < EOCD_SIZE) fail(`not a zip archive: only ${file.size} bytes`);
  const tailLength = Math.min(file.size, EOCD_SIZE + MAX_COMMENT + ZIP64_LOCATOR_SIZE);
  const tailStart = file.size - tailLength;
  const tail = file.read(tailStart, tailLength, 'zip end records');
  const view = viewOf(tail);

  let eocd = -1;
  for (let at = tailLength - EOCD_SIZE; at >= 0; at--) {
    // The record must end exactly at the end of the file, after its comment.
    if (view.getUint32(at, true) === EOCD_SIG && at + EOCD_SIZE + view.getUint16(at + 20, true) === tailLength) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) {
    return fail(
      'not a zip archive (no end-of-central-directory record; a truncated file, or a torch.save file from before PyTorch 1.6)',
    );
  }
  if (view.getUint16(eocd + 4, true) !== 0 && view.getUint16(eocd + 4, true) !== U16_MAX)
    fail('multi-disk zip archives are not supported');
  const dir: Directory = {
    entries: view.getUint16(eocd + 10, true),
    size: view.getUint32(eocd + 12, true),
    offset: view.getUint32(eocd + 16, true),
  };

  const locator = eocd - ZIP64_LOCATOR_SIZE;
  if (locator >= 0 && view.getUint32(locator, true) === ZIP64_LOCATOR_SIG) {
    const recordAt = u64(view, locator + 8, file.path, 'Zip64 record offset');
    if (recordAt + ZIP64_EOCD_MIN_SIZE > tailStart + locator)
      fail(`Zip64 end record offset ${recordAt} is out of range`);
    const record = viewOf(file.read(recordAt, ZIP64_EOCD_MIN_SIZE, 'Zip64 end record'));
    if (record.getUint32(0, true) !== ZIP64_EOCD_SIG) fail(`no Zip64 end record at offset ${recordAt}`);
    dir.entries = u64(record, 32, file.path, 'entry count');
    dir.size = u64(record, 40, file.path, 'central directory size');
    dir.offset = u64(record, 48, file.path, 'central directory offset');
  }
  if (dir.offset + dir.size > file.size)
    fail(
      `central directory (offset ${dir.offset}, ${dir.size} bytes) runs past the end of the file (${file.size} bytes; truncated?)`,
    );
  return dir;
}

/** Lists every entry of a stored zip, checking names, methods and bounds; reads no entry data. */
export function readZipDirectory(file: RandomAccessFile): Map<string, ZipEntry> {
  const fail = (message: string): never => {
    throw new FormatError(file.path, message);
  };
  const dir = findDirectory(file);
  const central = file.read(dir.offset, dir.size, 'zip central directory');
  const view = viewOf(central);
  const entries = new Map<string, ZipEntry>();
  const utf8 = new TextDecoder('utf-8', { fatal: false });
  let at = 0;
  for (let i = 0; i < dir.entries; i++) {
    if (at + CENTRAL_SIZE > central.length || view.getUint32(at, true) !== CENTRAL_SIG)
      fail(`zip central directory entry ${i} is malformed`);
    const flags = view.getUint16(at + 8, true);
    const method = view.getUint16(at + 10, true);
    let compressedSize = view.getUint32(at + 20, true);
    let size = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    let localOffset = view.getUint32(at + 42, true);
    const end = at + CENTRAL_SIZE + nameLength + extraLength + commentLength;
    if (end > central.length) fail(`zip central directory entry ${i} runs past the directory`);
    const name = utf8.decode(central.subarray(at + CENTRAL_SIZE, at + CENTRAL_SIZE + nameLength));

    // Zip64 extended information: the 64-bit values of exactly the fields saturated above, in this order.
    const extra = viewOf(
      central.subarray(at + CENTRAL_SIZE + nameLength, at + CENTRAL_SIZE + nameLength + extraLength),
    );
    for (let e = 0; e + 4 <= extra.byteLength; ) {
      const id = extra.getUint16(e, true);
      const length = extra.getUint16(e + 2, true);
      if (e + 4 + length > extra.byteLength) fail(`zip entry ${name}: extra field runs past its end`);
      if (id === ZIP64_EXTRA_ID) {
        const field = viewOf(
          central.subarray(at + CENTRAL_SIZE + nameLength + e + 4, at + CENTRAL_SIZE + nameLength + e + 4 + length),
        );
        let p = 0;
        const next = (): number => {
          if (p + 8 > field.byteLength) fail(`zip entry ${name}: Zip64 extra field is too short`);
          const v = u64(field, p, file.path, `entry ${name} size or offset`);
          p += 8;
          return v;
        };
        if (size === U32_MAX) size = next();
        if (compressedSize === U32_MAX) compressedSize = next();
        if (localOffset === U32_MAX) localOffset = next();
      }
      e += 4 + length;
    }
    at = end;

    if (!isSafeEntryName(name)) fail(`zip entry name ${JSON.stringify(name)} is absolute or contains ".."`);
    if (entries.has(name)) fail(`zip entry ${name} appears twice`);
    if ((flags & 1) !== 0) fail(`zip entry ${name} is encrypted`);
    if (method !== 0) fail(`zip entry ${name} is compressed (method ${method}); only stored entries are supported`);
    if (compressedSize !== size)
      fail(`zip entry ${name} is stored but its sizes differ (${compressedSize} vs ${size})`);
    entries.set(name, { name, dataOffset: localOffset, size });
  }

  // The data offset comes from the local header, whose extra field (alignment padding) can differ from the central one.
  for (const entry of entries.values()) {
    const localAt = entry.dataOffset;
    if (localAt + LOCAL_SIZE > dir.offset)
      fail(`zip entry ${entry.name}: local header offset ${localAt} is out of range`);
    const local = viewOf(file.read(localAt, LOCAL_SIZE, `zip entry ${entry.name} local header`));
    if (local.getUint32(0, true) !== LOCAL_SIG) fail(`zip entry ${entry.name}: no local header at offset ${localAt}`);
    const nameLength = local.getUint16(26, true);
    const extraLength = local.getUint16(28, true);
    const localName = utf8.decode(file.read(localAt + LOCAL_SIZE, nameLength, `zip entry ${entry.name} local name`));
    if (localName !== entry.name) fail(`zip entry ${entry.name}: local header names it ${JSON.stringify(localName)}`);
    entry.dataOffset = localAt + LOCAL_SIZE + nameLength + extraLength;
    if (entry.dataOffset + entry.size > dir.offset) {
      fail(
        `zip entry ${entry.name}: data (offset ${entry.dataOffset}, ${entry.size} bytes) runs into the central directory at ${dir.offset}`,
      );
    }
  }
  return entries;
}
