/**
 * Pythia's preshuffled layout (`EleutherAI/pile-*-pythia-preshuffled`, read by Pythia's
 * `utils/batch_viewer.py`): an indexed dataset whose items are whole training samples of
 * seq_length+1 tokens (2049 for Pythia), stored in training order, so step s is items
 * [s·B, (s+1)·B).
 */
import { DataError, FormatError } from '../util/errors.js';
import { IndexedDataset, IndexedDatasetWriter } from './indexed-dataset.js';
import { batchStart, type SampleSource } from './sample-order.js';

export class PreshuffledDataset implements SampleSource {
  readonly sampleLength: number;

  private constructor(
    private readonly dataset: IndexedDataset,
    readonly seqLength: number,
  ) {
    this.sampleLength = seqLength + 1;
  }

  /** Opens `<prefix>.idx` and `<prefix>.bin` (or Pythia's `<prefix>-NNNNN-of-MMMMM.bin` shards). */
  static open(prefix: string, options: { seqLength?: number } = {}): PreshuffledDataset {
    return new PreshuffledDataset(IndexedDataset.open(prefix), options.seqLength ?? 2048);
  }

  get length(): number {
    return this.dataset.length;
  }

  get dtype(): IndexedDataset['dtype'] {
    return this.dataset.dtype;
  }

  private wrongLength(item: number, size: number): never {
    throw new FormatError(
      `${this.dataset.prefix}.idx`,
      `item ${item} has ${size} tokens; a preshuffled dataset with seq_length ${this.seqLength} has ${this.sampleLength} per item`,
    );
  }

  sample(k: number): Int32Array {
    const tokens = this.dataset.document(k);
    if (tokens.length !== this.sampleLength) this.wrongLength(k, tokens.length);
    return tokens;
  }

  batchTokens(step: number, batchSize: number): Int32Array {
    const start = batchStart(step, batchSize, this.length);
    const { tokens, sizes } = this.dataset.readItems(start, batchSize);
    for (let j = 0; j < batchSize; j++) if (sizes[j] !== this.sampleLength) this.wrongLength(start + j, sizes[j]!);
    return tokens;
  }

  close(): void {
    this.dataset.close();
  }
}

/** Writes samples in training order as a preshuffled dataset; nothing appears until `finish`. */
export class PreshuffledWriter {
  private constructor(
    private readonly writer: IndexedDatasetWriter,
    readonly sampleLength: number,
  ) {}

  static create(prefix: string, options: { vocabSize: number; seqLength?: number }): PreshuffledWriter {
    return new PreshuffledWriter(
      IndexedDatasetWriter.create(prefix, { vocabSize: options.vocabSize }),
      (options.seqLength ?? 2048) + 1,
    );
  }

  get samples(): number {
    return this.writer.documents;
  }

  addSample(tokens: ArrayLike<number>): void {
    if (tokens.length !== this.sampleLength) {
      throw new DataError(
        `${this.writer.prefix}: sample ${this.samples} has ${tokens.length} tokens, expected ${this.sampleLength}`,
      );
    }
    this.writer.add(tokens);
  }

  /** A whole batch, row-major [rows, seq_length+1]. */
  addBatch(tokens: Int32Array): void {
    if (tokens.length % this.sampleLength !== 0) {
      throw new DataError(
        `${this.writer.prefix}: a batch of ${tokens.length} tokens is not whole samples of ${this.sampleLength}`,
      );
    }
    for (let start = 0; start < tokens.length; start += this.sampleLength) {
      this.writer.add(tokens.subarray(start, start + this.sampleLength));
    }
  }

  finish(): Promise<void> {
    return this.writer.finish();
  }

  abort(): void {
    this.writer.abort();
  }
}
