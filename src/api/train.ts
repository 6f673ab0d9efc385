/**
 * `train(...)`: one model on a dataset's fixed batch order with the Pythia recipe, as `pythia train`
 * does, on the trainer of src/train: from a preset (a Pythia size or a nano model), from a
 * checkpoint's weights, or resumed from a step folder to the same bytes.
 */
import { dirname, resolve } from 'node:path';
import { loadTokenizer } from '../data/tokenizer.js';
import { readConfig } from '../model/checkpoint.js';
import { resolveCheckpoint } from '../model/hub-cache.js';
import type { InterventionFrom } from '../train/intervention-point.js';
import { applyOverrides, type RecipeOverrides } from '../train/overrides.js';
import { modelPreset, paddedVocabSize } from '../train/recipes.js';
import {
  type Intervention,
  loadResumePoint,
  train as runTraining,
  type StepProgress,
  type TrainResult,
} from '../train/trainer.js';
import { ConfigError } from '../util/errors.js';

export interface TrainModelOptions {
  /** Architecture and recipe to start from: a Pythia model (`pythia-70m` … `pythia-12b`, `pythia-70m-deduped` … `pythia-12b-deduped`) or `nano-25k` …. */
  preset?: string;
  /** Start from this checkpoint's weights and architecture (a folder or a hub id from the local cache). */
  initFrom?: string;
  /** Continue a run from its `<run>/<model>/step<N>` folder; recipe and data order come from it. */
  resume?: string;
  /** Training data: a GPT-NeoX `.bin/.idx` prefix (for `resume`, default: the run's own). */
  data?: string;
  /** The data is already one sample per item in training order. */
  preshuffled?: boolean;
  /** GPT-NeoX split weights for a single data path, e.g. "969,30,1". */
  split?: string;
  /** The run folder: checkpoints go to `<outDir>/<name>/step<N>/` (for `resume`, default: the run's own). */
  outDir?: string;
  /** Model folder name (default: the preset's name). */
  name?: string;
  /** tokenizer.json: the vocabulary is padded to it, and it is copied into every checkpoint. */
  tokenizer?: string;
  /** Recipe values laid over the preset, named as GPT-NeoX's config keys in camelCase. */
  recipe?: RecipeOverrides;
  /** Held-out validation batches (default 2; 0: none). */
  evalIters?: number;
  evalInterval?: number;
  threads?: number;
  onProgress?: (p: StepProgress) => void;
  onWarning?: (message: string) => void;
  /** After the run, a sibling `<name>-intervention` continued from the checkpoint nearest this point with pronouns swapped. */
  interventionFrom?: InterventionFrom;
  intervention?: Intervention;
}

export async function train(options: TrainModelOptions): Promise<TrainResult> {
  const common = {
    evalIters: options.evalIters ?? 2,
    evalInterval: options.evalInterval,
    threads: options.threads,
    onProgress: options.onProgress,
    onWarning: options.onWarning,
    interventionFrom: options.interventionFrom,
    intervention: options.intervention,
  };
  if (options.resume !== undefined) {
    for (const key of ['preset', 'initFrom', 'recipe', 'split'] as const) {
      if (options[key] !== undefined)
        throw new ConfigError(
          `train: ${key} cannot be combined with resume: a resumed run keeps its recipe and data order`,
        );
    }
    const point = loadResumePoint(options.resume);
    return runTraining({
      name: options.name ?? point.state.model,
      config: point.config,
      recipe: point.state.recipe,
      data: { ...point.state.data, prefix: options.data ?? point.state.data.prefix },
      outDir: options.outDir ?? dirname(dirname(resolve(options.resume))),
      tokenizerPath: options.tokenizer ?? point.tokenizerPath,
      resume: point,
      ...common,
    });
  }
  if (options.preset === undefined && options.initFrom === undefined) {
    throw new ConfigError(
      'train: give a preset (such as "pythia-70m" or "nano-25k"), initFrom (a checkpoint) or resume (a step folder)',
    );
  }
  if (options.data === undefined) throw new ConfigError('train: data is required (a GPT-NeoX .bin/.idx prefix)');
  if (options.outDir === undefined) throw new ConfigError('train: outDir is required (the run folder)');
  const tokenizerVocab =
    options.tokenizer === undefined ? undefined : (await loadTokenizer(options.tokenizer)).vocabSize;
  const vocabSize = tokenizerVocab === undefined ? undefined : paddedVocabSize(tokenizerVocab);
  let preset = modelPreset(options.preset ?? 'pythia-70m', vocabSize);
  if (vocabSize !== undefined) preset = { ...preset, config: { ...preset.config, vocabSize } };
  let initFrom: string | undefined;
  if (options.initFrom !== undefined) {
    const source = resolveCheckpoint(options.initFrom);
    initFrom = source.dir;
    const config = readConfig(initFrom);
    if (tokenizerVocab !== undefined && tokenizerVocab > config.vocabSize) {
      throw new ConfigError(
        `${options.tokenizer}: ${tokenizerVocab} tokens do not fit the vocabulary of ${options.initFrom} (${config.vocabSize})`,
      );
    }
    preset = { ...preset, name: options.preset === undefined ? source.model.replace('/', '--') : preset.name, config };
  }
  preset = applyOverrides(preset, options.recipe ?? {});
  return runTraining({
    name: options.name ?? preset.name,
    config: preset.config,
    recipe: preset.recipe,
    data: { prefix: options.data, preshuffled: options.preshuffled ?? false, split: options.split },
    outDir: options.outDir,
    tokenizerPath: options.tokenizer,
    initFrom,
    ...common,
  });
}
