/** `pythia eval`: lm-eval-style benchmarks over every (model × checkpoint × task × shots) cell, into a results database. */
import cliProgress from 'cli-progress';
import { type Command, InvalidArgumentError } from 'commander';
import { parseShard } from '../../analysis/term-count.js';
import { TASK_RESOLUTION } from '../../eval/task-files.js';
import { OUTPUT_TYPES, type OutputType } from '../../eval/tasks.js';
import { INT8_NOTICE, WEIGHT_FORMATS, type WeightFormat } from '../../model/int8.js';
import {
  DEFAULT_SEED,
  defaultDatabase,
  type EvalEvent,
  type EvaluateSummary,
  evaluate,
  type Shard,
} from '../../results/evaluate.js';
import { STUDY_NAMES } from '../../results/studies.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import { deviceOption, maxMemoryOption, nonNegativeInt, positiveInt } from '../arguments.js';
import { addStudyOptions, studyFlags } from '../study-flags.js';

export function intList(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.some((p) => !/^\d+$/.test(p)))
    throw new InvalidArgumentError('expected comma-separated non-negative integers, e.g. 0,2,4.');
  return parts.map(Number);
}

function weightFormat(value: string): WeightFormat {
  if (!(WEIGHT_FORMATS as readonly string[]).includes(value))
    throw new InvalidArgumentError(`expected one of ${WEIGHT_FORMATS.join(', ')}.`);
  return value as WeightFormat;
}

function outputType(value: string): OutputType {
  if (!(OUTPUT_TYPES as readonly string[]).includes(value))
    throw new InvalidArgumentError(`expected one of ${OUTPUT_TYPES.join(', ')}.`);
  return value as OutputType;
}

interface EvalFlags {
  tasks?: string[];
  taskDir?: string[];
  includePath?: string[];
  steps?: number[] | 'all';
  models?: string[];
  shots: number[];
  seed: number;
  limit?: number;
  db?: string;
  batchSize: number;
  maxGenTokens: number;
  threads?: number;
  device: ExecutionProvider;
  weights: WeightFormat;
  outputType?: OutputType;
  fewshotFile?: string;
  tokenizer?: string;
  cacheDir?: string;
  datasetDir?: string;
  shard?: Shard;
  maxMemory?: number;
  caseStudies?: boolean;
  json?: boolean;
}

function label(c: { model: string; step: number; task: string; shots: number }): string {
  return `${c.model} step ${c.step} ${c.task} ${c.shots}-shot`;
}

/** Progress over the grid: a bar on a terminal, a line per finished cell otherwise (cluster logs). */
function progressReporter(): { onEvent: (e: EvalEvent) => void; stop: () => void } {
  const tty = process.stderr.isTTY === true;
  const bar = new cliProgress.SingleBar(
    {
      format: 'eval |{bar}| {value}/{total} cells | {cell} | ETA {eta_formatted}',
      stream: process.stderr,
      hideCursor: true,
      etaBuffer: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    onEvent(e) {
      if (e.type === 'plan') {
        process.stderr.write(
          `pythia eval: ${e.cells} cells, ${e.skipped} already in the database, ${e.checkpoints} checkpoints to load\n`,
        );
        if (tty && e.cells > e.skipped) {
          bar.start(e.cells, e.skipped, { cell: '' });
          started = true;
        }
      } else if (e.type === 'progress' && started) {
        bar.update({ cell: `${label(e.cell)} ${e.done}/${e.items}` });
      } else if (e.type === 'study') {
        const what = e.model === null ? `${e.study} at ${e.steps} steps` : `${e.study}: ${e.model} step ${e.step}`;
        if (started) bar.update({ cell: what });
        else process.stderr.write(`pythia eval: ${what}\n`);
      } else if (e.type === 'streaming') {
        process.stderr.write(`${started ? '\n' : ''}pythia eval: ${e.model} step ${e.step}: ${e.message}\n`);
      } else if (e.type === 'warning') {
        process.stderr.write(`${started ? '\n' : ''}pythia eval: warning: ${e.message}\n`);
      } else if (e.type === 'cell') {
        const summary = e.aggregates.map((a) => `${a.metric} ${a.value.toFixed(4)}`).join(', ');
        if (started) bar.update(e.index, { cell: label(e.cell) });
        else process.stderr.write(`[${e.index}/${e.total}] ${label(e.cell)}: ${summary} (${e.seconds.toFixed(1)} s)\n`);
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** Text columns padded to their widest cell; the columns named in `right` aligned right. */
export function formatTable(header: readonly string[], rows: readonly string[][], right: readonly string[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (right.includes(header[i]!) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

export function formatSummary(aggregates: EvaluateSummary['rows']): string {
  const header = ['model', 'step', 'task', 'shots', 'metric', 'value', 'stderr'];
  const rows = aggregates.map((r) => [
    r.model,
    String(r.step),
    r.task,
    String(r.shots),
    r.metric,
    r.value.toFixed(4),
    r.stderr === null ? '-' : r.stderr.toFixed(4),
  ]);
  return formatTable(header, rows, ['value', 'stderr']);
}

/** JSON of result rows; a non-finite number, which JSON cannot hold, is written as the string "Infinity", "-Infinity" or "NaN". */
export function resultsJson(rows: readonly object[]): string {
  const json = JSON.stringify(
    rows,
    (_key, value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? String(value) : value),
    2,
  );
  return `${json}\n`;
}

/** Where results go without --db and with no one suite folder to keep them beside. */
export const WORKING_DATABASE = 'results.duckdb';

export function registerEval(program: Command): void {
  const cmd = program
    .command('eval')
    .description(
      'evaluate checkpoints on lm-eval-style tasks (multiple_choice, loglikelihood, loglikelihood_rolling, generate_until) ' +
        'into a DuckDB results database; cells already there are skipped, so an interrupted run resumes',
    )
    .argument(
      '<sources...>',
      "suite folders, checkpoint folders (HF layout or <model>/step<N>), or Hugging Face ids org/name@revision read offline from the local cache ('org/name@step*': every step<N> revision there)",
    )
    .option(
      '--tasks <tasks...>',
      `task files or task names (default: every task in the task folders); each resolves as ${TASK_RESOLUTION}`,
    )
    .option(
      '--task-dir <dirs...>',
      "folders of <name>.jsonl tasks (default: the tasks/ beside the data the suite's suite.json records)",
    )
    .option(
      '--include-path <dirs...>',
      'folders of lm-eval YAML task configs (every *.yaml under them): --tasks names their tasks, tags and groups',
    )
    .option(
      '--steps <list>',
      'only these checkpoint steps of a suite or of hub revisions (org/name@step*), e.g. 0,512,1000, or all',
      (v: string) => (v === 'all' ? 'all' : intList(v)),
    )
    .option('--models <names...>', 'only these models of a suite')
    .option('--shots <list>', 'numbers of few-shot demonstrations, e.g. 0,2,4,8,16', intList, [0])
    .option(
      '--seed <n>',
      "seed of the few-shot draw (built-in tasks: lm-eval's fewshot_random_seed)",
      nonNegativeInt,
      DEFAULT_SEED,
    )
    .option('--fewshot-file <file>', 'draw demonstrations from this task file instead of each task itself')
    .option('--output-type <type>', `the kind of lines that lack output_type (${OUTPUT_TYPES.join(', ')})`, outputType)
    .option('--limit <n>', 'only the first n items of each task', positiveInt)
    .option(
      '--db <file>',
      `results database (default: <suite>/results.duckdb for one suite folder, else ./${WORKING_DATABASE})`,
    )
    .option('--batch-size <n>', 'rows scored or generated at once', positiveInt, 16)
    .option('--max-gen-tokens <n>', 'most tokens a generate_until item may generate', positiveInt, 32)
    .option('--tokenizer <file>', 'tokenizer.json for checkpoints that carry none')
    .option(
      '--cache-dir <dir>',
      "Hugging Face hub cache for ids and built-in tasks' datasets (default: $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub)",
    )
    .option(
      '--dataset-dir <dir>',
      'datasets for built-in tasks, as <dir>/<org>/<name>/ (huggingface-cli download --local-dir), looked in before the hub cache',
    )
    .option('--threads <n>', 'compute threads (default: every core)', positiveInt)
    .addOption(deviceOption())
    .addOption(maxMemoryOption())
    .option(
      '--weights <format>',
      `the task cells' weights: ${WEIGHT_FORMATS.join(' or ')} (int8: every linear layer and the LM head quantized per output channel at load, CPU only; studies stay float32)`,
      weightFormat,
      'float32',
    )
    .option(
      '--shard <i/n>',
      'evaluate only every n-th cell of the grid starting at i (cluster array jobs; merge with `pythia results merge`)',
      parseShard,
    )
    .option('--case-studies', `every case study (--studies ${STUDY_NAMES.join(',')})`)
    .option('--json', 'print the summary table as JSON')
    .action(async (sources: string[], flags: EvalFlags) => {
      const caseStudies = flags.caseStudies ? { studies: STUDY_NAMES } : {};
      const studies = studyFlags({ ...(flags as unknown as Record<string, unknown>), ...caseStudies }, []);
      const named = flags.db ?? defaultDatabase(sources);
      const db = named ?? WORKING_DATABASE;
      const progress = progressReporter();
      // Said once the sources and tasks are known good, so a refused run is still one line.
      const onEvent = (e: EvalEvent) => {
        if (e.type === 'plan' && flags.weights === 'int8') process.stderr.write(`pythia eval: ${INT8_NOTICE}\n`);
        if (e.type === 'plan' && named === undefined)
          process.stderr.write(`pythia eval: no --db given and no suite folder; results kept in ./${db}\n`);
        progress.onEvent(e);
      };
      let summary: EvaluateSummary;
      try {
        summary = await evaluate({
          sources,
          tasks: flags.tasks,
          taskDirs: flags.taskDir,
          includePath: flags.includePath,
          outputType: flags.outputType,
          fewshotFile: flags.fewshotFile,
          models: flags.models,
          steps: flags.steps === 'all' ? undefined : flags.steps,
          shots: flags.shots,
          seed: flags.seed,
          limit: flags.limit,
          db,
          batchSize: flags.batchSize,
          maxGenTokens: flags.maxGenTokens,
          threads: flags.threads,
          device: flags.device,
          weights: flags.weights,
          tokenizer: flags.tokenizer,
          cacheDir: flags.cacheDir,
          datasetDir: flags.datasetDir,
          shard: flags.shard,
          maxMemory: flags.maxMemory,
          studies: studies.studies,
          studySettings: studies.settings,
          onEvent,
        });
      } finally {
        progress.stop();
      }
      if (flags.json) process.stdout.write(resultsJson(summary.rows));
      else process.stdout.write(formatSummary(summary.rows));
      process.stderr.write(
        `pythia eval: ${summary.evaluated} cells evaluated, ${summary.skipped} already there; results in ${summary.db}\n`,
      );
    });
  addStudyOptions(cmd, []);
}
