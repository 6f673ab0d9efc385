/**
 * GPT-NeoX v1.0 `GPT2Dataset` index maps (megatron/data/gpt2_dataset.py, helpers.cpp), bit for bit:
 *
 *   doc_idx      int32[E·nDocs]   the documents, repeated for E epochs, shuffled as ONE array
 *   sample_idx   int32[S+1, 2]    (position in doc_idx, token offset) where sample s starts; samples are
 *                                 seq_length+1 tokens and consecutive samples share one token
 *   shuffle_idx  uint32[S]        arange(S) shuffled by the same RandomState, continuing its stream
 *
 * and the sample counts and split ranges of megatron/data/data_utils.py.
 */
import { ConfigError, DataError } from '../util/errors.js';
import { RandomState } from './random-state.js';

/** Documents arange(start, stop) of the indexed dataset, as GPT-NeoX passes them. */
export interface DocumentRange {
  start: number;
  stop: number;
}

export interface IndexMapsSpec {
  /** Tokens per item of the indexed dataset (all items, not only those in `documents`). */
  sizes: Int32Array;
  /** Defaults to every item. */
  documents?: DocumentRange;
  numSamples: number;
  seqLength: number;
  seed: number;
}

export interface IndexMaps {
  docIdx: Int32Array;
  /** Row-major [S+1, 2]. */
  sampleIdx: Int32Array;
  shuffleIdx: Uint32Array;
  numEpochs: number;
  tokensPerEpoch: number;
}

/** `_num_tokens`: the tokens of the chosen documents. */
export function numTokens(sizes: Int32Array, documents: DocumentRange): number {
  let total = 0;
  for (let d = documents.start; d < documents.stop; d++) total += sizes[d]!;
  return total;
}

/** `_num_epochs`: the fewest epochs whose tokens give num_samples samples of seq_length+1. */
export function numEpochs(tokensPerEpoch: number, seqLength: number, numSamples: number): number {
  if (tokensPerEpoch <= 1)
    throw new DataError(`the documents hold ${tokensPerEpoch} tokens; at least 2 are needed to build samples`);
  // GPT-NeoX adds epochs until (E·T − 1) // L ≥ N, i.e. until E·T ≥ N·L + 1.
  return Math.max(1, Math.ceil((numSamples * seqLength + 1) / tokensPerEpoch));
}

/** `_build_doc_idx`: documents repeated num_epochs times (int32), then one shuffle of the whole. */
export function buildDocIdx(documents: DocumentRange, epochs: number, rng: RandomState): Int32Array {
  const perEpoch = documents.stop - documents.start;
  const docIdx = new Int32Array(perEpoch * epochs);
  for (let e = 0; e < epochs; e++) {
    for (let j = 0; j < perEpoch; j++) docIdx[e * perEpoch + j] = documents.start + j;
  }
  rng.shuffle(docIdx);
  return docIdx;
}

/** `helpers.build_sample_idx`: where each sample starts in the doc_idx-ordered token stream. */
export function buildSampleIdx(
  sizes: Int32Array,
  docIdx: Int32Array,
  seqLength: number,
  epochs: number,
  tokensPerEpoch: number,
): Int32Array {
  const numSamples = Math.floor((epochs * tokensPerEpoch - 1) / seqLength);
  const sampleIdx = new Int32Array(2 * (numSamples + 1));
  let docIdxIndex = 0;
  let docOffset = 0;
  for (let s = 1; s <= numSamples; s++) {
    let remaining = seqLength + 1;
    while (remaining !== 0) {
      const docLength = sizes[docIdx[docIdxIndex]!]! - docOffset;
      remaining -= docLength;
      if (remaining <= 0) {
        // Stop on the sample's last token: the next sample starts with it.
        docOffset += remaining + docLength - 1;
        remaining = 0;
      } else {
        docIdxIndex += 1;
        docOffset = 0;
      }
    }
    sampleIdx[2 * s] = docIdxIndex;
    sampleIdx[2 * s + 1] = docOffset;
  }
  return sampleIdx;
}

/** `_build_shuffle_idx`: arange(size) as uint32, shuffled. */
export function buildShuffleIdx(size: number, rng: RandomState): Uint32Array {
  // GPT-NeoX switches to int64 at 2^32 − 2 samples; no JS typed array holds that many anyway.
  if (size >= 0xffffffff - 1) throw new ConfigError(`${size} samples: more than 2^32 - 2 samples are not supported`);
  const shuffleIdx = new Uint32Array(size);
  for (let i = 0; i < size; i++) shuffleIdx[i] = i;
  rng.shuffle(shuffleIdx);
  return shuffleIdx;
}

export interface IndexMapsPlan {
  tokensPerEpoch: number;
  numEpochs: number;
  /** S: samples in sample_idx (it has S+1 rows) and entries in shuffle_idx. */
  totalSamples: number;
  /** Memory the three maps take. */
  bytes: number;
}

/** Sizes of the maps `buildIndexMaps` would build, computed without building them. */
export function planIndexMaps(spec: IndexMapsSpec): IndexMapsPlan {
  const documents = spec.documents ?? { start: 0, stop: spec.sizes.length };
  checkSpec(spec, documents);
  const tokensPerEpoch = numTokens(spec.sizes, documents);
  const epochs = numEpochs(tokensPerEpoch, spec.seqLength, spec.numSamples);
  const totalSamples = Math.floor((epochs * tokensPerEpoch - 1) / spec.seqLength);
  const docIdxLength = (documents.stop - documents.start) * epochs;
  if (totalSamples + 1 > 0x7fffffff || docIdxLength > 0x7fffffff) {
    throw new ConfigError(
      `${spec.numSamples} samples of ${spec.seqLength} tokens need ${epochs} epochs of these ${documents.stop - documents.start} documents, overflowing GPT-NeoX's int32 doc_idx and sample_idx: is the sample count (train iters × batch size) meant for this dataset?`,
    );
  }
  return {
    tokensPerEpoch,
    numEpochs: epochs,
    totalSamples,
    bytes: 4 * docIdxLength + 8 * (totalSamples + 1) + 4 * totalSamples,
  };
}

/**
 * `_build_index_mappings` without the caching: one RandomState(seed) for doc_idx then shuffle_idx.
 * `onPhase` hears which map is being built next.
 */
export function buildIndexMaps(
  spec: IndexMapsSpec,
  onPhase?: (map: 'doc_idx' | 'sample_idx' | 'shuffle_idx') => void,
): IndexMaps {
  const documents = spec.documents ?? { start: 0, stop: spec.sizes.length };
  const plan = planIndexMaps(spec);
  const rng = new RandomState(spec.seed);
  onPhase?.('doc_idx');
  const docIdx = buildDocIdx(documents, plan.numEpochs, rng);
  onPhase?.('sample_idx');
  const sampleIdx = buildSampleIdx(spec.sizes, docIdx, spec.seqLength, plan.numEpochs, plan.tokensPerEpoch);
  onPhase?.('shuffle_idx');
  const shuffleIdx = buildShuffleIdx(plan.totalSamples, rng);
  return { docIdx, sampleIdx, shuffleIdx, numEpochs: plan.numEpochs, tokensPerEpoch: plan.tokensPerEpoch };
}

function checkSpec(spec: IndexMapsSpec, documents: DocumentRange): void {
  const { start, stop } = documents;
  if (!Number.isInteger(start) || !Number.isInteger(stop) || start < 0 || stop > spec.sizes.length || start >= stop) {
    throw new ConfigError(
      `documents [${start}, ${stop}): expected a non-empty range within the ${spec.sizes.length} items`,
    );
  }
  if (!Number.isSafeInteger(spec.numSamples) || spec.numSamples < 1) {
    throw new ConfigError(`num_samples: expected a positive integer, got ${spec.numSamples}`);
  }
  if (!Number.isInteger(spec.seqLength) || spec.seqLength < 2) {
    throw new ConfigError(`seq_length: expected an integer ≥ 2, got ${spec.seqLength}`);
  }
}

/** Python's round(): to nearest, ties to even. */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction < 0.5) return floor;
  if (fraction > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Python's float() of one split weight: surrounding whitespace allowed, nothing else. */
function parseWeight(text: string, split: string): number {
  const t = text.trim();
  const value = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t) ? Number(t) : NaN;
  if (!Number.isFinite(value)) throw new ConfigError(`split "${split}": "${text}" is not a number`);
  return value;
}

/**
 * `get_train_valid_test_split_`: document boundaries [0, a, b, n] of the train, valid and test
 * ranges for weights like "969,30,1" (comma- or slash-separated, padded with zeros to three).
 */
export function splitDocuments(split: string, numDocuments: number): [number, number, number, number] {
  const parts = split.includes(',') ? split.split(',') : split.includes('/') ? split.split('/') : [split];
  const weights = parts.map((p) => parseWeight(p, split));
  while (weights.length < 3) weights.push(0);
  weights.length = 3;
  let sum = 0;
  for (const w of weights) sum += w;
  if (!(sum > 0)) throw new ConfigError(`split "${split}": the weights must sum to more than 0`);
  const index = [0];
  for (let i = 0; i < 3; i++) index.push(index[i]! + roundHalfEven((weights[i]! / sum) * numDocuments));
  const diff = index[3]! - numDocuments;
  for (let i = 1; i < 4; i++) index[i]! -= diff;
  return index as [number, number, number, number];
}

/**
 * Training samples GPT-NeoX requests. With train/valid/test data paths (Pythia's setup) the count
 * goes through `get_normalized_weights_and_num_samples`: ceil(iters · batch · 1.0 · 1.005) in
 * float64. With a single data path and a split, it is iters · batch exactly.
 */
export function trainNumSamples(trainIters: number, globalBatch: number, mode: 'paths' | 'split'): number {
  const samples = trainIters * globalBatch;
  return mode === 'split' ? samples : Math.ceil(samples * 1.0 * 1.005);
}

export interface IndexMapFiles {
  docIdx: string;
  sampleIdx: string;
  shuffleIdx: string;
  /** Ours, beside GPT-NeoX's three: what the maps were built from (index-map-cache.ts). */
  inputs: string;
}

/**
 * GPT-NeoX's cache names: `{prefix}_{name}_indexmap_{N}ns_{L}sl_{seed}s_{doc,sample,shuffle}_idx.npy`.
 * `name` is "train_0" with train/valid/test data paths and "train" with a split.
 */
export function indexMapFiles(
  prefix: string,
  name: string,
  numSamples: number,
  seqLength: number,
  seed: number,
): IndexMapFiles {
  const base = `${prefix}_${name}_indexmap_${numSamples}ns_${seqLength}sl_${seed}s`;
  return {
    docIdx: `${base}_doc_idx.npy`,
    sampleIdx: `${base}_sample_idx.npy`,
    shuffleIdx: `${base}_shuffle_idx.npy`,
    inputs: `${base}_inputs.json`,
  };
}
