/**
 * Progress of long work on stderr: a bar on a terminal; elsewhere (cluster logs, pipes) one line
 * every few seconds with the same figures, so a log shows the run moving.
 */
import cliProgress from 'cli-progress';

/** Seconds between progress lines when stderr is not a terminal. */
export const PROGRESS_LINE_SECONDS = 5;

export interface StepFigures {
  step: number;
  trainIters: number;
  loss: number;
  tokensPerSecond: number;
}

export interface ProgressReporter {
  update(p: StepFigures): void;
  stop(): void;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '-';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

const tokensText = (tps: number): string => Math.round(tps).toLocaleString('en-US');

/** Step, loss, tokens/s and ETA for a training run, as a bar (terminal) or timed lines (`prefix: ...`). */
export function trainingProgress(
  prefix: string,
  name: string,
  options: { tty?: boolean; everySeconds?: number; write?: (line: string) => void } = {},
): ProgressReporter {
  const tty = options.tty ?? process.stderr.isTTY === true;
  if (tty) return trainingBar(name);
  const every = (options.everySeconds ?? PROGRESS_LINE_SECONDS) * 1000;
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  let started: { at: number; step: number } | undefined;
  let lastLine = -Infinity;
  return {
    update(p) {
      const now = performance.now();
      started ??= { at: now, step: p.step - 1 };
      if (now - lastLine < every && p.step !== p.trainIters) return;
      lastLine = now;
      const perStep = (now - started.at) / 1000 / Math.max(1, p.step - started.step);
      const eta = formatDuration(perStep * (p.trainIters - p.step));
      const percent = ((100 * p.step) / p.trainIters).toFixed(1);
      write(
        `${prefix}: ${name}: step ${p.step}/${p.trainIters} (${percent}%), loss ${p.loss.toFixed(4)}, ${tokensText(p.tokensPerSecond)} tokens/s, ETA ${eta}\n`,
      );
    },
    stop() {},
  };
}

function trainingBar(name: string): ProgressReporter {
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
      bar.update(p.step, { loss: p.loss.toFixed(4), tps: tokensText(p.tokensPerSecond) });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** Progress of several training runs at once (a suite's models side by side), and lines between them. */
export interface RunsProgress {
  update(name: string, p: StepFigures): void;
  /** A line above the bars (a terminal) or among the progress lines. */
  log(line: string): void;
  stop(): void;
}

/** A bar per run on a terminal; elsewhere each run's timed lines (`prefix: <name>: ...`), as `trainingProgress`. */
export function runsProgress(
  prefix: string,
  options: { tty?: boolean; everySeconds?: number; write?: (line: string) => void } = {},
): RunsProgress {
  const tty = options.tty ?? process.stderr.isTTY === true;
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  if (!tty) {
    const reporters = new Map<string, ProgressReporter>();
    return {
      update(name, p) {
        if (!reporters.has(name))
          reporters.set(name, trainingProgress(prefix, name, { ...options, tty: false, write }));
        reporters.get(name)!.update(p);
      },
      log: write,
      stop() {},
    };
  }
  const bars = new cliProgress.MultiBar(
    { stream: process.stderr, hideCursor: true, etaBuffer: 20, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  const width = 24;
  const created = new Map<string, cliProgress.SingleBar>();
  return {
    update(name, p) {
      const payload = { loss: p.loss.toFixed(4), tps: tokensText(p.tokensPerSecond) };
      let bar = created.get(name);
      if (!bar) {
        const format = `${name.padEnd(width)} |{bar}| {value}/{total} | loss {loss} | {tps} tok/s | ETA {eta_formatted}`;
        bar = bars.create(p.trainIters, p.step - 1, { loss: '-', tps: '-' }, { format });
        created.set(name, bar);
      }
      bar.update(p.step, payload);
    },
    log: (line) => (bars.isActive ? bars.log(line) : write(line)),
    stop() {
      if (bars.isActive) bars.stop();
    },
  };
}
