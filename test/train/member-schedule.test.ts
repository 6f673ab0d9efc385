/** The fixed rule by which a suite's models share the CPU: side by side or one after another, and at how many threads. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countParameters } from '../../src/model/config.js';
import { type LaneJob, memberSchedule, nextJob, SIDE_BY_SIDE_MAX_PARAMETERS } from '../../src/train/member-schedule.js';
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

test('with intervention siblings, each is a job of its own: the models largest first, then the siblings largest first', () => {
  const s = memberSchedule(nano, { cores: 2, siblings: true });
  const text = (jobs: LaneJob[]) => jobs.map((j) => `${j.model}${j.sibling ? ' sibling' : ''}`);
  assert.deepEqual(text(s.sideBySideJobs), [
    'nano-793k',
    'nano-336k',
    'nano-100k',
    'nano-25k',
    'nano-793k sibling',
    'nano-336k sibling',
    'nano-100k sibling',
    'nano-25k sibling',
  ]);
  assert.equal(
    s.description,
    'nano-25k, nano-100k, nano-336k, nano-793k side by side, 2 at a time, 1 thread each (under 4,000,000 parameters), ' +
      'each intervention sibling a job of its own once its model has trained (models largest first, then siblings largest first) ' +
      '(the default; --threads or --parallel-members to change)',
  );
  assert.deepEqual(text(memberSchedule(nano, { cores: 2 }).sideBySideJobs), names(s.sideBySide), 'no siblings');
  const k = memberSchedule(nano.slice(0, 2), { cores: 2, parallelMembers: 2, siblings: true });
  assert.deepEqual(text(k.sideBySideJobs), ['nano-100k', 'nano-25k', 'nano-100k sibling', 'nano-25k sibling']);
  assert.match(k.description, /1 thread each, each intervention sibling a job of its own .* \(--parallel-members 2\)$/);
  // One after another, a sibling follows its model in the same job, as before.
  const threads = memberSchedule(nano, { cores: 2, threads: 1, siblings: true });
  assert.deepEqual(
    [threads.sideBySideJobs, threads.description],
    [[], 'models one after another at 1 thread each (--threads)'],
  );
});

test('a free lane takes the first ready job in lane order: every model before any sibling, a sibling once its model has finished', () => {
  const jobs = memberSchedule(nano, { cores: 2, siblings: true }).sideBySideJobs;
  // Jobs by label: '793k' is nano-793k, '793k s' its sibling.
  const label = (j: LaneJob) => `${j.model.slice('nano-'.length)}${j.sibling ? ' s' : ''}`;
  const indices = (labels: string[]) => new Set(labels.map((l) => jobs.findIndex((j) => label(j) === l)));
  const next = (started: string[], finished: string[]) => {
    const i = nextJob(jobs, indices(started), indices(finished));
    return i === undefined ? undefined : label(jobs[i]!);
  };
  const models = ['793k', '336k', '100k', '25k'];
  assert.equal(next([], []), '793k');
  assert.equal(next(['793k'], []), '336k');
  // nano-336k finished, its sibling ready: the smaller models still go first.
  assert.equal(next(['793k', '336k'], ['336k']), '100k');
  assert.equal(next(['793k', '336k', '100k'], ['336k', '100k']), '25k');
  // Every model started: the largest ready sibling.
  assert.equal(next(models, ['336k', '100k']), '336k s');
  assert.equal(next([...models, '336k s'], ['336k', '100k', '793k']), '793k s');
  assert.equal(next([...models, '336k s', '793k s'], ['336k', '100k', '793k']), '100k s');
  // nano-25k still training: its sibling waits, and the free lane with it.
  assert.equal(next([...models, '336k s', '793k s', '100k s'], ['336k', '100k', '793k']), undefined);
  assert.equal(next([...models, '336k s', '793k s', '100k s'], ['336k', '100k', '793k', '25k']), '25k s');
  assert.equal(next([...models, '336k s', '793k s', '100k s', '25k s'], models), undefined, 'all started');
  // A sibling never starts before its model has finished, even with every other job done.
  assert.equal(
    next([...models, '336k s', '100k s', '25k s'], ['336k', '100k', '25k', '336k s', '100k s', '25k s']),
    undefined,
  );
});

test('lane order replayed on 2 lanes with the nano step times ends the lanes together, the nano-25k sibling last', () => {
  // Step times at 1 thread (ms) and steps of a model and of its sibling (intervention from 0.75 of 1024).
  const stepMs: Record<string, number> = { 'nano-793k': 300, 'nano-336k': 185, 'nano-100k': 100, 'nano-25k': 58 };
  const jobs = memberSchedule(nano, { cores: 2, siblings: true }).sideBySideJobs;
  const seconds = (j: LaneJob) => (stepMs[j.model]! * (j.sibling ? 256 : 1024)) / 1000;
  const started = new Set<number>();
  const finished = new Set<number>();
  const lanes = [0, 0];
  const ends = new Map<number, number>();
  const order: string[] = [];
  while (started.size < jobs.length) {
    const lane = lanes[0]! <= lanes[1]! ? 0 : 1;
    const now = lanes[lane]!;
    for (const [i, end] of ends) if (end <= now) finished.add(i);
    const i = nextJob(jobs, started, finished);
    if (i === undefined) {
      lanes[lane] = Math.min(...[...ends.values()].filter((e) => e > now));
      continue;
    }
    started.add(i);
    lanes[lane] = now + seconds(jobs[i]!);
    ends.set(i, lanes[lane]!);
    order.push(`${jobs[i]!.model}${jobs[i]!.sibling ? ' sibling' : ''}`);
  }
  assert.equal(order.at(-1), 'nano-25k sibling');
  assert.ok(Math.max(...lanes) < 415, `lanes end at ${lanes.map((l) => l.toFixed(1)).join(' s and ')} s`);
});
