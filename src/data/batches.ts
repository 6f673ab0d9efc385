/**
 * The batch a model trained on at step s, from either source of training order:
 *  - a tokenized corpus (GPT-NeoX .bin/.idx of documents) plus the GPT-NeoX v1.0 index maps, built
 *    or loaded from GPT-NeoX's cache files;
 *  - a preshuffled dataset (Pythia's released layout: one item per sample, in training order).
 */
import { basename, join } from 'node:path';
import { ConfigError } from '../util/errors.js';
import { type IndexMapsPhase, loadOrBuildIndexMaps } from './index-map-cache.js';
import { type DocumentRange, type IndexMapFiles, splitDocuments, trainNumSamples } from './index-maps.js';
import type { DatasetDtype } from './indexed-dataset.js';
import { IndexedDataset } from './indexed-dataset.js';
import { PreshuffledDataset } from './preshuffled.js';
import { GPT2SampleOrder, type SampleSource } from './sample-order.js';

export { PreshuffledDataset, PreshuffledWriter } from './preshuffled.js';
export { GPT2SampleOrder, type SampleSource } from './sample-order.js';

/** Pythia's settings (EleutherAI/pythia's README and models/<size>/*.yml: 143000 steps of 1024 sequences of 2048 tokens, seed 1234). */
export const PYTHIA_DEFAULTS = {
  batchSize: 1024,
  seqLength: 2048,
  seed: 1234,
  trainIters: 143000,
} as const;

export interface TrainingOrderOptions {
  /** Dataset prefix (`<prefix>.bin`, `<prefix>.idx`); a path ending in .bin or .idx also works. */
  data: string;
  /** Global batch (GPT-NeoX train_batch_size). */
  batchSize: number;
  seqLength: number;
  seed: number;
  trainIters: number;
  /**
   * GPT-NeoX's `split` (e.g. "969,30,1"): the single-data-path mode, training on the first range of
   * documents. Without it the whole dataset is the train set, as in Pythia (train, valid and test
   * paths all name the same prefix).
   */
  split?: string;
  /** The data is already in training order, one sample per item (Pythia's preshuffled files). */
  preshuffled?: boolean;
  /** Folder for the index-map cache files; by default beside the data, as GPT-NeoX keeps them. */
  cacheDir?: string;
  /** Told when a long phase of building index maps begins. */
  onPhase?: (phase: IndexMapsPhase) => void;
}

export interface TrainingOrder {
  source: SampleSource;
  /** Token dtype of the underlying dataset (what Pythia's batch viewer saves). */
  dtype: DatasetDtype;
  /** For index-map orders: the GPT-NeoX dataset name, sample count, cache files, and whether they were built now. */
  indexMaps?: { name: string; numSamples: number; files: IndexMapFiles; built: boolean };
}

/** Opens the training order described by `options`; close it with `order.source.close()`. */
export async function openTrainingOrder(options: TrainingOrderOptions): Promise<TrainingOrder> {
  if (options.preshuffled) {
    if (options.split !== undefined)
      throw new ConfigError('--split does not apply to a preshuffled dataset: it is already the training order');
    const source = PreshuffledDataset.open(options.data, { seqLength: options.seqLength });
    return { source, dtype: source.dtype };
  }
  const dataset = IndexedDataset.open(options.data);
  try {
    const splitMode = options.split !== undefined;
    const documents = splitMode ? trainDocuments(options.split!, dataset.length) : { start: 0, stop: dataset.length };
    // GPT-NeoX names the dataset "train" with a split and "train_0" for the first of train-data-paths.
    const name = splitMode ? 'train' : 'train_0';
    const numSamples = trainNumSamples(options.trainIters, options.batchSize, splitMode ? 'split' : 'paths');
    const cachePrefix = options.cacheDir ? join(options.cacheDir, basename(dataset.prefix)) : dataset.prefix;
    const cached = await loadOrBuildIndexMaps({
      loadSizes: () => dataset.sizes,
      sizesSha256: (d) => dataset.sizesSha256(d.start, d.stop),
      items: dataset.length,
      documents,
      numSamples,
      seqLength: options.seqLength,
      seed: options.seed,
      cachePrefix,
      name,
      onPhase: options.onPhase,
    });
    const source = new GPT2SampleOrder(dataset, cached.maps, options.seqLength, cached.files.shuffleIdx);
    return { source, dtype: dataset.dtype, indexMaps: { name, numSamples, files: cached.files, built: cached.built } };
  } catch (e) {
    dataset.close();
    throw e;
  }
}

/** The first (train) range of GPT-NeoX's split. */
function trainDocuments(split: string, items: number): DocumentRange {
  const [start, stop] = splitDocuments(split, items);
  if (stop <= start) throw new ConfigError(`split "${split}" leaves no training documents out of ${items}`);
  return { start, stop };
}

/** "A:B" → steps A (inclusive) to B (exclusive). */
export function parseStepRange(text: string): { start: number; end: number } {
  const m = /^(\d+):(\d+)$/.exec(text.trim());
  if (!m) throw new ConfigError(`--steps "${text}": expected A:B, the steps from A up to but not including B`);
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end <= start) throw new ConfigError(`--steps "${text}": B must be greater than A`);
  return { start, end };
}
