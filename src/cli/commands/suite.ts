/** `pythia suite`: every size of a preset, side by side or one after another, on the identical batch order. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { loadTokenizer } from '../../data/tokenizer.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import { parseInterventionFrom } from '../../train/intervention-point.js';
import { SIDE_BY_SIDE_MAX_PARAMETERS } from '../../train/member-schedule.js';
import { SUITE_NAMES } from '../../train/recipes.js';
import { runSuite, SUITE_MANIFEST, type SuiteManifest } from '../../train/suite.js';
import { INTERVENTIONS, type Intervention } from '../../train/trainer.js';
import { ConfigError } from '../../util/errors.js';
import { addTokenizerOption, deviceOption, nonNegativeInt, positiveInt, tokenizerFlag } from '../arguments.js';
import { runsProgress } from '../progress.js';
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
  parallelMembers?: number;
  device: ExecutionProvider;
  json?: boolean;
}

/** The help of `--threads` and `--parallel-members`, shared by `suite` and `run`: the rule of member-schedule.ts. */
export const THREADS_HELP =
  'compute threads of each model; alone, the models train one after another (default: see --parallel-members)';
export const PARALLEL_MEMBERS_HELP =
  'train k models side by side, each at --threads threads (default: cores / k). Without this flag or --threads, ' +
  `models under ${SIDE_BY_SIDE_MAX_PARAMETERS.toLocaleString('en-US')} parameters train side by side at 1 thread each, ` +
  'as many at once as there are cores, and larger ones after them one after another with every core';

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
    .option('--threads <n>', THREADS_HELP, positiveInt)
    .option('--parallel-members <k>', PARALLEL_MEMBERS_HELP, positiveInt)
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
      const progress = runsProgress('pythia suite');
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
          parallelMembers: flags.parallelMembers,
          device: flags.device,
          onSchedule: (schedule) => progress.log(`pythia suite: ${schedule.description}\n`),
          onModelStart: (model, status, step) => {
            const what =
              status === 'done' ? 'already trained' : status === 'resume' ? `resuming at step ${step}` : 'training';
            progress.log(`pythia suite: ${model.name}: ${what}\n`);
          },
          onInterventionStart: (start) => progress.log(`pythia suite: ${describeInterventionStart(start)}\n`),
          onProgress: (model, p) => progress.update(model.name, p),
          onWarning: (w) => progress.log(`pythia suite: ${w}\n`),
        });
        progress.stop();
        process.stdout.write(
          flags.json
            ? `${JSON.stringify(manifest, null, 2)}\n`
            : formatSuite(manifest, flags.out, (performance.now() - started) / 1000),
        );
      } finally {
        progress.stop();
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
