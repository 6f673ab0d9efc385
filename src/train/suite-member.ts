/**
 * One model of a suite, trained in this process or in a child process: the baseline (fresh,
 * resumed from its last checkpoint, or left as it is when finished), then its intervention
 * sibling, or only the sibling. `trainSideBySide` runs several in child processes
 * (suite-member-worker.ts), a fixed number at a time, each sibling a job of its own once its model's
 * job has finished; a model's bytes are the same there as here at the same threads. Processes, not
 * worker threads: onnxruntime-node aborted the whole process now and then when a worker thread that
 * had run sessions ended.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionProvider } from '../runtime/session.js';
import { PYTHIA_ERROR_NAMES } from '../util/errors.js';
import { interventionName } from './intervention-point.js';
import { nextJob } from './member-schedule.js';
import type { ModelPreset } from './recipes.js';
import {
  continuePoint,
  type DataSpec,
  type InterventionPlan,
  type InterventionStart,
  type StepProgress,
  type TrainOptions,
  train,
  trainIntervention,
} from './trainer.js';

/** Everything a model of the suite needs to train; plain data, so that it crosses to a child process. */
export interface MemberJob {
  model: ModelPreset;
  data: DataSpec;
  outDir: string;
  tokenizerPath?: string;
  evalIters?: number;
  threads?: number;
  device?: ExecutionProvider;
  /** The intervention sibling trained after the model (planned and checked before anything trains). */
  plan?: InterventionPlan;
  /** Only the sibling (with `plan`), its model's job finished before: side by side, a job of its own. */
  siblingOnly?: boolean;
}

export type MemberStatus = 'fresh' | 'resume' | 'done';

export interface MemberEvents {
  onStart?: (status: MemberStatus, fromStep: number) => void;
  /** Progress of the model, then of its sibling (`model` carries the sibling's name). */
  onProgress?: (model: ModelPreset, p: StepProgress) => void;
  onInterventionStart?: (start: InterventionStart) => void;
  onWarning?: (message: string) => void;
}

/** The job's model (with `siblingOnly`, only its sibling), then its sibling when it has a `plan`. */
export async function trainMember(job: MemberJob, events: MemberEvents = {}): Promise<void> {
  if (!job.siblingOnly) await trainBaseline(job, events);
  if (job.plan) await trainSibling(job, job.plan, events);
}

function trainOptions(job: MemberJob, events: MemberEvents): TrainOptions {
  const { model } = job;
  return {
    name: model.name,
    config: model.config,
    recipe: model.recipe,
    data: job.data,
    outDir: job.outDir,
    tokenizerPath: job.tokenizerPath,
    evalIters: job.evalIters,
    threads: job.threads,
    device: job.device,
    onProgress: (p) => events.onProgress?.(model, p),
    onWarning: events.onWarning,
  };
}

async function trainBaseline(job: MemberJob, events: MemberEvents): Promise<void> {
  const { model } = job;
  const resume = continuePoint(join(job.outDir, model.name), model.recipe);
  const last = resume?.state.step;
  const done = last === model.recipe.trainIters;
  events.onStart?.(done ? 'done' : resume ? 'resume' : 'fresh', last ?? 0);
  if (!done) await train({ ...trainOptions(job, events), resume });
}

async function trainSibling(job: MemberJob, plan: InterventionPlan, events: MemberEvents): Promise<void> {
  const sibling: ModelPreset = { ...job.model, name: interventionName(job.model.name) };
  await trainIntervention(
    {
      ...trainOptions(job, events),
      onProgress: (p) => events.onProgress?.(sibling, p),
      onInterventionStart: events.onInterventionStart,
    },
    plan,
  );
}

/** What a child process posts: its events, then `done` or the error. */
export type MemberMessage =
  | { type: 'start'; status: MemberStatus; fromStep: number }
  | { type: 'progress'; model: ModelPreset; progress: StepProgress }
  | { type: 'intervention-start'; start: InterventionStart }
  | { type: 'warning'; message: string }
  | { type: 'done' }
  | { type: 'error'; error: CarriedError };

/** An error as it crosses from a child process: its class name, message, and a system error's code, syscall and path. */
export interface CarriedError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
  syscall?: string;
  path?: string;
}

export function carryError(e: unknown): CarriedError {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) };
  const { code, syscall, path } = e as NodeJS.ErrnoException;
  return { name: e.name, message: e.message, stack: e.stack, code, syscall, path };
}

/** The error again, with the name the CLI reads to print a user-facing error as one line. */
function rebuiltError(c: CarriedError): Error {
  const e = new Error(c.message) as NodeJS.ErrnoException;
  e.name = c.name;
  if (c.stack && !PYTHIA_ERROR_NAMES.has(c.name)) e.stack = c.stack;
  if (c.code !== undefined) e.code = c.code;
  if (c.syscall !== undefined) e.syscall = c.syscall;
  if (c.path !== undefined) e.path = c.path;
  return e;
}

function trainInProcess(job: MemberJob, events: MemberEvents, running: Set<ChildProcess>): Promise<void> {
  const child = fork(fileURLToPath(new URL('./suite-member-worker.js', import.meta.url)), [], {
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  running.add(child);
  return new Promise<void>((resolve, reject) => {
    let outcome: Error | 'done' | undefined;
    child.on('message', (m: MemberMessage) => {
      if (m.type === 'start') events.onStart?.(m.status, m.fromStep);
      else if (m.type === 'progress') events.onProgress?.(m.model, m.progress);
      else if (m.type === 'intervention-start') events.onInterventionStart?.(m.start);
      else if (m.type === 'warning') events.onWarning?.(m.message);
      else outcome ??= m.type === 'done' ? 'done' : rebuiltError(m.error);
    });
    child.on('error', (e) => {
      outcome ??= e;
    });
    child.on('exit', (code, signal) => {
      running.delete(child);
      if (outcome === 'done') resolve();
      else
        reject(
          outcome ??
            new Error(
              `the process training ${job.model.name} stopped (${signal ?? `exit code ${code}`}) before it finished`,
            ),
        );
    });
    child.send(job);
  });
}

/**
 * Trains the jobs in child processes, `parallel` at a time. A free lane takes the first job, in the
 * order given, that is ready: a model always, a sibling-only job once its model's job has finished
 * (member-schedule.ts's `nextJob`). The first error stops the others (as an interrupted run: each
 * resumes from its last checkpoint) and is thrown once every process has exited.
 */
export async function trainSideBySide(
  jobs: MemberJob[],
  parallel: number,
  events: (job: MemberJob) => MemberEvents,
): Promise<void> {
  const laneJobs = jobs.map((j) => ({ model: j.model.name, sibling: j.siblingOnly === true }));
  const started = new Set<number>();
  const finished = new Set<number>();
  const running = new Set<ChildProcess>();
  let active = 0;
  let failure: { error: unknown } | undefined;
  await new Promise<void>((allExited) => {
    const startReady = (): void => {
      while (!failure && active < parallel) {
        const i = nextJob(laneJobs, started, finished);
        if (i === undefined) break;
        const job = jobs[i]!;
        started.add(i);
        active++;
        trainInProcess(job, events(job), running)
          .then(
            () => void finished.add(i),
            (error: unknown) => {
              if (failure) return;
              failure = { error };
              for (const child of running) child.kill();
            },
          )
          .finally(() => {
            active--;
            startReady();
          });
      }
      // Nothing running and nothing ready: every job has finished, or an error stopped them.
      if (active === 0) allExited();
    };
    startReady();
  });
  if (failure) throw failure.error;
}
