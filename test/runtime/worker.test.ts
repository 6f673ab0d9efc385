import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runInWorker } from '../../src/runtime/worker.js';

const task = new URL('./worker-task.fixture.js', import.meta.url);

test('a task runs in a worker: progress arrives and the main thread stays responsive', async () => {
  const progress: number[] = [];
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const n = 256;
  const result = await runInWorker<{ n: number; runs: number }, number, number>(task, { n, runs: 40 }, (p) => progress.push(p)).result;
  clearInterval(timer);
  assert.equal(result, n * n * n);
  assert.deepEqual(progress, Array.from({ length: 40 }, (_, i) => i + 1));
  assert.ok(ticks > 0, 'the main thread never ran its timer');
});

test('errors from the task keep their name and one-line message', async () => {
  await assert.rejects(
    runInWorker(task, { n: 4, runs: 1, fail: true }).result,
    (e: Error) => e.name === 'ConfigError' && e.message === 'task refused its input',
  );
});

test('a stop request ends the task early', async () => {
  let seen = 0;
  const handle = runInWorker<{ n: number; runs: number }, number, number>(task, { n: 64, runs: 100000 }, (p) => {
    seen = p;
    if (p === 3) handle.requestStop();
  });
  await handle.result;
  assert.ok(seen >= 3 && seen < 100000, `stopped after ${seen} runs`);
});
