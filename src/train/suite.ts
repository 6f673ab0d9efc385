/**
 * A suite: every size of a preset trained one after another on the identical sequence of
 * batches. The manifest `<out>/suite.json` records each model's results and the sha256 of every
 * step's batch, checked to be the same for all sizes. Re-running continues where it stopped:
 * finished models are kept, an interrupted one resumes from its last checkpoint.
 *
 * With `interventionFrom`, each model is followed by its intervention sibling
 * `<out>/<model>-intervention/` (see `trainIntervention`), kept and resumed the same way; the
 * batches it trained on before the swap are checked against the same hashes.
 */
import { join } from 'node:path';
import { countParameters } from '../model/config.js';
import type { ExecutionProvider } from '../runtime/session.js';
import { ConfigError, DataError } from '../util/errors.js';
import { relativePath } from '../util/recorded-path.js';
import { type InterventionFrom, interventionName } from './intervention-point.js';
import { applyOverrides, type RecipeOverrides } from './overrides.js';
import { type ModelPreset, suitePreset, withTokenizerVocab } from './recipes.js';
import {
  checkpointSteps,
  LOG_FILE,
  readLog,
  type SuiteManifest,
  type SuiteModelResult,
  writeSuiteManifest,
} from './run-folder.js';
import {
  continuePoint,
  type DataSpec,
  type Intervention,
  type InterventionPlan,
  type InterventionStart,
  planIntervention,
  type StepProgress,
  type TrainOptions,
  train,
  trainIntervention,
} from './trainer.js';

export { SUITE_MANIFEST, type SuiteManifest, type SuiteModelResult } from './run-folder.js';

export interface SuiteOptions {
  preset: string;
  data: DataSpec;
  outDir: string;
  tokenizerPath?: string;
  /** The tokenizer's vocabulary, padded for each model as GPT-NeoX pads it. */
  tokenizerVocab?: number;
  overrides?: RecipeOverrides;
  /** Only these models of the preset (by name). */
  only?: string[];
  evalIters?: number;
  threads?: number;
  device?: ExecutionProvider;
  /** After each model, its intervention sibling `<model>-intervention` from this point (needs the tokenizer). */
  interventionFrom?: InterventionFrom;
  /** The sibling's swap (default pronoun-swap). */
  intervention?: Intervention;
  onModelStart?: (model: ModelPreset, status: 'fresh' | 'resume' | 'done', fromStep: number) => void;
  /** A sibling about to train (or found finished): which baseline checkpoint it continues. */
  onInterventionStart?: (start: InterventionStart) => void;
  /** Progress of baselines and siblings (a sibling's `model` carries its own name). */
  onProgress?: (model: ModelPreset, p: StepProgress) => void;
  onWarning?: (message: string) => void;
}

export function suiteModels(
  options: Pick<SuiteOptions, 'preset' | 'tokenizerVocab' | 'overrides' | 'only'>,
): ModelPreset[] {
  let models = suitePreset(options.preset).models;
  if (options.only && options.only.length > 0) {
    const unknown = options.only.filter((n) => !models.some((m) => m.name === n));
    if (unknown.length > 0)
      throw new ConfigError(
        `--models: ${unknown.join(', ')} not in suite ${options.preset} (${models.map((m) => m.name).join(', ')})`,
      );
    models = models.filter((m) => options.only!.includes(m.name));
  }
  return models.map((m) => applyOverrides(withTokenizerVocab(m, options.tokenizerVocab), options.overrides ?? {}));
}

export async function runSuite(options: SuiteOptions): Promise<SuiteManifest> {
  const models = suiteModels(options);
  const results: SuiteModelResult[] = [];
  let reference: { name: string; hashes: string[] } | undefined;
  // Every sibling's point, tokenizer and swap are checked before the first model trains.
  const plans: InterventionPlan[] = [];
  if (options.interventionFrom)
    for (const model of models)
      plans.push(await planIntervention({ ...options, name: model.name, recipe: model.recipe }));
  for (const [index, model] of models.entries()) {
    const modelDir = join(options.outDir, model.name);
    const resume = continuePoint(modelDir, model.recipe);
    const last = resume?.state.step;
    const done = last === model.recipe.trainIters;
    options.onModelStart?.(model, done ? 'done' : resume ? 'resume' : 'fresh', last ?? 0);
    const trainOptions: TrainOptions = {
      name: model.name,
      config: model.config,
      recipe: model.recipe,
      data: options.data,
      outDir: options.outDir,
      tokenizerPath: options.tokenizerPath,
      resume,
      evalIters: options.evalIters,
      threads: options.threads,
      device: options.device,
      onProgress: (p) => options.onProgress?.(model, p),
      onWarning: options.onWarning,
    };
    if (!done) await train(trainOptions);
    const log = readLog(join(modelDir, LOG_FILE));
    const hashes: string[] = [];
    for (const e of log) if (e.batch_sha256) hashes[e.step - 1] = e.batch_sha256;
    if (reference) {
      const n = Math.min(hashes.length, reference.hashes.length);
      for (let i = 0; i < n; i++) {
        if (hashes[i] !== reference.hashes[i])
          throw new DataError(
            `suite: ${model.name} trained on a different batch at step ${i + 1} than ${reference.name}; the sizes must share one data order`,
          );
      }
    } else reference = { name: model.name, hashes };
    const lastLoss = [...log].reverse().find((e) => e.loss !== undefined);
    const lastVal = [...log].reverse().find((e) => e.val_loss !== undefined);
    results.push(modelResult(model, options.outDir, lastLoss?.loss ?? null, lastVal?.val_loss ?? null));

    const plan = plans[index];
    if (!plan) continue;
    const sibling: ModelPreset = { ...model, name: interventionName(model.name) };
    const run = await trainIntervention(
      {
        ...trainOptions,
        resume: undefined,
        onProgress: (p) => options.onProgress?.(sibling, p),
        onInterventionStart: options.onInterventionStart,
      },
      plan,
    );
    const siblingLog = readLog(run.logPath);
    for (const e of siblingLog) {
      const expected = reference!.hashes[e.step - 1];
      if (e.source_batch_sha256 && expected && e.source_batch_sha256 !== expected)
        throw new DataError(
          `suite: ${run.name} trained at step ${e.step} on a batch (before the swap) other than ${reference!.name}'s; it must continue the same data order`,
        );
    }
    const siblingLoss = [...siblingLog].reverse().find((e) => e.loss !== undefined);
    const siblingVal = [...siblingLog].reverse().find((e) => e.val_loss !== undefined);
    results.push({
      ...modelResult(sibling, options.outDir, siblingLoss?.loss ?? null, siblingVal?.val_loss ?? null),
      baseline: model.name,
      intervention: plan.kind,
      interventionFrom: plan.fromStep,
    });
  }
  return writeSuiteManifest(options.outDir, {
    suite: options.preset,
    data: options.data,
    models: results,
    batchSha256: reference?.hashes ?? [],
  });
}

function modelResult(
  model: ModelPreset,
  suiteDir: string,
  finalLoss: number | null,
  finalValLoss: number | null,
): SuiteModelResult {
  const modelDir = join(suiteDir, model.name);
  const { total, nonEmbedding } = countParameters(model.config);
  return {
    name: model.name,
    parameters: total,
    nonEmbeddingParameters: nonEmbedding,
    layers: model.config.numLayers,
    hiddenSize: model.config.hiddenSize,
    heads: model.config.numHeads,
    trainIters: model.recipe.trainIters,
    finalLoss,
    finalValLoss,
    checkpoints: checkpointSteps(modelDir),
    log: relativePath(suiteDir, join(modelDir, LOG_FILE)),
  };
}
