/**
 * Worker thread of `countTerms`: counts one contiguous range of batches (`scanBatches`) and posts
 * progress (batches done), then the result, or the error's name and message so that a user-facing
 * error still prints as one line.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type ScanInput, scanBatches } from './term-count.js';

export type WorkerMessage =
  | { type: 'progress'; done: number }
  | { type: 'done'; result: Awaited<ReturnType<typeof scanBatches>> }
  | { type: 'error'; name: string; message: string; stack?: string };

const input = workerData as ScanInput;
const post = (m: WorkerMessage) => parentPort!.postMessage(m);
let reported = 0;
try {
  const result = await scanBatches(input, (done) => {
    if (done - reported >= 16 || done === input.end - input.first) {
      reported = done;
      post({ type: 'progress', done });
    }
  });
  post({ type: 'done', result });
} catch (e) {
  const err = e instanceof Error ? e : new Error(String(e));
  post({ type: 'error', name: err.name, message: err.message, stack: err.stack });
}
