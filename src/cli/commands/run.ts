/** `pythia run`: the whole pipeline (synth → suite with intervention siblings → eval with case studies → report) with one progress display. */
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { type Command, InvalidArgumentError } from 'commander';
import { type RunEvent, type RunRecord, runPipeline, STAGES, type Stage } from '../../pipeline/run.js';
import { STUDY_NAMES } from '../../results/studies.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import { addTokenizerOption, deviceOption, positiveInt, type TokenizerFlags, tokenizerFlag } from '../arguments.js';
import { formatDuration, PROGRESS_LINE_SECONDS } from '../progress.js';
import { addStudyOptions, studyFlags } from '../study-flags.js';
import { intList } from './eval.js';
import { PARALLEL_MEMBERS_HELP } from './suite.js';
import { addRecipeOptions, recipeOverrides } from './train.js';

/** Each stage's share of the whole bar, roughly its share of the main job's time. */
const WEIGHT: Record<Stage, number> = { synth: 0.1, train: 0.55, eval: 0.3, report: 0.05 };

/**
 * One display for the pipeline: a bar over all stages on a terminal (its fraction is the finished
 * stages' weights plus the current stage's own progress), else a line at each stage boundary and
 * every few seconds in between.
 */
export function pipelineProgress(
  options: { tty?: boolean; everySeconds?: number; write?: (line: string) => void } = {},
): { onEvent: (e: RunEvent) => void; stop: () => void } {
  const tty = options.tty ?? process.stderr.isTTY === true;
  const every = (options.everySeconds ?? PROGRESS_LINE_SECONDS) * 1000;
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const bar = new cliProgress.SingleBar(
    { format: 'pythia run |{bar}| {percentage}% | {stage} | {detail}', stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let done = 0;
  let current: Stage = 'synth';
  /** Each training run's share done (by run number), side by side or one after another. */
  const trainDone = new Map<number, number>();
  const trainFraction = (runs: number): number => [...trainDone.values()].reduce((a, b) => a + b, 0) / runs;
  /** The eval stage's share done so far, which studies between its cells leave as it is. */
  let evalFraction = 0;
  let lastLine = -Infinity;
  const show = (fraction: number, detail: string, force = false): void => {
    const value = Math.round(1000 * Math.min(1, done + WEIGHT[current] * Math.min(1, fraction)));
    if (tty) {
      if (!started) bar.start(1000, value, { stage: current, detail });
      started = true;
      bar.update(value, { stage: `${STAGES.indexOf(current) + 1}/${STAGES.length} ${current}`, detail });
      return;
    }
    const now = performance.now();
    if (!force && now - lastLine < every) return;
    lastLine = now;
    write(`pythia run: [${(value / 10).toFixed(0)}%] ${current}: ${detail}\n`);
  };
  return {
    onEvent(e) {
      if (e.type === 'stage') {
        current = e.stage;
        if (e.status === 'start') show(0, 'starting', true);
        else {
          done += WEIGHT[e.stage];
          const what =
            e.status === 'skip'
              ? `skipped (${e.detail})`
              : `done in ${formatDuration(e.seconds ?? 0)}${e.detail ? `: ${e.detail}` : ''}`;
          show(0, what, true);
          if (!tty) lastLine = -Infinity;
        }
      } else if (e.type === 'synth') {
        const p = e.progress;
        show(p.total ? (p.done ?? 0) / p.total : 0, p.total ? `${p.stage} ${p.done ?? 0}/${p.total}` : p.stage);
      } else if (e.type === 'train-schedule') {
        // A line of its own, above the bar on a terminal (which draws itself again on the next line).
        write(`${tty && started ? '\r\x1b[2K' : ''}pythia run: train: ${e.description}\n`);
      } else if (e.type === 'train') {
        if (e.progress) {
          const p = e.progress;
          trainDone.set(e.run, p.step / p.trainIters);
          show(trainFraction(e.runs), `${e.model.name} step ${p.step}/${p.trainIters}, loss ${p.loss.toFixed(3)}`);
        } else {
          if (e.status === 'done') trainDone.set(e.run, 1);
          show(
            trainFraction(e.runs),
            `${e.model.name}: ${e.status === 'done' ? 'already trained' : e.status === 'resume' ? 'resuming' : 'training'}`,
            true,
          );
        }
      } else if (e.type === 'eval') {
        const ev = e.event;
        if (ev.type === 'cell') {
          evalFraction = ev.index / ev.total;
          show(
            evalFraction,
            `${ev.cell.model} step ${ev.cell.step} ${ev.cell.task} ${ev.cell.shots}-shot (${ev.index}/${ev.total})`,
          );
        } else if (ev.type === 'study') {
          show(evalFraction, ev.model === null ? ev.study : `${ev.study}: ${ev.model} step ${ev.step}`);
        } else if (ev.type === 'plan') {
          evalFraction = ev.skipped / Math.max(1, ev.cells);
          show(evalFraction, `${ev.cells} cells, ${ev.skipped} already there`, true);
        }
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

export function formatStageTimes(record: RunRecord): string {
  const lines = ['wall time per stage:'];
  for (const s of record.stages)
    lines.push(`  ${s.stage.padEnd(8)} ${s.status === 'skipped' ? 'skipped' : formatDuration(s.seconds)}`);
  lines.push(`  ${'total'.padEnd(8)} ${formatDuration(record.totalSeconds)}`);
  return `${lines.join('\n')}\n`;
}

interface RunFlags extends TokenizerFlags {
  out: string;
  preset: string;
  data?: string;
  preshuffled?: boolean;
  taskDir?: string;
  skipTrain?: boolean;
  models?: string[];
  synthDocuments?: number;
  interventionFrom?: number;
  limit?: number;
  maxGenTokens: number;
  shots: number[];
  threads?: number;
  parallelMembers?: number;
  device: ExecutionProvider;
}

function fractionOrStep(value: string): number {
  const x = Number(value);
  if (value.trim() === '' || !Number.isFinite(x) || x <= 0 || (x >= 1 && !Number.isInteger(x))) {
    throw new InvalidArgumentError('expected a fraction in (0, 1) of train-iters, or a step.');
  }
  return x;
}

export function registerRun(program: Command): void {
  const cmd = program
    .command('run')
    .description(
      'the whole pipeline, each stage skipping finished work: the synthetic corpus, the suite with its intervention siblings, ' +
        'evaluation of every checkpoint with the case studies, and the report (<out>/suite/report/index.html)',
    )
    .option('--out <dir>', 'run folder: <out>/synth, <out>/suite, <out>/run.json', 'runs/default')
    .option('--preset <suite>', 'suite preset (nano or pythia)', 'nano')
    .option(
      '--data <prefix>',
      'your own tokenized data (.bin/.idx prefix) instead of the synthetic corpus; needs --tokenizer',
    )
    .option('--preshuffled', 'the data is in training order (Pythia preshuffled layout)')
    .option('--task-dir <dir>', "task files for evaluation (default: the synthetic corpus's tasks/)")
    .option('--skip-train', 'evaluate and report an existing suite in <out>/suite')
    .option('--models <names...>', 'only these models of the preset')
    .option(
      '--synth-documents <n>',
      'documents of the synthetic corpus (default: its standard 3-million-word size)',
      positiveInt,
    )
    .option(
      '--intervention-from <fraction|step>',
      'continue each model with pronouns swapped from this point (Pythia: 0.93, the last 7%)',
      fractionOrStep,
      0.75,
    )
    .option('--limit <n>', 'items per task at each checkpoint (default: all)', positiveInt)
    .option('--shots <list>', 'numbers of few-shot demonstrations', intList, [0])
    .option('--max-gen-tokens <n>', 'most tokens a generate_until item may generate', positiveInt, 32)
    .option(
      '--threads <n>',
      'compute threads of evaluation (default: every core) and of each model in training (see --parallel-members)',
      positiveInt,
    )
    .option('--parallel-members <k>', PARALLEL_MEMBERS_HELP, positiveInt)
    .addOption(deviceOption());
  addStudyOptions(cmd, STUDY_NAMES);
  addTokenizerOption(cmd, 'tokenizer.json of --data');
  addRecipeOptions(cmd).action(async (flags: RunFlags) => {
    const progress = pipelineProgress();
    const studies = studyFlags(flags as unknown as Record<string, unknown>, STUDY_NAMES);
    let record: RunRecord;
    try {
      record = await runPipeline({
        out: flags.out,
        preset: flags.preset,
        data: flags.data,
        preshuffled: flags.preshuffled,
        tokenizer: tokenizerFlag(flags),
        taskDir: flags.taskDir,
        skipTrain: flags.skipTrain,
        models: flags.models,
        synthDocuments: flags.synthDocuments,
        overrides: recipeOverrides(flags),
        interventionFrom: flags.interventionFrom,
        limit: flags.limit,
        maxGenTokens: flags.maxGenTokens,
        shots: flags.shots,
        studies: studies.studies,
        studySettings: studies.settings,
        threads: flags.threads,
        parallelMembers: flags.parallelMembers,
        device: flags.device,
        onEvent: progress.onEvent,
      });
    } finally {
      progress.stop();
    }
    process.stderr.write(formatStageTimes(record));
    process.stdout.write(`${join(flags.out, record.report ?? 'suite/results.duckdb')}\n`);
  });
}
