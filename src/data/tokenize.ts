/**
 * Corpus → MMapIndexedDataset, as GPT-NeoX's `tools/preprocess_data.py` does it: one item per
 * document, empty documents dropped, the EOD id appended to each document when asked. Encoding runs
 * in batches on the tokenizer's native threads while the next batch is read; documents keep their order.
 *
 * A long document is encoded in pieces of about `pieceChars` characters, cut after a newline or
 * before a space between two solid characters where the tokenizer allows it (`splitsSafely`): the
 * ids are exactly those of the whole document, and memory stays bounded by the piece size rather
 * than growing with the document (the tokenizer holds ~100 bytes per character it encodes).
 * A stretch with no such cut longer than a piece is encoded whole.
 */
import { type CorpusStats, readCorpus, type TxtMode } from './corpus.js';
import { datasetPrefix, IndexedDatasetWriter } from './indexed-dataset.js';
import type { TextTokenizer } from './tokenizer.js';

export interface TokenizeProgress {
  documents: number;
  tokens: number;
  /** Bytes read from the input files so far (compressed bytes for .zst). */
  bytesRead: number;
}

export interface TokenizeOptions {
  inputs: readonly string[];
  tokenizer: TextTokenizer;
  /** Output prefix: `<out>.bin` and `<out>.idx` (a trailing .bin or .idx is dropped). */
  out: string;
  appendEod?: boolean;
  textField?: string;
  txtMode?: TxtMode;
  skipInvalid?: boolean;
  /** A batch is sent to the encoder once it holds this many characters (default 1 Mi). */
  batchChars?: number;
  /** Long documents are encoded in pieces of about this many characters (default 64 Ki). */
  pieceChars?: number;
  onProgress?: (progress: TokenizeProgress) => void;
}

export interface TokenizeSummary extends TokenizeProgress {
  prefix: string;
  dtype: 'uint16' | 'int32';
  /** Documents dropped because their text (or its encoding) was empty. */
  emptyDocuments: number;
  /** Invalid JSON lines skipped (with `skipInvalid`). */
  invalidLines: number;
}

/** A piece of a document's text; `last` marks the document's final piece. */
interface Piece {
  text: string;
  last: boolean;
}

/**
 * Cuts `text` into pieces of at most `maxChars` where it can, at the cuts `isSafeCut` allows. A
 * stretch with no such cut stays whole.
 */
export function splitAtSafeCuts(text: string, maxChars: number): string[] {
  const pieces: string[] = [];
  let start = 0;
  while (text.length - start > maxChars) {
    let cut = -1;
    for (let i = start + maxChars; i > start && cut < 0; i--) if (isSafeCut(text, i)) cut = i;
    for (let i = start + maxChars + 1; i < text.length && cut < 0; i++) if (isSafeCut(text, i)) cut = i;
    if (cut < 0) break;
    pieces.push(text.slice(start, cut));
    start = cut;
  }
  pieces.push(text.slice(start));
  return pieces;
}

/** A letter, number, punctuation or symbol: a character no definition of whitespace includes. */
const SOLID = /[\p{L}\p{N}\p{P}\p{S}]/u;
const solid = (ch: string | undefined): boolean => ch !== undefined && SOLID.test(ch);

/**
 * A cut before `text[i]` that changes no id for tokenizers that allow splitting (`safeToSplit`):
 * after a "\n" that has a solid character on each side, or before a " " that has one on each side.
 * Under GPT-2's pre-tokenizer regex no pre-token holds a non-space character followed by
 * whitespace, and such a newline or space begins a pre-token that the next piece begins with too.
 */
export function isSafeCut(text: string, i: number): boolean {
  if (text[i - 1] === '\n') return solid(text[i - 2]) && solid(text[i]);
  if (text[i] === ' ') return solid(text[i - 1]) && solid(text[i + 1]);
  return false;
}

export async function tokenizeCorpus(options: TokenizeOptions): Promise<TokenizeSummary> {
  const { tokenizer } = options;
  const prefix = datasetPrefix(options.out);
  const batchChars = options.batchChars ?? 1 << 20;
  const pieceChars = tokenizer.splitsSafely ? (options.pieceChars ?? 1 << 16) : Infinity;
  const stats: CorpusStats = { documents: 0, invalidLines: 0 };
  const progress: TokenizeProgress = { documents: 0, tokens: 0, bytesRead: 0 };
  let emptyDocuments = 0;
  let documentTokens = 0;

  const writer = IndexedDatasetWriter.create(prefix, { vocabSize: tokenizer.vocabSize });
  const write = (pieces: Piece[], encoded: number[][]): void => {
    for (const [i, ids] of encoded.entries()) {
      writer.append(ids);
      documentTokens += ids.length;
      if (!pieces[i]!.last) continue;
      if (documentTokens === 0) {
        emptyDocuments++;
        continue;
      }
      if (options.appendEod) writer.append([tokenizer.eodId]);
      writer.endDocument();
      documentTokens = 0;
    }
    progress.documents = writer.documents;
    progress.tokens = writer.tokens;
    options.onProgress?.(progress);
  };

  let inFlight: { pieces: Piece[]; encoded: Promise<number[][]> } | undefined;
  const submit = async (pieces: Piece[]): Promise<void> => {
    const next = { pieces, encoded: tokenizer.encodeBatch(pieces.map((p) => p.text)) };
    next.encoded.catch(() => undefined); // awaited below; this only stops an early rejection counting as unhandled
    if (inFlight !== undefined) write(inFlight.pieces, await inFlight.encoded);
    inFlight = next;
  };

  try {
    let batch: Piece[] = [];
    let chars = 0;
    const records = readCorpus(options.inputs, {
      textField: options.textField,
      txtMode: options.txtMode,
      skipInvalid: options.skipInvalid,
      stats,
      onBytes: (n) => (progress.bytesRead += n),
    });
    for await (const { text } of records) {
      if (text.length === 0) {
        emptyDocuments++;
        continue;
      }
      const pieces = text.length > pieceChars ? splitAtSafeCuts(text, pieceChars) : [text];
      for (const [i, piece] of pieces.entries()) {
        batch.push({ text: piece, last: i === pieces.length - 1 });
        chars += piece.length;
        if (chars >= batchChars) {
          await submit(batch);
          batch = [];
          chars = 0;
        }
      }
    }
    if (batch.length > 0) await submit(batch);
    if (inFlight !== undefined) write(inFlight.pieces, await inFlight.encoded);
    await writer.finish();
  } catch (e) {
    writer.abort();
    throw e;
  }
  return { ...progress, prefix, dtype: writer.dtype, emptyDocuments, invalidLines: stats.invalidLines };
}
