/** Worker bootstrap for `runInWorker`: imports the task module and runs it. */
import { parentPort, workerData } from 'node:worker_threads';
import type { TaskContext } from './worker.js';

const { task, input } = workerData as { task: string; input: unknown };
let stop = false;
parentPort!.on('message', (m: { type: string }) => {
  if (m.type === 'stop') stop = true;
});
const context: TaskContext<unknown> = {
  report: (progress) => parentPort!.postMessage({ type: 'progress', progress }),
  stopRequested: () => stop,
};
try {
  const module = (await import(task)) as { run: (input: unknown, context: TaskContext<unknown>) => Promise<unknown> };
  const result = await module.run(input, context);
  parentPort!.postMessage({ type: 'done', result });
} catch (e) {
  const err = e instanceof Error ? e : new Error(String(e));
  parentPort!.postMessage({ type: 'error', name: err.name, message: err.message, stack: err.stack });
}
process.exit(0);
