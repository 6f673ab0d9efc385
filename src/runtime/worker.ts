/**
 * Long work in a worker thread. onnxruntime-node's `run` is synchronous and blocks the thread it
 * runs on; running the work loop in a worker keeps the main thread free for progress bars and
 * signals. A task module exports `run(input, context)`; `runInWorker` starts it in a worker,
 * forwards its progress messages, and resolves with its result. Errors come back with their name
 * and message, so user-facing errors still print as one line.
 */
import { Worker } from 'node:worker_threads';

export interface TaskContext<Progress> {
  /** Sends a progress message to the main thread. */
  report(progress: Progress): void;
  /** True once the main thread asked the task to stop (checked between units of work). */
  stopRequested(): boolean;
}

export type TaskMessage<Progress, Result> =
  | { type: 'progress'; progress: Progress }
  | { type: 'done'; result: Result }
  | { type: 'error'; name: string; message: string; stack?: string };

export interface WorkerHandle<Result> {
  result: Promise<Result>;
  /** Asks the task to stop at its next check. */
  requestStop(): void;
}

class WorkerTaskError extends Error {
  constructor(name: string, message: string, stack?: string) {
    super(message);
    this.name = name;
    if (stack) this.stack = stack;
  }
}

/** Starts `task` (a module URL exporting `run(input, context)`) in a worker thread. */
export function runInWorker<Input, Progress, Result>(
  task: URL,
  input: Input,
  onProgress: (progress: Progress) => void = () => {},
): WorkerHandle<Result> {
  const worker = new Worker(new URL('./worker-entry.js', import.meta.url), { workerData: { task: task.href, input } });
  const result = new Promise<Result>((resolve, reject) => {
    let settled = false;
    worker.on('message', (m: TaskMessage<Progress, Result>) => {
      if (m.type === 'progress') onProgress(m.progress);
      else if (m.type === 'done') {
        settled = true;
        resolve(m.result);
      } else {
        settled = true;
        reject(new WorkerTaskError(m.name, m.message, m.stack));
      }
    });
    worker.on('error', (e) => {
      settled = true;
      reject(e);
    });
    worker.on('exit', (code) => {
      if (!settled) reject(new WorkerTaskError('RuntimeError', `worker for ${task.pathname} exited with code ${code} before finishing`));
    });
  });
  return { result, requestStop: () => worker.postMessage({ type: 'stop' }) };
}
