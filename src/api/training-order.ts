/**
 * `TrainingOrder`: the batches a model trained on, step by step, from a GPT-NeoX `.bin/.idx`
 * dataset (with GPT-NeoX's index maps) or a preshuffled one; what `pythia batch` shows.
 */
import { type TrainingOrder as OpenedOrder, openTrainingOrder, PYTHIA_DEFAULTS } from '../data/batches.js';
import type { DatasetDtype } from '../data/indexed-dataset.js';

export interface TrainingOrderOpenOptions {
  /** Dataset prefix (`<prefix>.bin` and `<prefix>.idx`). */
  data: string;
  /** Samples per step (GPT-NeoX train_batch_size; default Pythia's 1024). */
  batchSize?: number;
  /** Tokens per sample minus one (default 2048). */
  seqLength?: number;
  /** GPT-NeoX seed of the index-map shuffles (default 1234). */
  seed?: number;
  /** Steps the index maps were sized for (default 143000). */
  trainIters?: number;
  /** GPT-NeoX split weights for a single data path, e.g. "969,30,1". */
  split?: string;
  /** The data is already one sample per item in training order (Pythia's preshuffled files). */
  preshuffled?: boolean;
  /** Where index-map .npy files are kept (default: beside the data, as GPT-NeoX keeps them). */
  cacheDir?: string;
}

export class TrainingOrder {
  private constructor(
    private readonly order: OpenedOrder,
    readonly batchSize: number,
  ) {}

  /** Opens the order, building GPT-NeoX's index maps on first use (they are cached as GPT-NeoX names them). */
  static async open(options: TrainingOrderOpenOptions): Promise<TrainingOrder> {
    const batchSize = options.batchSize ?? PYTHIA_DEFAULTS.batchSize;
    const order = await openTrainingOrder({
      data: options.data,
      batchSize,
      seqLength: options.seqLength ?? PYTHIA_DEFAULTS.seqLength,
      seed: options.seed ?? PYTHIA_DEFAULTS.seed,
      trainIters: options.trainIters ?? PYTHIA_DEFAULTS.trainIters,
      split: options.split,
      preshuffled: options.preshuffled,
      cacheDir: options.cacheDir,
    });
    return new TrainingOrder(order, batchSize);
  }

  /** Tokens per sample (seq length + 1). */
  get sampleLength(): number {
    return this.order.source.sampleLength;
  }

  /** Samples in the order. */
  get length(): number {
    return this.order.source.length;
  }

  /** Whole steps the order holds. */
  get steps(): number {
    return Math.floor(this.length / this.batchSize);
  }

  /** The dataset's token dtype. */
  get dtype(): DatasetDtype {
    return this.order.dtype;
  }

  /** The batch of step `step` (0-based) as rows of `sampleLength` token ids. */
  batch(step: number): number[][] {
    const tokens = this.batchTokens(step);
    return Array.from({ length: this.batchSize }, (_, r) =>
      Array.from(tokens.subarray(r * this.sampleLength, (r + 1) * this.sampleLength)),
    );
  }

  /** The batch of step `step`, row-major [batchSize, sampleLength]. */
  batchTokens(step: number): Int32Array {
    return this.order.source.batchTokens(step, this.batchSize);
  }

  /** The k-th sample of the order. */
  sample(k: number): Int32Array {
    return this.order.source.sample(k);
  }

  close(): void {
    this.order.source.close();
  }
}
