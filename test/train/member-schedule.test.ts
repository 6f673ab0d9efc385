/** The fixed rule by which a suite's models share the CPU: side by side or one after another, and at how many threads. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countParameters } from '../../src/model/config.js';
import { memberSchedule, SIDE_BY_SIDE_MAX_PARAMETERS } from '../../src/train/member-schedule.js';
import { suitePreset } from '../../src/train/recipes.js';

const nano = suitePreset('nano').models;
const pythia = suitePreset('pythia').models;
const names = (models: { name: string }[]) => models.map((m) => m.name);

test('by default the nano models train side by side at 1 thread, one per core, largest first', () => {
  for (const m of nano) assert.ok(countParameters(m.config).total < SIDE_BY_SIDE_MAX_PARAMETERS, m.name);
  const s = memberSchedule(nano, { cores: 2 });
  assert.deepEqual(names(s.sideBySide), ['nano-793k', 'nano-336k', 'nano-100k', 'nano-25k']);
  assert.deepEqual([s.parallel, s.sideBySideThreads, s.oneByOne], [2, 1, []]);
  assert.equal(
    s.description,
    'nano-25k, nano-100k, nano-336k, nano-793k side by side, 2 at a time, 1 thread each (under 4,000,000 parameters) ' +
      '(the default; --threads or --parallel-members to change)',
  );
  // More cores, more at once; the same thread count, so the same bytes.
  assert.deepEqual(
    [memberSchedule(nano, { cores: 16 }).parallel, memberSchedule(nano, { cores: 16 }).sideBySideThreads],
    [4, 1],
  );
  // One core: one after another, still at 1 thread.
  const single = memberSchedule(nano, { cores: 1 });
  assert.deepEqual([single.parallel, single.sideBySideThreads, single.sideBySide.length], [1, 1, 4]);
});

test('by default models of 4M parameters or more train after the small ones, one after another at every core', () => {
  const s = memberSchedule([...nano.slice(0, 2), ...pythia.slice(0, 2)], { cores: 2 });
  assert.deepEqual(names(s.sideBySide), ['nano-100k', 'nano-25k']);
  assert.deepEqual(names(s.oneByOne), names(pythia.slice(0, 2)));
  assert.equal(s.oneByOneThreads, undefined);
  assert.match(s.description, /; then pythia-14m, pythia-31m one after another at every core/);
});

test('--threads alone keeps one after another; --parallel-members k puts every model side by side', () => {
  const threads = memberSchedule(nano, { cores: 2, threads: 2 });
  assert.deepEqual([threads.parallel, threads.sideBySide, threads.oneByOneThreads], [1, [], 2]);
  assert.equal(threads.description, 'models one after another at 2 threads each (--threads)');
  const k = memberSchedule(pythia.slice(0, 3), { cores: 8, parallelMembers: 2 });
  assert.deepEqual([k.parallel, k.sideBySideThreads, k.sideBySide.length, k.oneByOne], [2, 4, 3, []]);
  const kThreads = memberSchedule(nano, { cores: 2, parallelMembers: 3, threads: 1 });
  assert.deepEqual([kThreads.parallel, kThreads.sideBySideThreads], [3, 1]);
  assert.equal(memberSchedule(nano, { cores: 2, parallelMembers: 8 }).parallel, 4, 'no more at once than models');
  assert.equal(memberSchedule(nano, { cores: 2, parallelMembers: 1 }).parallel, 1);
});

test('another device trains one after another; --parallel-members with it is a one-line error', () => {
  const s = memberSchedule(nano, { cores: 2, device: 'webgpu' });
  assert.deepEqual([s.parallel, s.sideBySide.length, s.oneByOne.length], [1, 0, 4]);
  assert.throws(
    () => memberSchedule(nano, { cores: 2, device: 'webgpu', parallelMembers: 2 }),
    /--parallel-members trains on the CPU; it cannot be combined with --device webgpu/,
  );
});
