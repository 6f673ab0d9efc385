/**
 * Streaming corpus readers. Formats, chosen by file name:
 *   .txt        documents separated by blank lines (lines empty or all whitespace), lines joined with
 *               "\n" (a CRLF ending counts as "\n"); with txtMode 'file', the whole file is one document.
 *   .jsonl      one JSON object per line, the document in a string field (default "text"); blank lines
 *               are skipped.
 *   .zst        either of the above compressed with Zstandard (the Pile ships `.jsonl.zst`), decoded
 *               as a stream by Node's built-in zstd or, where Node has none, fzstd (./zstd.ts).
 * Memory stays bounded by the longest line (or, in txtMode 'file', by the file). Text must be valid
 * UTF-8; a byte-order mark at the start of a file is dropped.
 */
import { createReadStream } from 'node:fs';
import { pipeline, type Readable, Transform } from 'node:stream';
import { ConfigError, DataError, FormatError } from '../util/errors.js';
import { createZstdDecompressor, type ZstdDecoder } from './zstd.js';

export type TxtMode = 'blocks' | 'file';

export interface CorpusStats {
  /** Documents yielded so far. */
  documents: number;
  /** JSON lines skipped because they were invalid (only with `skipInvalid`). */
  invalidLines: number;
}

export interface ReadOptions {
  /** JSON field holding the document text (default "text"). */
  textField?: string;
  /** How .txt files split into documents (default 'blocks'). */
  txtMode?: TxtMode;
  /** Skip invalid JSON lines and count them in `stats` instead of failing (default false). */
  skipInvalid?: boolean;
  stats?: CorpusStats;
  /** Called with the number of bytes read from disk (compressed bytes for .zst), for progress. */
  onBytes?: (bytes: number) => void;
  /** Zstandard decoder for .zst (default: Node's own where it has one, else fzstd). */
  zstdDecoder?: ZstdDecoder;
}

export interface CorpusRecord {
  text: string;
  file: string;
  /** 1-based line where the document starts (1 in txtMode 'file'). */
  line: number;
  /** The whole JSON object, for .jsonl input. */
  json?: Record<string, unknown>;
}

export type CorpusFormat = 'txt' | 'jsonl';

export function corpusFormat(path: string): { format: CorpusFormat; zstd: boolean } {
  const zstd = path.endsWith('.zst');
  const inner = zstd ? path.slice(0, -'.zst'.length) : path;
  if (inner.endsWith('.jsonl')) return { format: 'jsonl', zstd };
  if (inner.endsWith('.txt')) return { format: 'txt', zstd };
  throw new FormatError(path, 'unknown corpus format: expected a name ending in .txt, .jsonl, .txt.zst or .jsonl.zst');
}

/** Raw bytes of a file, decompressed when it is .zst. */
function openBytes(path: string, zstd: boolean, options: ReadOptions): Readable {
  // Compressed reads come in smaller pieces: each piece's text is decoded at once.
  const file = createReadStream(path, { highWaterMark: zstd ? 1 << 16 : 1 << 20 });
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      options.onBytes?.(chunk.length);
      done(null, chunk);
    },
  });
  const noop = (): void => {};
  return zstd
    ? pipeline(file, counter, createZstdDecompressor(path, options.zstdDecoder), noop)
    : pipeline(file, counter, noop);
}

/** Stream errors from the decompressor become FormatErrors; file-system and our own errors pass through. */
function describeReadError(path: string, zstd: boolean, e: unknown): unknown {
  if (!zstd || !(e instanceof Error) || e instanceof DataError || e instanceof FormatError) return e;
  if ((e as NodeJS.ErrnoException).code !== undefined && (e as NodeJS.ErrnoException).path !== undefined) return e;
  return new FormatError(path, `cannot decompress (${e.message}): not a complete Zstandard file`);
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeLine(path: string, lineNumber: number, bytes: Uint8Array): string {
  try {
    const text = utf8.decode(bytes);
    return lineNumber === 1 && text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  } catch {
    throw new DataError(`${path}:${lineNumber}: invalid UTF-8`);
  }
}

/** Lines of a file without their "\n" (nor a "\r" before it), numbered from 1. */
export async function* readLines(
  path: string,
  zstd: boolean,
  options: ReadOptions = {},
): AsyncGenerator<[string, number]> {
  const source = openBytes(path, zstd, options);
  let pending: Buffer[] = [];
  let lineNumber = 0;
  const emit = (parts: Buffer[]): string => {
    let bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
    return decodeLine(path, ++lineNumber, bytes);
  };
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      let start = 0;
      for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
        pending.push(chunk.subarray(start, nl));
        yield [emit(pending), lineNumber];
        pending = [];
        start = nl + 1;
      }
      if (start < chunk.length) pending.push(chunk.subarray(start));
    }
  } catch (e) {
    throw describeReadError(path, zstd, e);
  } finally {
    source.destroy();
  }
  if (pending.length > 0) yield [emit(pending), lineNumber];
}

async function* readTxtBlocks(path: string, zstd: boolean, options: ReadOptions): AsyncGenerator<CorpusRecord> {
  let block: string[] = [];
  let start = 0;
  for await (const [line, n] of readLines(path, zstd, options)) {
    if (/^\s*$/.test(line)) {
      if (block.length > 0) yield { text: block.join('\n'), file: path, line: start };
      block = [];
    } else {
      if (block.length === 0) start = n;
      block.push(line);
    }
  }
  if (block.length > 0) yield { text: block.join('\n'), file: path, line: start };
}

async function* readTxtFile(path: string, zstd: boolean, options: ReadOptions): AsyncGenerator<CorpusRecord> {
  const parts: Buffer[] = [];
  const source = openBytes(path, zstd, options);
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) parts.push(chunk);
  } catch (e) {
    throw describeReadError(path, zstd, e);
  } finally {
    source.destroy();
  }
  const text = decodeLine(path, 1, Buffer.concat(parts));
  if (text.length > 0) yield { text, file: path, line: 1 };
}

async function* readJsonl(path: string, zstd: boolean, options: ReadOptions): AsyncGenerator<CorpusRecord> {
  const field = options.textField ?? 'text';
  for await (const [line, n] of readLines(path, zstd, options)) {
    if (/^\s*$/.test(line)) continue;
    let value: unknown;
    let problem: string | undefined;
    try {
      value = JSON.parse(line);
    } catch (e) {
      problem = `invalid JSON (${e instanceof Error ? e.message : String(e)})`;
    }
    if (problem === undefined) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) problem = 'expected a JSON object';
      else if (!(field in value)) problem = `field "${field}" is missing`;
      else if (typeof (value as Record<string, unknown>)[field] !== 'string')
        problem = `field "${field}" is not a string`;
    }
    if (problem === undefined) {
      const json = value as Record<string, unknown>;
      yield { text: json[field] as string, file: path, line: n, json };
      continue;
    }
    if (!options.skipInvalid) throw new DataError(`${path}:${n}: ${problem}`);
    if (options.stats) options.stats.invalidLines++;
  }
}

/** Documents of one file with where they came from. */
export async function* readRecords(path: string, options: ReadOptions = {}): AsyncGenerator<CorpusRecord> {
  const { format, zstd } = corpusFormat(path);
  const records =
    format === 'jsonl'
      ? readJsonl(path, zstd, options)
      : (options.txtMode ?? 'blocks') === 'file'
        ? readTxtFile(path, zstd, options)
        : readTxtBlocks(path, zstd, options);
  for await (const record of records) {
    if (options.stats) options.stats.documents++;
    yield record;
  }
}

/** Document texts of one file, streaming. */
export async function* readDocuments(path: string, options: ReadOptions = {}): AsyncGenerator<string> {
  for await (const record of readRecords(path, options)) yield record.text;
}

/** Records of several files, in order. Checks every name's format before reading any. */
export async function* readCorpus(paths: readonly string[], options: ReadOptions = {}): AsyncGenerator<CorpusRecord> {
  for (const path of paths) corpusFormat(path);
  for (const path of paths) yield* readRecords(path, options);
}

export function validateTxtMode(value: string): TxtMode {
  if (value === 'blocks' || value === 'file') return value;
  throw new ConfigError(`--txt-mode: expected "blocks" or "file", got "${value}"`);
}
