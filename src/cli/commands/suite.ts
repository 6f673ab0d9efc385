/** `pythia suite`: every size of a preset, one after another, on the identical batch order. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { loadTokenizer } from '../../data/tokenizer.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import { parseInterventionFrom } from '../../train/intervention-point.js';
import { SUITE_NAMES } from '../../train/recipes.js';
import { runSuite, SUITE_MANIFEST, type SuiteManifest } from '../../train/suite.js';
import { INTERVENTIONS, type Intervention } from '../../train/trainer.js';
import { ConfigError } from '../../util/errors.js';
import { addTokenizerOption, deviceOption, nonNegativeInt, positiveInt, tokenizerFlag } from '../arguments.js';
import { type ProgressReporter, trainingProgress } from '../progress.js';
import { addRecipeOptions, describeInterventionStart, interventionFromOption, recipeOverrides } from './train.js';

interface SuiteFlags {
  preset: string;
  data: string;
  preshuffled: boolean;
  split?: string;
  tokenizer?: string;
  vocabFile?: string;
  out: string;
  models?: string[];
  interventionFrom?: string;
  intervention?: Intervention;
  evalIters: number;
  threads?: number;
  device: ExecutionProvider;
  json?: boolean;
}

export function registerSuite(program: Command): void {
  const cmd = program
    .command('suite')
    .description(
      'train every size of a suite preset on the same batches in the same order (checked: the manifest ' +
        `<out>/${SUITE_MANIFEST} records each step's batch hash); re-running continues where it stopped`,
    )
    .requiredOption('--preset <name>', `suite: ${SUITE_NAMES.join(' or ')}`)
    .requiredOption('--data <prefix>', 'training data: a GPT-NeoX .bin/.idx prefix')
    .requiredOption('--out <dir>', 'suite folder: <out>/<model>/step<N>/ and <out>/suite.json')
    .option('--preshuffled', 'the data is in training order, one sample of seq-length+1 tokens per item', false)
    .option(
      '--split <weights>',
      'GPT-NeoX split (e.g. 969,30,1): train on the first part of the documents, validate on the second',
    )
    .option('--models <names...>', 'only these sizes of the preset');
  addTokenizerOption(cmd, 'tokenizer.json: sets the padded vocabulary and is copied into every checkpoint');
  addRecipeOptions(cmd)
    .addOption(interventionFromOption())
    .addOption(
      new Option(
        '--intervention <kind>',
        "the sibling runs' swap with --intervention-from (default pronoun-swap)",
      ).choices([...INTERVENTIONS]),
    )
    .option('--eval-iters <n>', 'validation batches at every checkpoint, 0 for none', nonNegativeInt, 2)
    .option('--threads <n>', 'compute threads (default: every core)', positiveInt)
    .addOption(deviceOption())
    .option('--json', 'print the manifest as JSON instead of a table')
    .action(async (flags: SuiteFlags) => {
      if (!(SUITE_NAMES as readonly string[]).includes(flags.preset))
        throw new ConfigError(`--preset: unknown suite ${flags.preset} (expected ${SUITE_NAMES.join(' or ')})`);
      if (flags.intervention && !flags.interventionFrom)
        throw new ConfigError('--intervention names the swap of --intervention-from <fraction|step>; give that too');
      const interventionFrom =
        flags.interventionFrom === undefined ? undefined : parseInterventionFrom(flags.interventionFrom);
      const tokenizerPath = tokenizerFlag(flags);
      const tokenizerVocab = tokenizerPath ? (await loadTokenizer(tokenizerPath)).vocabSize : undefined;
      let progress: ProgressReporter | undefined;
      const started = performance.now();
      try {
        const manifest = await runSuite({
          preset: flags.preset,
          data: { prefix: flags.data, preshuffled: flags.preshuffled, split: flags.split },
          outDir: flags.out,
          tokenizerPath,
          tokenizerVocab,
          overrides: recipeOverrides(flags),
          only: flags.models,
          interventionFrom,
          intervention: flags.intervention,
          evalIters: flags.evalIters,
          threads: flags.threads,
          device: flags.device,
          onModelStart: (model, status, step) => {
            progress?.stop();
            progress = trainingProgress('pythia suite', model.name);
            const what =
              status === 'done' ? 'already trained' : status === 'resume' ? `resuming at step ${step}` : 'training';
            process.stderr.write(`pythia suite: ${model.name}: ${what}\n`);
          },
          onInterventionStart: (start) => {
            progress?.stop();
            progress = trainingProgress('pythia suite', start.name);
            process.stderr.write(`pythia suite: ${describeInterventionStart(start)}\n`);
          },
          onProgress: (_model, p) => progress?.update(p),
          onWarning: (w) => process.stderr.write(`pythia suite: ${w}\n`),
        });
        progress?.stop();
        process.stdout.write(
          flags.json
            ? `${JSON.stringify(manifest, null, 2)}\n`
            : formatSuite(manifest, flags.out, (performance.now() - started) / 1000),
        );
      } finally {
        progress?.stop();
      }
    });
}

export function formatSuite(m: SuiteManifest, outDir: string, seconds: number): string {
  const baselines = m.models.filter((r) => r.baseline === undefined).length;
  const siblings = m.models.filter((r) => r.baseline !== undefined);
  const rows = m.models.map((r) => [
    r.baseline === undefined ? r.name : `${r.name} (${r.intervention} from step ${r.interventionFrom})`,
    r.nonEmbeddingParameters.toLocaleString('en-US'),
    r.parameters.toLocaleString('en-US'),
    `${r.layers}x${r.hiddenSize}`,
    r.finalLoss === null ? '-' : r.finalLoss.toFixed(4),
    r.finalValLoss === null ? '-' : r.finalValLoss.toFixed(4),
  ]);
  const header = ['model', 'non-emb params', 'params', 'L x d', 'train loss', 'val loss'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [
    `suite ${m.suite}: ${baselines} models on the same ${m.batchSha256.length} batches` +
      `${siblings.length > 0 ? `, ${siblings.length} intervention runs on them with pronouns swapped` : ''} (${seconds.toFixed(0)} s)`,
    line(header),
    ...rows.map(line),
    `checkpoints: ${outDir}/<model>/step<N>/   loss logs: ${outDir}/<model>/log.jsonl   manifest: ${outDir}/${SUITE_MANIFEST}`,
    '',
  ].join('\n');
}
