/**
 * Where validation batches come from.
 *
 * With `--split` (GPT-NeoX's single data path) they come from GPT-NeoX v1.0's own validation
 * dataset (megatron/data/data_utils.py `build_train_valid_test_datasets`): the second range of
 * the split's documents, a GPT2Dataset named "valid" with the run's seed, sized for
 * `(train_iters // eval_interval + 1) * eval_iters` batches. GPT-NeoX reads it front to back, one
 * window of `eval_iters` batches per evaluation: the evaluation at step k = n·eval_interval uses
 * window n − 1 and the one after the last step window ⌊train_iters / eval_interval⌋. Here the
 * evaluation at any step k uses window ⌈k / eval_interval⌉ − 1 (⌊T / eval_interval⌋ at the last
 * step T), which is GPT-NeoX's at the steps GPT-NeoX evaluates.
 *
 * Otherwise (the whole dataset trains, as in Pythia, whose valid-data-paths name the training
 * data itself) the validation batches are held out: the batches right after the last training batch.
 */

import { loadOrBuildIndexMaps } from '../data/index-map-cache.js';
import { splitDocuments } from '../data/index-maps.js';
import { IndexedDataset } from '../data/indexed-dataset.js';
import { GPT2SampleOrder, type SampleSource } from '../data/sample-order.js';

/** GPT-NeoX's default `eval-interval`, which sizes the validation dataset when none is given. */
export const NEOX_EVAL_INTERVAL = 1000;

export interface ValidationBatches {
  /** The tokens of validation batch j (0 ≤ j < evalIters) of the evaluation at `step`. */
  batch(step: number, j: number): Int32Array;
  /** What the batches are, for the log and messages. */
  description: string;
  close(): void;
}

export interface ValidationPlan {
  data: { prefix: string; split?: string; preshuffled: boolean };
  /** The training order (the held-out batches follow its last training batch). */
  train: SampleSource;
  batchSize: number;
  seqLength: number;
  seed: number;
  trainIters: number;
  evalIters: number;
  evalInterval?: number;
}

/** The validation batches of a run, or a reason why there are none. */
export async function openValidation(plan: ValidationPlan): Promise<ValidationBatches | string> {
  const { batchSize: B, trainIters: T, evalIters } = plan;
  if (plan.data.split === undefined) {
    if (plan.train.length < (T + evalIters) * B)
      return `${plan.data.prefix} has no ${evalIters} batches left after the ${T} training batches`;
    return {
      batch: (_step, j) => plan.train.batchTokens(T + j, B),
      description: `${evalIters} held-out batches after the last training batch`,
      close: () => {},
    };
  }
  const interval = plan.evalInterval ?? NEOX_EVAL_INTERVAL;
  const dataset = IndexedDataset.open(plan.data.prefix);
  try {
    const [, start, stop] = splitDocuments(plan.data.split, dataset.length);
    if (stop <= start) {
      dataset.close();
      return `split "${plan.data.split}" leaves no validation documents out of ${dataset.length}`;
    }
    const windows = Math.floor(T / interval) + 1;
    const cached = await loadOrBuildIndexMaps({
      loadSizes: () => dataset.sizes,
      items: dataset.length,
      documents: { start, stop },
      numSamples: windows * evalIters * B,
      seqLength: plan.seqLength,
      seed: plan.seed,
      cachePrefix: dataset.prefix,
      name: 'valid',
    });
    const source = new GPT2SampleOrder(dataset, cached.maps, plan.seqLength, cached.files.shuffleIdx);
    const window = (step: number): number =>
      step >= T ? Math.floor(T / interval) : Math.max(0, Math.ceil(step / interval) - 1);
    return {
      batch: (step, j) => source.batchTokens(window(step) * evalIters + j, B),
      description: `GPT-NeoX's "valid" dataset (documents ${start}..${stop - 1}), ${evalIters} batches per evaluation`,
      close: () => source.close(),
    };
  } catch (e) {
    dataset.close();
    throw e;
  }
}
