/** Worker task of `countTerms`: counts one contiguous range of batches (see term-count.ts). */
import type { TaskContext } from '../runtime/worker.js';
import { scanBatches, type ScanInput, type ScanResult } from './term-count.js';

export async function run(input: ScanInput, context: TaskContext<number>): Promise<ScanResult> {
  let reported = 0;
  return scanBatches(
    input,
    (done) => {
      if (done - reported >= 16 || done === input.end - input.first) {
        reported = done;
        context.report(done);
      }
    },
    () => context.stopRequested(),
  );
}
