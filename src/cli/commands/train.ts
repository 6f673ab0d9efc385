/** `pythia train`: one model on the Pythia recipe (or any GPT-NeoX config), with exact resume. */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { loadTokenizer } from '../../data/tokenizer.js';
import { readConfig } from '../../model/checkpoint.js';
import { countParameters } from '../../model/config.js';
import { LR_DECAY_STYLES } from '../../train/lr-schedule.js';
import { applyNeoxConfig, parseNeoxConfig } from '../../train/neox-config.js';
import { applyOverrides, type RecipeOverrides } from '../../train/overrides.js';
import { modelPreset, paddedVocabSize, type ModelPreset } from '../../train/recipes.js';
import { loadResumePoint, train, type DataSpec, type StepProgress, type TrainResult } from '../../train/trainer.js';
import { ConfigError } from '../../util/errors.js';
import { nonNegativeInt, nonNegativeNumber, positiveInt } from '../arguments.js';




function fraction(value: string): number {
  const x = nonNegativeNumber(value);
  if (x > 1) throw new InvalidArgumentError('expected a fraction in [0, 1].');
  return x;
}

function intList(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (!parts.every((p) => /^\d+$/.test(p))) throw new InvalidArgumentError('expected comma-separated non-negative integers, e.g. 0,1,2,4.');
  return parts.map(Number);
}

/** The recipe flags, named as GPT-NeoX's config keys; shared by `train` and `suite`. */
export function addRecipeOptions(cmd: Command): Command {
  return cmd
    .option('--seq-length <n>', 'tokens per sample (the data holds seq-length + 1 per sample)', positiveInt)
    .option('--train-batch-size <n>', 'sequences per optimizer step', positiveInt)
    .option('--train-micro-batch-size-per-gpu <n>', 'sequences per forward/backward pass', positiveInt)
    .option('--gradient-accumulation-steps <n>', 'micro-batches per optimizer step', positiveInt)
    .option('--train-iters <n>', 'optimizer steps', positiveInt)
    .option('--lr-decay-iters <n>', 'length of the LR schedule (default: train-iters)', positiveInt)
    .option('--lr <x>', 'peak learning rate', nonNegativeNumber)
    .option('--min-lr <x>', 'learning-rate floor', nonNegativeNumber)
    .addOption(new Option('--lr-decay-style <style>', 'schedule after warmup').choices([...LR_DECAY_STYLES]))
    .option('--warmup <fraction>', 'linear warmup as a fraction of lr-decay-iters (GPT-NeoX warmup)', fraction)
    .option('--weight-decay <x>', 'decoupled weight decay (not on biases and LayerNorm parameters)', nonNegativeNumber)
    .option('--gradient-clipping <x>', 'global gradient-norm limit (0: off)', nonNegativeNumber)
    .option('--seed <n>', 'seed of the initialisation and of the data order', nonNegativeInt)
    .option('--checkpoint-factor <n>', 'save every n steps (with linear checkpoint-scale)', positiveInt)
    .addOption(new Option('--checkpoint-scale <scale>', 'linear: every factor steps; log: at powers of factor').choices(['linear', 'log']))
    .option('--extra-save-iters <list>', 'further steps to save, e.g. 0,1,2,4,8', intList)
    .addOption(new Option('--optimizer-flavour <flavour>', 'Adam rounding: apex FusedAdam (GPT-NeoX) or torch AdamW').choices(['apex', 'torch']));
}

export interface RecipeFlags {
  seqLength?: number;
  trainBatchSize?: number;
  trainMicroBatchSizePerGpu?: number;
  gradientAccumulationSteps?: number;
  trainIters?: number;
  lrDecayIters?: number;
  lr?: number;
  minLr?: number;
  lrDecayStyle?: RecipeOverrides['lrDecayStyle'];
  warmup?: number;
  weightDecay?: number;
  gradientClipping?: number;
  seed?: number;
  checkpointFactor?: number;
  checkpointScale?: RecipeOverrides['checkpointScale'];
  extraSaveIters?: number[];
  optimizerFlavour?: RecipeOverrides['optimizer'];
}

export function recipeOverrides(f: RecipeFlags): RecipeOverrides {
  return {
    seqLength: f.seqLength,
    trainBatchSize: f.trainBatchSize,
    microBatchSize: f.trainMicroBatchSizePerGpu,
    gradientAccumulationSteps: f.gradientAccumulationSteps,
    trainIters: f.trainIters,
    lrDecayIters: f.lrDecayIters,
    lr: f.lr,
    minLr: f.minLr,
    lrDecayStyle: f.lrDecayStyle,
    warmup: f.warmup,
    weightDecay: f.weightDecay,
    gradientClipping: f.gradientClipping,
    seed: f.seed,
    checkpointFactor: f.checkpointFactor,
    checkpointScale: f.checkpointScale,
    extraSaveIters: f.extraSaveIters,
    optimizer: f.optimizerFlavour,
  };
}

const FLAG_OF: Record<keyof RecipeOverrides, string> = {
  seqLength: '--seq-length', trainBatchSize: '--train-batch-size', microBatchSize: '--train-micro-batch-size-per-gpu',
  gradientAccumulationSteps: '--gradient-accumulation-steps', trainIters: '--train-iters', lrDecayIters: '--lr-decay-iters',
  lr: '--lr', minLr: '--min-lr', lrDecayStyle: '--lr-decay-style', warmup: '--warmup', weightDecay: '--weight-decay',
  gradientClipping: '--gradient-clipping', seed: '--seed', checkpointFactor: '--checkpoint-factor',
  checkpointScale: '--checkpoint-scale', extraSaveIters: '--extra-save-iters', optimizer: '--optimizer-flavour',
};

/** A progress bar on stderr (drawn only on a terminal): step, loss, tokens/s and ETA. */
export function trainingProgressBar(name: string): { update: (p: StepProgress) => void; stop: () => void } {
  const bar = new cliProgress.SingleBar(
    {
      format: `${name} |{bar}| {value}/{total} | loss {loss} | {tps} tok/s | ETA {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(p) {
      if (!started) {
        bar.start(p.trainIters, p.step - 1, { loss: '-', tps: '-' });
        started = true;
      }
      bar.update(p.step, { loss: p.loss.toFixed(4), tps: Math.round(p.tokensPerSecond).toLocaleString('en-US') });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

export function describeResult(name: string, r: TrainResult): string {
  const val = r.finalValLoss === undefined ? '' : `, validation loss ${r.finalValLoss.toFixed(4)}`;
  const loss = r.finalLoss === undefined ? 'no steps run' : `final loss ${r.finalLoss.toFixed(4)}${val}`;
  return `${name}: step ${r.finalStep}, ${loss}\n  checkpoints ${r.modelDir}/step{${r.checkpoints.join(',')}}\n  log ${r.logPath}\n`;
}

interface TrainFlags extends RecipeFlags {
  preset?: string;
  config?: string;
  data?: string;
  preshuffled?: boolean;
  split?: string;
  vocabFile?: string;
  initFrom?: string;
  resume?: string;
  out?: string;
  name?: string;
  intervention?: 'pronoun-swap';
  evalIters: number;
  evalInterval?: number;
  threads?: number;
}

export function registerTrain(program: Command): void {
  const cmd = program
    .command('train')
    .description(
      'train one GPT-NeoX model on a dataset\'s fixed batch order with the Pythia recipe (AdamW, clipping, ' +
        'GPT-NeoX v1.0 warmup + cosine), saving HF checkpoints <out>/<name>/step<N>/ on the Pythia-shaped schedule',
    )
    .option('--preset <name>', 'architecture and recipe to start from: 70m ... 12b, nano-25k ... nano-793k', 'pythia-70m')
    .option('--config <file>', 'GPT-NeoX YAML/JSON config laid over the preset (e.g. from pythia export neox-config)')
    .option('--data <prefix>', 'training data: a GPT-NeoX .bin/.idx prefix')
    .option('--preshuffled', 'the data is in training order, one sample of seq-length+1 tokens per item (step s trains on items [s*B, (s+1)*B))', false)
    .option('--split <weights>', 'GPT-NeoX split (e.g. 969,30,1): train on the first part of the documents')
    .option('--vocab-file <tokenizer.json>', 'tokenizer: sets the padded vocabulary and is copied into every checkpoint');
  addRecipeOptions(cmd)
    .option('--init-from <checkpoint>', 'start from this HF checkpoint folder\'s weights (its architecture) instead of the seeded init')
    .option('--resume <step dir>', 'continue a run from <run>/<model>/step<N>/ to the same bytes as a run that never stopped')
    .addOption(new Option('--intervention <kind>', 'with --resume: swap masculine pronouns for feminine ones in every batch from there on').choices(['pronoun-swap']))
    .option('--out <dir>', 'run folder; checkpoints go to <out>/<name>/step<N>/ (default with --resume: the resumed run\'s folder)')
    .option('--name <name>', 'model folder name (default: the preset name)')
    .option('--eval-iters <n>', 'held-out validation batches (those right after the last training batch), 0 for none', nonNegativeInt, 2)
    .option('--eval-interval <n>', 'validate every n steps (default: at every checkpoint)', positiveInt)
    .option('--threads <n>', 'compute threads (default: every core)', positiveInt)
    .action(async (flags: TrainFlags) => {
      const result = flags.resume ? await resumeRun(flags) : await freshRun(flags);
      process.stdout.write(describeResult(basename(result.modelDir), result));
    });
}

async function freshRun(flags: TrainFlags): Promise<TrainResult> {
  if (flags.intervention) throw new ConfigError('--intervention needs --resume <run>/<model>/step<N>: it continues a run from a checkpoint');
  if (!flags.data) throw new ConfigError('--data <prefix> is required (a GPT-NeoX .bin/.idx dataset)');
  if (!flags.out) throw new ConfigError('--out <dir> is required (the run folder)');
  let tokenizerVocab: number | undefined;
  if (flags.vocabFile) tokenizerVocab = (await loadTokenizer(flags.vocabFile)).vocabSize;
  let preset: ModelPreset = modelPreset(flags.preset!, tokenizerVocab === undefined ? undefined : paddedVocabSize(tokenizerVocab));
  if (tokenizerVocab !== undefined) preset = { ...preset, config: { ...preset.config, vocabSize: paddedVocabSize(tokenizerVocab) } };
  let name = flags.name ?? preset.name;
  if (flags.config) {
    const values = parseNeoxConfig(readFileSync(flags.config, 'utf8'), flags.config);
    for (const w of values.warnings) process.stderr.write(`pythia train: ${flags.config}: ${w}\n`);
    preset = applyNeoxConfig(preset, values, flags.config);
    name = flags.name ?? basename(flags.config).replace(/\.(ya?ml|json)$/, '');
  }
  if (flags.initFrom) {
    const config = readConfig(flags.initFrom);
    if (tokenizerVocab !== undefined && tokenizerVocab > config.vocabSize)
      throw new ConfigError(`${flags.vocabFile}: ${tokenizerVocab} tokens do not fit the vocabulary of ${flags.initFrom} (${config.vocabSize})`);
    preset = { ...preset, config };
    name = flags.name ?? basename(resolve(flags.initFrom));
  }
  preset = applyOverrides(preset, recipeOverrides(flags));
  const data: DataSpec = { prefix: flags.data, preshuffled: flags.preshuffled ?? false, split: flags.split };
  const { total, nonEmbedding } = countParameters(preset.config);
  process.stderr.write(
    `pythia train: ${name}: ${total.toLocaleString('en-US')} parameters (${nonEmbedding.toLocaleString('en-US')} non-embedding), ` +
      `${preset.recipe.trainIters} steps of ${preset.recipe.trainBatchSize} x ${preset.recipe.seqLength} tokens\n`,
  );
  return run(name, preset, data, flags, flags.out, flags.vocabFile, undefined);
}

async function resumeRun(flags: TrainFlags): Promise<TrainResult> {
  const changed = (Object.entries(recipeOverrides(flags)) as [keyof RecipeOverrides, unknown][]).filter(([, v]) => v !== undefined).map(([k]) => FLAG_OF[k]);
  for (const flag of [...changed, ...(flags.config ? ['--config'] : []), ...(flags.initFrom ? ['--init-from'] : []), ...(flags.split ? ['--split'] : [])])
    throw new ConfigError(`${flag} cannot be combined with --resume: a resumed run keeps its recipe and data order`);
  const point = loadResumePoint(flags.resume!);
  const stepDir = resolve(flags.resume!);
  const name = flags.name ?? point.state.model;
  if (flags.intervention && !flags.out) throw new ConfigError('--intervention writes a separate run: give it its own --out <dir>');
  const out = flags.out ?? dirname(dirname(stepDir));
  if (!flags.intervention && flags.out && resolve(flags.out, name) !== dirname(stepDir) && existsSync(resolve(flags.out, name)))
    throw new ConfigError(`${resolve(flags.out, name)} already exists; resume into the original run folder or a new one`);
  const data: DataSpec = { ...point.state.data, prefix: flags.data ?? point.state.data.prefix };
  const preset: ModelPreset = { name, config: point.config, recipe: point.state.recipe };
  const tokenizer = flags.vocabFile ?? point.tokenizerPath;
  process.stderr.write(`pythia train: ${name}: resuming at step ${point.state.step} of ${point.state.recipe.trainIters}${flags.intervention ? ` with the ${flags.intervention} intervention` : ''}\n`);
  return run(name, preset, data, flags, out, tokenizer, point);
}

async function run(
  name: string,
  preset: ModelPreset,
  data: DataSpec,
  flags: TrainFlags,
  out: string,
  tokenizerPath: string | undefined,
  resume: ReturnType<typeof loadResumePoint> | undefined,
): Promise<TrainResult> {
  const bar = trainingProgressBar(name);
  try {
    return await train({
      name,
      config: preset.config,
      recipe: preset.recipe,
      data,
      outDir: out,
      tokenizerPath,
      initFrom: flags.initFrom,
      resume,
      intervention: flags.intervention,
      evalIters: flags.evalIters,
      evalInterval: flags.evalInterval,
      threads: flags.threads,
      onProgress: (p) => bar.update(p),
      onWarning: (w) => process.stderr.write(`pythia train: ${w}\n`),
    });
  } finally {
    bar.stop();
  }
}
