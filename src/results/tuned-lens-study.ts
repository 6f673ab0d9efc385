/**
 * The tuned-lens study (docs/analyses.md): at one checkpoint, a tuned lens trained on held-out rows
 * (or the one saved with the same training), evaluated with the logit lens's metrics on the first
 * `heldOutRows` held-out rows, the rows the logit-lens study reads; written to `lens_layers` with
 * lens = 'tuned'. The lens trains on the held-out rows after those, never on the rows it is
 * evaluated on. It is saved under `<suite>/lenses/<model>/step<N>/` for a suite checkpoint, else
 * `lenses/<model>/step<N>/` beside the results database (never inside a hub snapshot).
 */
import { dirname, join } from 'node:path';
import { bitsPerByteFactor, heldOutTokens } from '../analysis/held-out.js';
import type { CheckpointRef } from '../eval/checkpoints.js';
import { activationRunner, type EvalModel, headParameters } from '../eval/run-task.js';
import type { ActivationRunner } from '../model/activations.js';
import type { NeoXConfig } from '../model/config.js';
import type { LensLayer } from '../model/logit-lens.js';
import type { Params } from '../model/params.js';
import {
  checkLensFits,
  checkTraining,
  type TokenRows,
  type TrainProgress,
  TUNED_LENS_DEFAULTS,
  type TunedLens,
  type TunedLensTraining,
  trainTunedLens,
  tunedLensLayers,
} from '../model/tuned-lens.js';
import { type LensTraining, loadTunedLens, saveTunedLens, suiteLensDir } from '../model/tuned-lens-files.js';
import type { RuntimeOptions } from '../runtime/session.js';
import { DataError } from '../util/errors.js';
import type { StudyRuntime } from './case-studies.js';
import { EVAL_WEIGHTS, identityKey, studyIdentity } from './identity.js';
import { lensRowLength } from './lens-study.js';
import type { ResultsStore } from './store.js';

/** The tuned-lens study's settings (the held-out rows are HeldOutStudy's). */
export interface TunedLensStudy {
  tunedLensSteps: number;
  /** tuned-lens's lr_scale: SGD's learning rate is this × (1 − momentum). */
  tunedLensLr: number;
  tunedLensTokensPerStep: number;
}

/** tuned-lens's own: 250 steps of 2^18 tokens at lr_scale 1. */
export const DEFAULT_TUNED_LENS_STUDY: TunedLensStudy = {
  tunedLensSteps: TUNED_LENS_DEFAULTS.steps,
  tunedLensLr: TUNED_LENS_DEFAULTS.lr,
  tunedLensTokensPerStep: TUNED_LENS_DEFAULTS.tokensPerStep,
};

/**
 * The nano suite's (`pythia run --preset nano`): tuned-lens's recipe over 8 steps of 256 tokens
 * instead of 250 of 2^18, for its 2-core time budget.
 */
export const NANO_TUNED_LENS_STUDY: TunedLensStudy = {
  tunedLensSteps: 8,
  tunedLensLr: TUNED_LENS_DEFAULTS.lr,
  tunedLensTokensPerStep: 256,
};

export interface LensRows {
  /** The rows the lenses are evaluated on: the first `evalRows` held-out rows. */
  evaluation: TokenRows;
  /** The rows after them, which the lens trains on. */
  training: TokenRows;
  /** sha256 of all of them, evaluation rows first. */
  sha256: string;
  description: string;
}

/**
 * The held-out rows of the checkpoint in `dir` for a tuned lens: `evalRows` to evaluate on, then
 * as many as `training` reads (steps × ⌈tokens per step / length⌉), or as many as the data holds
 * (training then passes over them more than once). Data of no more than `evalRows` rows is
 * halved: the first ⌊rows / 2⌋ evaluate, the others train.
 */
export async function tunedLensRows(
  dir: string,
  request: { evalRows: number; length: number; data?: string; training: TunedLensTraining },
): Promise<LensRows> {
  const { length, training } = request;
  checkTraining(training);
  const wanted = training.steps * Math.ceil(training.tokensPerStep / length);
  const held = await heldOutTokens(dir, { rows: request.evalRows + wanted, length, data: request.data });
  if (held.rows < 2)
    throw new DataError(
      `${held.description}: ${held.rows} held-out row of ${length} tokens; a tuned lens needs one to train on and one to be evaluated on`,
    );
  const evalRows = held.rows > request.evalRows ? request.evalRows : Math.floor(held.rows / 2);
  const split = evalRows * length;
  return {
    evaluation: { tokens: held.tokens.subarray(0, split), rows: evalRows, length },
    training: { tokens: held.tokens.subarray(split), rows: held.rows - evalRows, length },
    sha256: held.sha256,
    description: held.description,
  };
}

/** The recipe's fields, in the order the study's settings and the lens's training record list them. */
function recipeOf(t: TunedLensTraining): TunedLensTraining {
  const { steps, lr, tokensPerStep, momentum, weightDecay, clipNorm, seed } = t;
  return { steps, lr, tokensPerStep, momentum, weightDecay, clipNorm, seed };
}

/** What a lens's training record holds beside its settings, and which of it must match to reuse a saved lens. */
export function lensTraining(
  training: TunedLensTraining,
  rows: LensRows,
  run: { checkpointSha256: string; device: string; heldOutData: string | null },
): LensTraining {
  return {
    ...recipeOf(training),
    rowLength: rows.training.length,
    rowsPerStep: Math.ceil(training.tokensPerStep / rows.training.length),
    evalRows: rows.evaluation.rows,
    trainRows: rows.training.rows,
    heldOutSha256: rows.sha256,
    heldOutData: run.heldOutData,
    checkpointSha256: run.checkpointSha256,
    device: run.device,
  };
}

/**
 * Whether a saved lens's record has every field of `wanted` with the same value, but the path its
 * rows were read from (their sha256 identifies them).
 */
export function sameTraining(saved: LensTraining | null, wanted: LensTraining): boolean {
  return saved !== null && Object.entries(wanted).every(([k, v]) => k === 'heldOutData' || saved[k] === v);
}

/** Trains a lens on `rows.training`, reporting each step; returns it with its final loss and seconds. */
export async function trainLens(
  runner: ActivationRunner,
  params: Params,
  rows: LensRows,
  training: TunedLensTraining,
  options: { runtime?: RuntimeOptions; onStep?: (p: TrainProgress) => void } = {},
): Promise<{ lens: TunedLens; losses: number[]; seconds: number }> {
  const started = performance.now();
  const { lens, losses } = await trainTunedLens(runner, params, rows.training, training, options);
  return { lens, losses, seconds: (performance.now() - started) / 1000 };
}

/** Token rows as the [batch, seq] int64 ids the activation runner takes. */
export function rowIds(rows: TokenRows): BigInt64Array {
  return BigInt64Array.from(rows.tokens, (t) => BigInt(t));
}

/** Where the study keeps the lens of checkpoint `ref`. */
export function studyLensDir(ref: CheckpointRef, databasePath: string): string {
  return (
    suiteLensDir(ref.dir) ??
    join(dirname(databasePath), 'lenses', ref.model, ref.step >= 0 ? `step${ref.step}` : 'unknown-step')
  );
}

function trainingOf(settings: TunedLensStudy): TunedLensTraining {
  return {
    ...TUNED_LENS_DEFAULTS,
    steps: settings.tunedLensSteps,
    lr: settings.tunedLensLr,
    tokensPerStep: settings.tunedLensTokensPerStep,
  };
}

/** The saved lens for `wanted` if there is one, else a newly trained one, saved. */
async function lensFor(
  dir: string,
  config: NeoXConfig,
  model: string,
  wanted: LensTraining,
  train: () => Promise<{ lens: TunedLens; losses: number[]; seconds: number }>,
): Promise<TunedLens> {
  try {
    const saved = loadTunedLens(dir);
    if (sameTraining(saved.training, wanted)) {
      checkLensFits(saved.lens, config, dir);
      return saved.lens;
    }
  } catch {
    // No lens there, or another one: train it anew.
  }
  const { lens, losses, seconds } = await train();
  await saveTunedLens(dir, lens, {
    baseModel: model,
    revision: null,
    training: { ...wanted, finalLoss: losses.at(-1) ?? null, seconds },
  });
  return lens;
}

/** Records the tuned lens at one checkpoint: its metrics per layer in lens_layers (lens = 'tuned'). */
export async function recordTunedLens(
  store: ResultsStore,
  ref: CheckpointRef,
  model: EvalModel,
  settings: TunedLensStudy & { heldOutRows: number; heldOutLength: number; heldOutData?: string },
  context: StudyRuntime,
): Promise<boolean> {
  // The logit-lens study's rows.
  const length = lensRowLength('tuned-lens', ref, model, settings, context);
  if (length === undefined) return false;
  const training = trainingOf(settings);
  const rows = await tunedLensRows(ref.dir, {
    evalRows: settings.heldOutRows,
    length,
    data: settings.heldOutData,
    training,
  });
  const factor = bitsPerByteFactor(model.tokenizer, rows.evaluation.tokens, rows.evaluation.rows);
  const wanted = lensTraining(training, rows, {
    checkpointSha256: context.checkpointSha256,
    device: context.device,
    heldOutData: settings.heldOutData ?? null,
  });
  const identity = studyIdentity({
    kind: 'tuned_lens',
    model: ref.model,
    step: ref.step,
    checkpointSha256: context.checkpointSha256,
    tokenizerSha256: factor === undefined ? null : context.tokenizerSha256,
    dataSha256: rows.sha256,
    device: context.device,
    weights: EVAL_WEIGHTS,
    settings: {
      heldOutRows: rows.evaluation.rows,
      heldOutLength: rows.evaluation.length,
      trainRows: rows.training.rows,
      ...recipeOf(training),
    },
  });
  const key = identityKey(identity);
  if (await store.hasStudy(key)) return false;
  const started = performance.now();
  const runner = activationRunner(model, context.runtime);
  const head = headParameters(model);
  try {
    const lens = await lensFor(studyLensDir(ref, store.path), model.config, ref.model, wanted, () =>
      trainLens(runner, head, rows, training, { runtime: context.runtime }),
    );
    const layers = await tunedLensLayers(runner, head, lens, rowIds(rows.evaluation), rows.evaluation.rows, {
      runtime: context.runtime,
    });
    await store.writeStudy(
      {
        ...identity,
        study: key,
        batchSize: null,
        threads: context.runtime.threads ?? null,
        seconds: (performance.now() - started) / 1000,
      },
      () => store.insertObjects('lens_layers', lensRows(key, ref, 'tuned', layers, factor)),
    );
    return true;
  } finally {
    await runner.release();
  }
}

/** lens_layers rows of one lens at one checkpoint. */
export function lensRows(
  study: string,
  ref: CheckpointRef,
  lens: string,
  layers: readonly LensLayer[],
  bpb: number | undefined,
) {
  return layers.map((l) => ({
    study,
    model: ref.model,
    step: ref.step,
    lens,
    layer: l.layer,
    kl: l.kl,
    ce: l.ce,
    entropy: l.entropy,
    top1: l.top1,
    kl_bpb: bpb === undefined ? null : l.kl * bpb,
    ce_bpb: bpb === undefined ? null : l.ce * bpb,
  }));
}
