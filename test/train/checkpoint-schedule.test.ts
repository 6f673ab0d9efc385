import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  PYTHIA_CHECKPOINT_SCHEDULE,
  saveIters,
  scaledCheckpointSchedule,
} from '../../src/train/checkpoint-schedule.js';

/** Pythia's published checkpoints (README "Models"): 0, 1, 2, 4, ..., 512, then every 1000 to 143000. */
function pythiaPublishedSteps(): number[] {
  const steps = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512];
  for (let s = 1000; s <= 143000; s += 1000) steps.push(s);
  return steps;
}

test("the full recipe saves exactly Pythia's 154 checkpoints", () => {
  const steps = saveIters(143000, PYTHIA_CHECKPOINT_SCHEDULE);
  assert.equal(steps.length, 154);
  assert.deepEqual(steps, pythiaPublishedSteps());
});

test("the scaled schedule with 143 linear checkpoints on 143000 steps is Pythia's", () => {
  assert.deepEqual(scaledCheckpointSchedule(143000, 143), PYTHIA_CHECKPOINT_SCHEDULE);
});

test('short runs keep the shape: powers of two, then linear, then the final step', () => {
  assert.deepEqual(
    saveIters(256, scaledCheckpointSchedule(256, 8)),
    [0, 1, 2, 4, 8, 16, 32, 64, 96, 128, 160, 192, 224, 256],
  );
  assert.deepEqual(saveIters(5, scaledCheckpointSchedule(5, 8)), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(saveIters(100, scaledCheckpointSchedule(100, 4)), [0, 1, 2, 4, 8, 16, 25, 50, 75, 100]);
});

test('log scale and extra iterations past the end', () => {
  assert.deepEqual(
    saveIters(1000, { checkpointFactor: 10, checkpointScale: 'log', extraSaveIters: [0, 5000] }),
    [0, 10, 100, 1000],
  );
  assert.deepEqual(saveIters(7, { checkpointScale: 'linear', extraSaveIters: [] }), [7]);
});

test('bad schedules are rejected with the key named', () => {
  assert.throws(
    () => saveIters(10, { checkpointFactor: 0, checkpointScale: 'linear', extraSaveIters: [] }),
    /checkpoint-factor/,
  );
  assert.throws(
    () => saveIters(10, { checkpointFactor: 2, checkpointScale: 'linear', extraSaveIters: [-1] }),
    /extra-save-iters/,
  );
});
