/**
 * Corpus → MMapIndexedDataset, as GPT-NeoX's `tools/preprocess_data.py` does it: one item per
 * document, empty documents dropped, the EOD id appended to each document when asked. Encoding runs
 * in batches on the tokenizer's native threads while the next batch is read; documents keep their order.
 */
import { readCorpus, type CorpusStats, type TxtMode } from './corpus.js';
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

export async function tokenizeCorpus(options: TokenizeOptions): Promise<TokenizeSummary> {
  const { tokenizer } = options;
  const prefix = datasetPrefix(options.out);
  const batchChars = options.batchChars ?? 1 << 20;
  const stats: CorpusStats = { documents: 0, invalidLines: 0 };
  const progress: TokenizeProgress = { documents: 0, tokens: 0, bytesRead: 0 };
  let emptyDocuments = 0;

  const writer = IndexedDatasetWriter.create(prefix, { vocabSize: tokenizer.vocabSize });
  const write = (encoded: number[][]): void => {
    for (const ids of encoded) {
      if (ids.length === 0) {
        emptyDocuments++;
        continue;
      }
      if (options.appendEod) ids.push(tokenizer.eodId);
      writer.add(ids);
    }
    progress.documents = writer.documents;
    progress.tokens = writer.tokens;
    options.onProgress?.(progress);
  };

  let inFlight: Promise<number[][]> | undefined;
  const submit = async (texts: string[]): Promise<void> => {
    const next = tokenizer.encodeBatch(texts);
    next.catch(() => undefined); // awaited below; this only stops an early rejection counting as unhandled
    if (inFlight !== undefined) write(await inFlight);
    inFlight = next;
  };

  try {
    let batch: string[] = [];
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
      batch.push(text);
      chars += text.length;
      if (chars >= batchChars) {
        await submit(batch);
        batch = [];
        chars = 0;
      }
    }
    if (batch.length > 0) await submit(batch);
    if (inFlight !== undefined) write(await inFlight);
    await writer.finish();
  } catch (e) {
    writer.abort();
    throw e;
  }
  return { ...progress, prefix, dtype: writer.dtype, emptyDocuments, invalidLines: stats.invalidLines };
}
