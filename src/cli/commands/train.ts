/** `pythia train`: one model on the Pythia recipe (or any GPT-NeoX config), with exact resume. */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { loadTokenizer } from '../../data/tokenizer.js';
import { readConfig } from '../../model/checkpoint.js';
import { countParameters } from '../../model/config.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import { parseInterventionFrom } from '../../train/intervention-point.js';
import { applyNeoxConfig, parseNeoxConfig } from '../../train/neox-config.js';
import { applyOverrides, type RecipeOverrides } from '../../train/overrides.js';
import { type ModelPreset, modelPreset, withTokenizerVocab } from '../../train/recipes.js';
import { flagName, RECIPE_SETTINGS } from '../../train/settings.js';
import {
  type DataSpec,
  INTERVENTIONS,
  type Intervention,
  type InterventionRunResult,
  type InterventionStart,
  loadResumePoint,
  type TrainResult,
  train,
} from '../../train/trainer.js';
import { ConfigError } from '../../util/errors.js';
import {
  addTokenizerOption,
  deviceOption,
  nonNegativeInt,
  positiveInt,
  refusedMaxMemoryOption,
  refuseMaxMemory,
  tokenizerFlag,
} from '../arguments.js';
import { trainingProgress } from '../progress.js';

/** The recipe flags, one per row of the settings table (named as GPT-NeoX's keys); shared by `train` and `suite`. */
export function addRecipeOptions(cmd: Command): Command {
  for (const setting of RECIPE_SETTINGS) {
    if (!setting.flag) continue;
    const option = new Option(setting.flag, setting.help).argParser((text: string) => {
      try {
        return setting.check(setting.parse(text));
      } catch (e) {
        throw new InvalidArgumentError(`${(e as Error).message}.`);
      }
    });
    cmd.addOption(setting.choices ? option.choices([...setting.choices]) : option);
  }
  return cmd;
}

/** The flags' values as recipe overrides (absent flags are absent). */
export function recipeOverrides(flags: object): RecipeOverrides {
  const values = flags as Record<string, unknown>;
  const overrides: Record<string, unknown> = {};
  for (const setting of RECIPE_SETTINGS) {
    if (!setting.flag) continue;
    const value = values[new Option(setting.flag).attributeName()];
    if (value !== undefined) overrides[setting.field] = value;
  }
  return overrides as RecipeOverrides;
}

export function describeResult(name: string, r: TrainResult): string {
  const val = r.finalValLoss === undefined ? '' : `, validation loss ${r.finalValLoss.toFixed(4)}`;
  const loss = r.finalLoss === undefined ? 'no steps run' : `final loss ${r.finalLoss.toFixed(4)}${val}`;
  return `${name}: step ${r.finalStep}, ${loss}\n  checkpoints ${r.modelDir}/step{${r.checkpoints.join(',')}}\n  log ${r.logPath}\n`;
}

/** The `--json` summary of a run. */
export function resultJson(name: string, r: TrainResult): Record<string, unknown> {
  const summary: Record<string, unknown> = {
    model: name,
    finalStep: r.finalStep,
    finalLoss: r.finalLoss ?? null,
    finalValLoss: r.finalValLoss ?? null,
    modelDir: r.modelDir,
    checkpoints: r.checkpoints,
    log: r.logPath,
  };
  if (r.intervention) {
    const { trained, ...run } = r.intervention;
    summary.intervention = { ...run, ...(trained ? resultJson(run.name, trained) : {}) };
  }
  return summary;
}

/** The line that says which baseline checkpoint an intervention sibling continues. */
export function describeInterventionStart(s: InterventionStart): string {
  const what =
    s.status === 'done' ? 'already trained' : s.status === 'resume' ? `resuming at step ${s.step}` : 'training';
  return `${s.name}: ${what}; ${s.kind} from ${s.baseline}'s step${s.fromStep} (the checkpoint nearest step ${Number(s.target.toFixed(4))})`;
}

function describeIntervention(run: InterventionRunResult): string {
  return run.trained
    ? describeResult(run.name, run.trained)
    : `${run.name}: already trained\n  checkpoints ${run.modelDir}\n  log ${run.logPath}\n`;
}

/** `--intervention-from` as an option (parsed in the action, so a bad value is the usual one-line error). */
export function interventionFromOption(): Option {
  return new Option(
    '--intervention-from <fraction|step>',
    "after training, continue from the checkpoint nearest this point (a fraction of train-iters such as 0.93, Pythia's last 7%, or a step) " +
      'to the end with pronouns swapped, as the sibling run <out>/<model>-intervention/ (needs the tokenizer)',
  );
}

interface TrainFlags {
  /** Refused: training cannot stream. */
  maxMemory?: number;
  preset?: string;
  config?: string;
  data?: string;
  preshuffled?: boolean;
  split?: string;
  tokenizer?: string;
  vocabFile?: string;
  initFrom?: string;
  resume?: string;
  out?: string;
  name?: string;
  intervention?: Intervention;
  interventionFrom?: string;
  evalIters: number;
  evalInterval?: number;
  threads?: number;
  device: ExecutionProvider;
  json?: boolean;
}

export function registerTrain(program: Command): void {
  const cmd = program
    .command('train')
    .description(
      "train one GPT-NeoX model on a dataset's fixed batch order with the Pythia recipe (AdamW, clipping, " +
        'GPT-NeoX v1.0 warmup + cosine), saving HF checkpoints <out>/<name>/step<N>/ on the Pythia-shaped schedule',
    )
    .option(
      '--preset <name>',
      'architecture and recipe to start from: 70m ... 12b, 70m-deduped ... 12b-deduped, nano-25k ... nano-793k',
    )
    .option(
      '--config <file>',
      'GPT-NeoX YAML/JSON config laid over the preset (pythia-70m without --preset), e.g. from pythia export neox-config',
    )
    .option('--data <prefix>', 'training data: a GPT-NeoX .bin/.idx prefix')
    .option(
      '--preshuffled',
      'the data is in training order, one sample of seq-length+1 tokens per item (step s trains on items [s*B, (s+1)*B))',
      false,
    )
    .option(
      '--split <weights>',
      'GPT-NeoX split (e.g. 969,30,1): train on the first part of the documents, validate on the second as GPT-NeoX does',
    );
  addTokenizerOption(cmd, 'tokenizer.json: sets the padded vocabulary and is copied into every checkpoint');
  addRecipeOptions(cmd)
    .option(
      '--init-from <checkpoint>',
      "start from this HF checkpoint folder's weights (its architecture) instead of the seeded init",
    )
    .option(
      '--resume <step dir>',
      'continue a run from <run>/<model>/step<N>/ to the same bytes as a run that never stopped',
    )
    .addOption(
      new Option(
        '--intervention <kind>',
        'with --resume: swap masculine pronouns for feminine ones in every batch from there on; ' +
          "with --intervention-from: the sibling run's swap (pronoun-swap, the default: whole words, any tokenizer; " +
          "pronoun-swap-pythia: Pythia's fixed GPT-NeoX-20B token-id map)",
      ).choices([...INTERVENTIONS]),
    )
    .addOption(interventionFromOption())
    .option(
      '--out <dir>',
      "run folder; checkpoints go to <out>/<name>/step<N>/ (default with --resume: the resumed run's folder)",
    )
    .option('--name <name>', 'model folder name (default: the preset name)')
    .option('--eval-iters <n>', 'validation batches per evaluation, 0 for none', nonNegativeInt, 2)
    .option('--eval-interval <n>', 'validate every n steps (default: at every checkpoint)', positiveInt)
    .option('--threads <n>', 'compute threads (default: every core)', positiveInt)
    .addOption(deviceOption())
    .option('--json', 'print the summary as JSON')
    .addOption(refusedMaxMemoryOption())
    .action(async (flags: TrainFlags) => {
      refuseMaxMemory(
        flags,
        `train${flags.initFrom ? ' --init-from' : ''} cannot stream: training updates every weight at every step`,
      );
      const result = flags.resume ? await resumeRun(flags) : await freshRun(flags);
      const name = basename(result.modelDir);
      if (flags.json) process.stdout.write(`${JSON.stringify(resultJson(name, result), null, 2)}\n`);
      else
        process.stdout.write(
          describeResult(name, result) + (result.intervention ? describeIntervention(result.intervention) : ''),
        );
    });
}

async function freshRun(flags: TrainFlags): Promise<TrainResult> {
  if (!flags.preset && !flags.config && !flags.initFrom)
    throw new ConfigError(
      'say what to train: --preset <name> (e.g. nano-25k, pythia-70m), --config <file.yml> or --init-from <checkpoint>',
    );
  if (flags.intervention && !flags.interventionFrom)
    throw new ConfigError(
      '--intervention needs --resume <run>/<model>/step<N> (it continues a run from a checkpoint) or --intervention-from <fraction|step>',
    );
  if (!flags.data) throw new ConfigError('--data <prefix> is required (a GPT-NeoX .bin/.idx dataset)');
  if (!flags.out) throw new ConfigError('--out <dir> is required (the run folder)');
  const tokenizerPath = tokenizerFlag(flags);
  const tokenizerVocab = tokenizerPath ? (await loadTokenizer(tokenizerPath)).vocabSize : undefined;
  let preset: ModelPreset = modelPreset(flags.preset ?? 'pythia-70m');
  let name = flags.name ?? preset.name;
  let padding = {};
  if (flags.config) {
    const values = parseNeoxConfig(readFileSync(flags.config, 'utf8'), flags.config);
    for (const w of values.warnings) process.stderr.write(`pythia train: ${flags.config}: ${w}\n`);
    preset = applyNeoxConfig(preset, values, flags.config);
    padding = { modelParallelSize: values.data.modelParallelSize, divisibleBy: values.data.makeVocabSizeDivisibleBy };
    name = flags.name ?? basename(flags.config).replace(/\.(ya?ml|json)$/, '');
  }
  preset = withTokenizerVocab(preset, tokenizerVocab, padding);
  if (flags.initFrom) {
    const config = readConfig(flags.initFrom);
    if (tokenizerVocab !== undefined && tokenizerVocab > config.vocabSize)
      throw new ConfigError(
        `${tokenizerPath}: ${tokenizerVocab} tokens do not fit the vocabulary of ${flags.initFrom} (${config.vocabSize})`,
      );
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
  return run(name, preset, data, flags, flags.out, tokenizerPath, undefined);
}

async function resumeRun(flags: TrainFlags): Promise<TrainResult> {
  const changed = RECIPE_SETTINGS.filter((s) => s.flag && recipeOverrides(flags)[s.field] !== undefined).map(flagName);
  const others = [
    ...(flags.preset ? ['--preset'] : []),
    ...(flags.config ? ['--config'] : []),
    ...(flags.initFrom ? ['--init-from'] : []),
    ...(flags.split ? ['--split'] : []),
  ];
  for (const flag of [...changed, ...others])
    throw new ConfigError(`${flag} cannot be combined with --resume: a resumed run keeps its recipe and data order`);
  const point = loadResumePoint(flags.resume!);
  const stepDir = resolve(flags.resume!);
  const name = flags.name ?? point.state.model;
  if (flags.intervention && !flags.interventionFrom && !flags.out)
    throw new ConfigError('--intervention writes a separate run: give it its own --out <dir>');
  const out = flags.out ?? dirname(dirname(stepDir));
  if (
    (!flags.intervention || flags.interventionFrom) &&
    flags.out &&
    resolve(flags.out, name) !== dirname(stepDir) &&
    existsSync(resolve(flags.out, name))
  )
    throw new ConfigError(
      `${resolve(flags.out, name)} already exists; resume into the original run folder or a new one`,
    );
  const data: DataSpec = { ...point.state.data, prefix: flags.data ?? point.state.data.prefix };
  const preset: ModelPreset = { name, config: point.config, recipe: point.state.recipe };
  const tokenizer = tokenizerFlag(flags) ?? point.tokenizerPath;
  const swapNow = flags.intervention && !flags.interventionFrom;
  process.stderr.write(
    `pythia train: ${name}: resuming at step ${point.state.step} of ${point.state.recipe.trainIters}${swapNow ? ` with the ${flags.intervention} intervention` : ''}\n`,
  );
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
  let progress = trainingProgress('pythia train', name);
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
      interventionFrom:
        flags.interventionFrom === undefined ? undefined : parseInterventionFrom(flags.interventionFrom),
      onInterventionStart: (start) => {
        progress.stop();
        progress = trainingProgress('pythia train', start.name);
        process.stderr.write(`pythia train: ${describeInterventionStart(start)}\n`);
      },
      evalIters: flags.evalIters,
      evalInterval: flags.evalInterval,
      threads: flags.threads,
      device: flags.device,
      onProgress: (p) => progress.update(p),
      onWarning: (w) => process.stderr.write(`pythia train: ${w}\n`),
    });
  } finally {
    progress.stop();
  }
}
