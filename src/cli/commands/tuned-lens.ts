/**
 * `pythia tuned-lens train|eval`: trains a checkpoint's tuned lens on held-out rows and saves it
 * (a suite checkpoint's `<suite>/lenses/<model>/step<N>/`, or `--lens-dir`), and evaluates a
 * saved one (ours, or tuned-lens's published `config.json` + `params.pt` with `--lens`) beside
 * the logit lens, per layer KL, cross-entropy, entropy and top-1.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { heldOutTokens, longestHeldOutRow } from '../../analysis/held-out.js';
import { ActivationRunner } from '../../model/activations.js';
import { loadCheckpoint } from '../../model/checkpoint.js';
import type { NeoXConfig } from '../../model/config.js';
import { tokenMatrix } from '../../model/forward.js';
import { type LensLayer, logitLens } from '../../model/logit-lens.js';
import { activationRunner, headParams, type ModelWeights } from '../../model/model-weights.js';
import { checkLensFits, TUNED_LENS_DEFAULTS, type TunedLensTraining, tunedLensLayers } from '../../model/tuned-lens.js';
import { loadTunedLens, refuseHubSnapshot, saveTunedLens, suiteLensDir } from '../../model/tuned-lens-files.js';
import { checkpointSha256 } from '../../results/identity.js';
import { DEFAULT_STUDY_SETTINGS } from '../../results/studies.js';
import { lensTraining, rowIds, trainLens, tunedLensRows } from '../../results/tuned-lens-study.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import { deviceOption, maxMemoryOption, nonNegativeNumber, positiveInt } from '../arguments.js';
import { UserError } from '../errors.js';
import { withModelWeights } from '../open-model.js';
import { formatDuration, PROGRESS_LINE_SECONDS } from '../progress.js';
import { CACHE_DIR_OPTION, CHECKPOINT_ARGUMENT, checkpointDir, REVISION_OPTION, readTokenRows } from './model.js';

interface HeldOutFlags {
  rows?: number;
  length?: number;
  data?: string;
}

interface CommonFlags extends HeldOutFlags {
  lensDir?: string;
  json?: boolean;
  threads?: number;
  device: ExecutionProvider;
  revision?: string;
}

interface TrainFlags extends CommonFlags {
  steps: number;
  lr: number;
  tokensPerStep: number;
}

interface EvalFlags extends CommonFlags {
  lens?: string;
  tokens?: string;
  maxMemory?: number;
}

/** Rows of 1024 tokens as the studies read them (and `pythia lens`), or as long as this checkpoint's held-out rows can be. */
function heldOutRowLength(
  dir: string,
  config: NeoXConfig,
  length: number | undefined,
  data: string | undefined,
): number {
  const longest = longestHeldOutRow(dir, config.maxPositions, data);
  if (length !== undefined && length > longest)
    throw new UserError(
      `--length: ${length} tokens is longer than ${data === undefined ? 'a training sample of this checkpoint, or its context + 1' : "the model's context + 1"} (${longest})`,
    );
  return length ?? Math.min(DEFAULT_STUDY_SETTINGS.heldOutLength, longest);
}

function lensDirFor(dir: string, flags: { lensDir?: string }): string {
  const lensDir = flags.lensDir ? resolve(flags.lensDir) : suiteLensDir(dir);
  if (!lensDir)
    throw new UserError(
      `${dir} is not a suite checkpoint (<suite>/<model>/step<N>): give the lens a folder with --lens-dir`,
    );
  return lensDir;
}

async function runTrain(spec: string, flags: TrainFlags): Promise<void> {
  const dir = checkpointDir(spec, flags);
  const lensDir = lensDirFor(dir, flags);
  refuseHubSnapshot(lensDir);
  const training: TunedLensTraining = {
    ...TUNED_LENS_DEFAULTS,
    steps: flags.steps,
    lr: flags.lr,
    tokensPerStep: flags.tokensPerStep,
  };
  const checkpoint = loadCheckpoint(dir);
  const { config } = checkpoint;
  const data = flags.data === undefined ? undefined : resolve(flags.data);
  const rows = await tunedLensRows(dir, {
    evalRows: flags.rows ?? DEFAULT_STUDY_SETTINGS.heldOutRows,
    length: heldOutRowLength(dir, config, flags.length, data),
    data,
    training,
  });
  const wanted = lensTraining(training, rows, {
    checkpointSha256: await checkpointSha256(dir),
    device: flags.device,
    heldOutData: data ?? null,
  });
  const { rowsPerStep, trainRows, rowLength } = wanted as Record<string, number>;
  const passes = (training.steps * rowsPerStep!) / trainRows!;
  process.stderr.write(
    `pythia tuned-lens: ${config.numLayers} translators, ${training.steps} steps of ${rowsPerStep} rows × ${rowLength} tokens from ${trainRows} held-out rows${passes > 1 ? ` (${passes.toFixed(1)} passes over them)` : ''}, after the ${rows.evaluation.rows} kept for evaluation (held-out rows: ${rows.description})\n`,
  );
  const runtime = { threads: flags.threads, provider: flags.device };
  const runner = new ActivationRunner(config, checkpoint.params, runtime);
  let last = performance.now();
  try {
    const { lens, losses, seconds } = await trainLens(runner, checkpoint.params, rows, training, {
      runtime,
      onStep: (p) => {
        const now = performance.now();
        if (p.step !== p.steps && p.step !== 1 && now - last < PROGRESS_LINE_SECONDS * 1000) return;
        last = now;
        process.stderr.write(
          `pythia tuned-lens: step ${p.step}/${p.steps}, loss ${p.loss.toFixed(4)} nats, lr ${p.lr.toPrecision(3)}\n`,
        );
      },
    });
    const finalLoss = losses.at(-1)!;
    await saveTunedLens(lensDir, lens, {
      baseModel: spec,
      revision: flags.revision ?? null,
      training: { ...wanted, finalLoss, seconds },
    });
    if (flags.json)
      process.stdout.write(
        `${JSON.stringify({ lens_dir: lensDir, steps: training.steps, rows_per_step: rowsPerStep, train_rows: trainRows, row_length: rowLength, first_loss: losses[0], final_loss: finalLoss, seconds })}\n`,
      );
    else
      process.stdout.write(
        `tuned lens saved to ${lensDir}: ${training.steps} steps in ${formatDuration(seconds)}, loss ${losses[0]!.toFixed(4)} → ${finalLoss.toFixed(4)} nats (mean KL over translators)\n`,
      );
  } finally {
    await runner.release();
  }
}

function printTable(tuned: readonly LensLayer[], logit: readonly LensLayer[]): void {
  const keys = ['kl', 'ce', 'entropy', 'top1'] as const;
  const header = ['layer', ...keys.map((k) => `tuned ${k}`), ...keys.map((k) => `logit ${k}`)];
  const rows = tuned.map((t, l) => [
    String(t.layer),
    ...keys.map((k) => t[k].toFixed(4)),
    ...keys.map((k) => logit[l]![k].toFixed(4)),
  ]);
  const widths = header.map((h, j) => Math.max(h.length, ...rows.map((row) => row[j]!.length)));
  const line = (cells: string[]) => cells.map((c, j) => c.padStart(widths[j]!)).join('  ');
  process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
}

async function runEval(spec: string, flags: EvalFlags): Promise<void> {
  if (flags.lens !== undefined && flags.lensDir !== undefined)
    throw new UserError('give either --lens (any lens folder) or --lens-dir, not both');
  const dir = checkpointDir(spec, flags);
  const lensDir = flags.lens !== undefined ? resolve(flags.lens) : lensDirFor(dir, flags);
  const saved = loadTunedLens(lensDir);
  await withModelWeights('tuned-lens', dir, flags.maxMemory, (model) => evalWith(dir, lensDir, saved, model, flags));
}

async function evalWith(
  dir: string,
  lensDir: string,
  saved: ReturnType<typeof loadTunedLens>,
  model: ModelWeights,
  flags: EvalFlags,
): Promise<void> {
  const { config } = model;
  checkLensFits(saved.lens, config, lensDir);
  const recorded = saved.training ?? {};
  const trainedOn = recorded.checkpointSha256;
  if (typeof trainedOn === 'string' && trainedOn !== (await checkpointSha256(dir)))
    process.stderr.write(`pythia tuned-lens: note: ${lensDir} was trained on another checkpoint's activations\n`);
  let ids: BigInt64Array;
  let batch: number;
  if (flags.tokens !== undefined) {
    const rows = readTokenRows(flags.tokens, true);
    if (rows[0]!.length < 2)
      throw new UserError(
        `${flags.tokens}: rows of ${rows[0]!.length} token; the lens needs at least 2 (a next token)`,
      );
    ids = tokenMatrix(rows, config.vocabSize, flags.tokens);
    batch = rows.length;
  } else {
    // By default the rows the lens was kept from training on.
    const asRecorded = (name: string) => (typeof recorded[name] === 'number' ? (recorded[name] as number) : undefined);
    const given = flags.data ?? (typeof recorded.heldOutData === 'string' ? recorded.heldOutData : undefined);
    const data = given === undefined ? undefined : resolve(given);
    const held = await heldOutTokens(dir, {
      rows: flags.rows ?? asRecorded('evalRows') ?? DEFAULT_STUDY_SETTINGS.heldOutRows,
      length: heldOutRowLength(dir, config, flags.length ?? asRecorded('rowLength'), data),
      data,
    });
    if (held.length < 2) throw new UserError(`rows of ${held.length} token; the lens needs at least 2 (a next token)`);
    ids = rowIds(held);
    batch = held.rows;
    process.stderr.write(`pythia tuned-lens: evaluating on ${held.description}\n`);
  }
  const runtime = { threads: flags.threads, provider: flags.device };
  const runner = activationRunner(model, runtime);
  const head = headParams(model);
  try {
    const tuned = await tunedLensLayers(runner, head, saved.lens, ids, batch, { runtime });
    const logit = await logitLens(runner, head, ids, batch, { runtime });
    if (flags.json)
      for (const [l, t] of tuned.entries()) {
        const { layer: _, ...other } = logit[l]!;
        process.stdout.write(`${JSON.stringify({ ...t, logit: other })}\n`);
      }
    else {
      process.stdout.write(
        `tuned lens ${lensDir} beside the logit lens (nats): layer ℓ < ${config.numLayers} reads blocks.ℓ.hook_resid_pre, layer ${config.numLayers} the final residual\n`,
      );
      printTable(tuned, logit);
    }
  } finally {
    await runner.release();
  }
}

function commonOptions(cmd: Command): Command {
  return cmd
    .argument('<checkpoint>', CHECKPOINT_ARGUMENT)
    .option('--lens-dir <dir>', "the lens's folder (default: <suite>/lenses/<model>/step<N> for a suite checkpoint)")
    .option(
      '--rows <n>',
      `rows of held-out text the lens is evaluated on, before those it trains on (default ${DEFAULT_STUDY_SETTINGS.heldOutRows})`,
      positiveInt,
    )
    .option(
      '--length <n>',
      `tokens per row of held-out text (default ${DEFAULT_STUDY_SETTINGS.heldOutLength}, or a training sample's seq-length + 1, or the context + 1, if shorter)`,
      positiveInt,
    )
    .option(
      '--data <prefix>',
      "held-out text as a tokenized dataset (.bin/.idx prefix), read from its start (default: the checkpoint's own validation batches; needed for checkpoints that pythia train did not write, e.g. the hub's)",
    )
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', positiveInt)
    .addOption(deviceOption())
    .option(...REVISION_OPTION)
    .option(...CACHE_DIR_OPTION);
}

export function registerTunedLens(program: Command): void {
  const tuned = program
    .command('tuned-lens')
    .description(
      'the tuned lens (Belrose et al., 2023): per-layer affine translators before the final LayerNorm, trained on held-out rows',
    );
  commonOptions(
    tuned
      .command('train')
      .description(
        "train a checkpoint's tuned lens on the held-out rows after the first --rows (kept for evaluation) with tuned-lens's recipe (SGD, Nesterov momentum 0.9, weight decay 1e-3, linearly decayed lr, gradient clipped to norm 1), and save it; progress on stderr",
      ),
  )
    .option('--steps <n>', "training steps (tuned-lens's default)", positiveInt, TUNED_LENS_DEFAULTS.steps)
    .option(
      '--lr <x>',
      "lr scale, tuned-lens's lr_scale: SGD's learning rate is x × (1 − momentum), decayed linearly to 0",
      nonNegativeNumber,
      TUNED_LENS_DEFAULTS.lr,
    )
    .option(
      '--tokens-per-step <n>',
      "tokens per step, read as whole rows (tuned-lens's default, 2^18)",
      positiveInt,
      TUNED_LENS_DEFAULTS.tokensPerStep,
    )
    .option(
      '--json',
      'print one JSON object: {lens_dir, steps, rows_per_step, train_rows, row_length, first_loss, final_loss, seconds}',
    )
    .action((spec: string, options: TrainFlags) => runTrain(spec, options));
  commonOptions(
    tuned
      .command('eval')
      .description(
        'a saved tuned lens beside the logit lens: per layer the mean KL(final ‖ lens), cross-entropy against the next token, entropy (nats) and top-1 agreement, on the held-out rows the lens was kept from (or --tokens)',
      ),
  )
    .option('--lens <folder>', "a lens folder of any origin: ours, or tuned-lens's config.json + params.pt")
    .option('--tokens <file.json>', 'evaluate on these token rows instead (a JSON array of equal-length rows)')
    .option('--json', 'print one JSON object per layer: {layer, kl, ce, entropy, top1, logit: {kl, ce, entropy, top1}}')
    .addOption(maxMemoryOption())
    .action((spec: string, options: EvalFlags) => runEval(spec, options));
}
