/**
 * Training order over a GPT-NeoX indexed dataset: dataset index k is the (seq_length+1)-token
 * sample `GPT2Dataset.__getitem__(k)` of GPT-NeoX v1.0, and training step s reads indices
 * [s·B, (s+1)·B) (SequentialSampler + DistributedBatchSampler, drop_last).
 */
import { DataError, FormatError } from '../util/errors.js';
import type { IndexedDataset } from './indexed-dataset.js';

/** Read access to one index-map array: a typed array in memory, or positioned reads of a .npy. */
export interface IndexArray {
  readonly length: number;
  at(i: number): number | undefined;
}

export interface IndexMapArrays {
  docIdx: IndexArray;
  /** Row-major [S+1, 2]: (position in doc_idx, token offset). */
  sampleIdx: IndexArray;
  shuffleIdx: IndexArray;
  /** Releases files behind the arrays, if any. */
  close?: () => void;
}

/** What both the index-map order and the preshuffled layout provide. */
export interface SampleSource {
  /** Samples available. */
  readonly length: number;
  /** Tokens per sample: seq_length + 1. */
  readonly sampleLength: number;
  /** The tokens of dataset index k. */
  sample(k: number): Int32Array;
  /** Indices [step·B, (step+1)·B), row-major [B, sampleLength]. */
  batchTokens(step: number, batchSize: number): Int32Array;
  close(): void;
}

/** Checks that step s exists in a source of `length` samples and returns its first index. */
export function batchStart(step: number, batchSize: number, length: number): number {
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new DataError(`batch size: expected a positive integer, got ${batchSize}`);
  const steps = Math.floor(length / batchSize);
  if (!Number.isInteger(step) || step < 0 || step >= steps) {
    throw new DataError(
      `step ${step} is past the end: ${length} samples make ${steps} steps of ${batchSize} (steps 0 to ${steps - 1})`,
    );
  }
  return step * batchSize;
}

export class GPT2SampleOrder implements SampleSource {
  readonly length: number;
  readonly sampleLength: number;

  constructor(
    private readonly dataset: IndexedDataset,
    private readonly maps: IndexMapArrays,
    readonly seqLength: number,
    /** Named in errors: where the maps came from. */
    private readonly mapsName = 'index maps',
  ) {
    this.sampleLength = seqLength + 1;
    // GPT2Dataset.__len__: min(len(shuffle_idx) − 1, len(sample_idx) − 1); the last shuffle entry is never used.
    this.length = Math.min(maps.shuffleIdx.length - 1, maps.sampleIdx.length / 2 - 1);
  }

  private entry(array: IndexArray, i: number, what: string): number {
    const v = array.at(i);
    if (v === undefined || i < 0)
      throw new FormatError(this.mapsName, `${what}[${i}] is out of range (${array.length} entries)`);
    return v;
  }

  sample(k: number): Int32Array {
    if (!Number.isInteger(k) || k < 0 || k >= this.length) {
      throw new DataError(`sample ${k} is out of range: the dataset has ${this.length} samples`);
    }
    const i = this.entry(this.maps.shuffleIdx, k, 'shuffle_idx');
    const firstDoc = this.entry(this.maps.sampleIdx, 2 * i, 'sample_idx');
    const firstOffset = this.entry(this.maps.sampleIdx, 2 * i + 1, 'sample_idx');
    const lastDoc = this.entry(this.maps.sampleIdx, 2 * i + 2, 'sample_idx');
    const lastOffset = this.entry(this.maps.sampleIdx, 2 * i + 3, 'sample_idx');
    const item = (d: number) => this.entry(this.maps.docIdx, d, 'doc_idx');
    let tokens: Int32Array;
    if (firstDoc === lastDoc) {
      tokens = this.dataset.read(item(firstDoc), firstOffset, lastOffset - firstOffset + 1);
    } else {
      tokens = new Int32Array(this.sampleLength);
      let filled = 0;
      const append = (part: Int32Array) => {
        if (filled + part.length > tokens.length) this.mismatch(k);
        tokens.set(part, filled);
        filled += part.length;
      };
      const first = item(firstDoc);
      append(this.dataset.read(first, firstOffset, this.dataset.size(first) - firstOffset));
      for (let d = firstDoc + 1; d < lastDoc; d++) append(this.dataset.document(item(d)));
      append(this.dataset.read(item(lastDoc), 0, lastOffset + 1));
      if (filled !== tokens.length) this.mismatch(k);
    }
    if (tokens.length !== this.sampleLength) this.mismatch(k);
    return tokens;
  }

  private mismatch(k: number): never {
    throw new FormatError(
      this.mapsName,
      `sample ${k} does not have ${this.sampleLength} tokens: the index maps were not built from ${this.dataset.prefix} with seq_length ${this.seqLength}`,
    );
  }

  batchTokens(step: number, batchSize: number): Int32Array {
    const start = batchStart(step, batchSize, this.length);
    const out = new Int32Array(batchSize * this.sampleLength);
    for (let j = 0; j < batchSize; j++) out.set(this.sample(start + j), j * this.sampleLength);
    return out;
  }

  close(): void {
    this.maps.close?.();
    this.dataset.close();
  }
}
