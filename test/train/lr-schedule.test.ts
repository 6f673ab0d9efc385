import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type LrSchedule,
  learningRateAt,
  learningRateForUpdate,
  validateLrSchedule,
} from '../../src/train/lr-schedule.js';

const pythia70m: LrSchedule = { lr: 1e-3, minLr: 1e-4, warmup: 0.01, decayIters: 143000, decayStyle: 'cosine' };

function close(actual: number, expected: number, rel = 1e-12): void {
  const tol = rel * Math.max(Math.abs(expected), 1e-300);
  assert.ok(Math.abs(actual - expected) <= tol, `${actual} vs ${expected}`);
}

test('70m cosine schedule matches the notes (B9.3) table', () => {
  // Values from ../shared/notes/gpt-neox-data-and-numerics.md B9.3.
  assert.equal(learningRateAt(pythia70m, 0), 0);
  close(learningRateAt(pythia70m, 1), 6.993e-7, 1e-3);
  close(learningRateAt(pythia70m, 715), 5e-4);
  close(learningRateAt(pythia70m, 1430), 1e-3);
  close(learningRateAt(pythia70m, 1431), 0.99999999988e-3, 1e-10);
  close(learningRateAt(pythia70m, 50000), 7.4136e-4, 1e-4);
  close(learningRateAt(pythia70m, 100000), 2.1987e-4, 1e-4);
});

test('cosine schedule matches GPT-NeoX v1.0 get_lr evaluated in Python float64', () => {
  // Golden values: Python 3, an independent transcription of AnnealingLR.get_lr (float64).
  const golden: [number, number][] = [
    [1, 6.993006993006994e-7],
    [1431, 0.0009999999998793387],
    [50000, 0.0007413579850981182],
    [71500, 0.000515705379539064],
    [100000, 0.00021986750263500399],
  ];
  for (const [n, lr] of golden) close(learningRateAt(pythia70m, n), lr);
  const p160m: LrSchedule = { ...pythia70m, lr: 6e-4, minLr: 6e-5 };
  close(learningRateAt(p160m, 1000), 0.0004195804195804196);
  close(learningRateAt(p160m, 2000), 0.0005999764786109314);
  close(learningRateAt(p160m, 80000), 0.00025359050155820425);
});

test('the cosine divides by total iterations, so the floor is reached at n = 115139, not at the end', () => {
  close(learningRateAt(pythia70m, 115137), 0.00010001261932763473);
  assert.equal(learningRateAt(pythia70m, 115139), 1e-4);
  assert.equal(learningRateAt(pythia70m, 143000), 1e-4);
  // A schedule dividing by (total - warmup) would still be far above the floor here.
  assert.ok(learningRateAt(pythia70m, 130000) === 1e-4);
});

test('the first optimizer update uses lr 0', () => {
  assert.equal(learningRateForUpdate(pythia70m, 1), 0);
  assert.equal(learningRateForUpdate(pythia70m, 2), learningRateAt(pythia70m, 1));
});

test('linear, exponential and constant styles', () => {
  const linear: LrSchedule = { lr: 2e-3, minLr: 1e-4, warmup: 0.1, decayIters: 100, decayStyle: 'linear' };
  // Python golden values (same transcription as above).
  close(learningRateAt(linear, 3), 0.0006000000000000001);
  close(learningRateAt(linear, 10), 0.002);
  close(learningRateAt(linear, 50), 0.0012);
  close(learningRateAt(linear, 99), 0.0004);
  const exponential: LrSchedule = { lr: 2e-3, minLr: 0, warmup: 0.05, decayIters: 100, decayStyle: 'exponential' };
  close(learningRateAt(exponential, 10), 0.0019318868746069783);
  close(learningRateAt(exponential, 50), 0.0014641826673855018);
  close(learningRateAt(exponential, 100), 0.0010719154417360615);
  const constant: LrSchedule = { lr: 1e-3, minLr: 0, warmup: 0, decayIters: 10, decayStyle: 'constant' };
  assert.equal(learningRateAt(constant, 0), 1e-3);
  assert.equal(learningRateAt(constant, 7), 1e-3);
});

test('bad schedules are rejected with the key named', () => {
  assert.throws(() => validateLrSchedule({ ...pythia70m, warmup: 2 }), /warmup/);
  assert.throws(() => validateLrSchedule({ ...pythia70m, decayIters: 0 }), /lr-decay-iters/);
  assert.throws(() => validateLrSchedule({ ...pythia70m, decayStyle: 'step' as never }), /lr-decay-style/);
});
