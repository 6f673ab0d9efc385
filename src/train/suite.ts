/**
 * A suite: every size of a preset trained on the identical sequence of batches, side by side or
 * one after another as member-schedule.ts's fixed rule says. The manifest `<out>/suite.json`
 * records each model's results and the sha256 of every step's batch, checked, once all have
 * trained, to be the same for all sizes. Re-running continues where it stopped: finished models
 * are kept, an interrupted one resumes from its last checkpoint.
 *
 * With `interventionFrom`, each model is followed by its intervention sibling
 * `<out>/<model>-intervention/` (see `trainIntervention`), kept and resumed the same way: one after
 * another in the same thread, side by side as a job of its own once its model's job has finished.
 * The batches it trained on before the swap are checked against the same hashes.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { countParameters } from '../model/config.js';
import type { ExecutionProvider } from '../runtime/session.js';
import { ConfigError, DataError } from '../util/errors.js';
import { relativePath } from '../util/recorded-path.js';
import { type InterventionFrom, interventionName } from './intervention-point.js';
import { type MemberSchedule, memberSchedule } from './member-schedule.js';
import { applyOverrides, type RecipeOverrides } from './overrides.js';
import { type ModelPreset, suitePreset, withTokenizerVocab } from './recipes.js';
import {
  checkpointSteps,
  LOG_FILE,
  type LogEntry,
  readLog,
  type SuiteManifest,
  type SuiteModelResult,
  writeSuiteManifest,
} from './run-folder.js';
import { type MemberEvents, type MemberJob, trainMember, trainSideBySide } from './suite-member.js';
import {
  type DataSpec,
  type Intervention,
  type InterventionPlan,
  type InterventionStart,
  planIntervention,
  type StepProgress,
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
  /** Threads of each model; with `parallelMembers`, or alone, see member-schedule.ts. */
  threads?: number;
  /** Models trained side by side at once (member-schedule.ts; default: the small ones, one per core). */
  parallelMembers?: number;
  device?: ExecutionProvider;
  /** After each model, its intervention sibling `<model>-intervention` from this point (needs the tokenizer). */
  interventionFrom?: InterventionFrom;
  /** The sibling's swap (default pronoun-swap). */
  intervention?: Intervention;
  /** How the models will share the machine, said once before the first trains. */
  onSchedule?: (schedule: MemberSchedule) => void;
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
  // Every sibling's point, tokenizer and swap are checked before the first model trains.
  const plans = new Map<string, InterventionPlan>();
  if (options.interventionFrom)
    for (const model of models)
      plans.set(model.name, await planIntervention({ ...options, name: model.name, recipe: model.recipe }));
  const schedule = memberSchedule(models, {
    ...options,
    siblings: options.interventionFrom !== undefined,
    cores: availableParallelism(),
  });
  options.onSchedule?.(schedule);
  const job = (model: ModelPreset, threads: number | undefined): MemberJob => ({
    model,
    data: options.data,
    outDir: options.outDir,
    tokenizerPath: options.tokenizerPath,
    evalIters: options.evalIters,
    threads,
    device: options.device,
    plan: plans.get(model.name),
  });
  const events = (job: MemberJob): MemberEvents => ({
    onStart: (status, fromStep) => options.onModelStart?.(job.model, status, fromStep),
    onProgress: options.onProgress,
    onInterventionStart: options.onInterventionStart,
    onWarning: options.onWarning,
  });
  if (schedule.parallel > 1) {
    const byName = new Map(schedule.sideBySide.map((m) => [m.name, m]));
    const jobs = schedule.sideBySideJobs.map(({ model, sibling }): MemberJob => {
      const j = job(byName.get(model)!, schedule.sideBySideThreads);
      return sibling ? { ...j, siblingOnly: true } : { ...j, plan: undefined };
    });
    await trainSideBySide(jobs, schedule.parallel, events);
  } else
    for (const m of schedule.sideBySide) {
      const j = job(m, schedule.sideBySideThreads);
      await trainMember(j, events(j));
    }
  for (const m of schedule.oneByOne) {
    const j = job(m, schedule.oneByOneThreads);
    await trainMember(j, events(j));
  }

  // The models' logs, in the preset's order, checked against the first model's batches.
  const results: SuiteModelResult[] = [];
  let reference: { name: string; hashes: string[] } | undefined;
  for (const model of models) {
    const log = readLog(join(options.outDir, model.name, LOG_FILE));
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
    results.push(modelResult(model, options.outDir, log));

    const plan = plans.get(model.name);
    if (!plan) continue;
    const sibling: ModelPreset = { ...model, name: interventionName(model.name) };
    const siblingLog = readLog(join(options.outDir, sibling.name, LOG_FILE));
    for (const e of siblingLog) {
      const expected = reference.hashes[e.step - 1];
      if (e.source_batch_sha256 && expected && e.source_batch_sha256 !== expected)
        throw new DataError(
          `suite: ${sibling.name} trained at step ${e.step} on a batch (before the swap) other than ${reference.name}'s; it must continue the same data order`,
        );
    }
    results.push({
      ...modelResult(sibling, options.outDir, siblingLog),
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

function modelResult(model: ModelPreset, suiteDir: string, log: LogEntry[]): SuiteModelResult {
  const finalLoss = [...log].reverse().find((e) => e.loss !== undefined)?.loss ?? null;
  const finalValLoss = [...log].reverse().find((e) => e.val_loss !== undefined)?.val_loss ?? null;
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
