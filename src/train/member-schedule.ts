/**
 * How a suite's models share the CPU: a fixed rule of their sizes and the flags, never chosen by
 * timing, so that a model's bytes depend on its own thread count only.
 *
 * - `--parallel-members <k>`: every model side by side, k at a time, each at `--threads` threads
 *   (default: the cores divided by k, at least 1); k = 1 is one after another.
 * - `--threads <n>` alone: one after another at n threads each, as the user asked.
 * - neither (the default): models under SIDE_BY_SIDE_MAX_PARAMETERS parameters train side by side
 *   at one thread each, as many at once as there are cores; a step of a model this small cannot keep
 *   two threads busy, two models can. Larger models train after them, one after another, with
 *   every core. A small model therefore trains at one thread on every machine.
 * - a device other than the CPU: one after another.
 *
 * Side by side, the largest models start first, so that the last to finish is a small one. With
 * intervention siblings, each sibling is a job of its own in the same lanes, ready once its model's
 * job has finished (so its starting checkpoint exists). A free lane takes the first ready job in the
 * fixed order of `laneJobs` (`nextJob`): every model, largest first, then the siblings, largest
 * first; equal sizes keep the preset's order. Models before siblings, because a sibling trains only
 * the steps after the intervention point (a quarter at 0.75): the short jobs then fill both lanes at
 * the end. For the nano suite on 2 cores (step times at 1 thread: 300, 185, 100, 58 ms) the lanes
 * should end near 413 s; a larger model's sibling taken before a smaller model instead leaves
 * nano-25k and its sibling alone at the end (439 s).
 */
import { countParameters } from '../model/config.js';
import type { ExecutionProvider } from '../runtime/session.js';
import { ConfigError } from '../util/errors.js';
import type { ModelPreset } from './recipes.js';

/** Models with fewer parameters than this (embeddings included) train side by side by default. */
export const SIDE_BY_SIDE_MAX_PARAMETERS = 4_000_000;

export interface MemberSchedule {
  /** Models trained side by side, `parallel` at a time, largest first. */
  sideBySide: ModelPreset[];
  /** Their jobs (with `siblings`, each sibling its own) in the order free lanes take them when ready. */
  sideBySideJobs: LaneJob[];
  parallel: number;
  /** Threads of each side-by-side model. */
  sideBySideThreads: number | undefined;
  /** Models trained after those, one after another. */
  oneByOne: ModelPreset[];
  /** Threads of each one-by-one model (undefined: every core). */
  oneByOneThreads: number | undefined;
  /** The rule that gave this schedule, in one line. */
  description: string;
}

export interface ScheduleOptions {
  threads?: number;
  parallelMembers?: number;
  device?: ExecutionProvider;
  /** Each model has an intervention sibling to train after it. */
  siblings?: boolean;
  /** Cores of this machine (os.availableParallelism()). */
  cores: number;
}

/** A job of the side-by-side lanes: a model, or its intervention sibling. */
export interface LaneJob {
  /** The model's name (a sibling's too: the baseline it continues). */
  model: string;
  sibling: boolean;
}

const names = (models: ModelPreset[]): string => models.map((m) => m.name).join(', ');
const threadsText = (threads: number | undefined): string =>
  threads === undefined ? 'every core' : `${threads} thread${threads === 1 ? '' : 's'}`;

export function memberSchedule(models: ModelPreset[], options: ScheduleOptions): MemberSchedule {
  const { threads, parallelMembers, device, cores, siblings = false } = options;
  const oneByOne = (why: string): MemberSchedule => ({
    sideBySide: [],
    sideBySideJobs: [],
    parallel: 1,
    sideBySideThreads: undefined,
    oneByOne: models,
    oneByOneThreads: threads,
    description: `models one after another at ${threadsText(threads)} each (${why})`,
  });
  if (device !== undefined && device !== 'cpu') {
    if (parallelMembers !== undefined && parallelMembers > 1)
      throw new ConfigError(`--parallel-members trains on the CPU; it cannot be combined with --device ${device}`);
    return oneByOne(`--device ${device}`);
  }
  if (parallelMembers === 1) return oneByOne('--parallel-members 1');
  if (parallelMembers !== undefined) {
    const each = threads ?? Math.max(1, Math.floor(cores / parallelMembers));
    const parallel = Math.min(parallelMembers, models.length);
    const sideBySide = largestFirst(models);
    return {
      sideBySide,
      sideBySideJobs: laneJobs(sideBySide, siblings),
      parallel,
      sideBySideThreads: each,
      oneByOne: [],
      oneByOneThreads: undefined,
      description: `models side by side, ${parallel} at a time, ${threadsText(each)} each${siblingsText(siblings && parallel > 1)} (--parallel-members ${parallelMembers})`,
    };
  }
  if (threads !== undefined) return oneByOne('--threads');
  const small = models.filter((m) => countParameters(m.config).total < SIDE_BY_SIDE_MAX_PARAMETERS);
  const large = models.filter((m) => !small.includes(m));
  const parallel = Math.max(1, Math.min(cores, small.length));
  const limit = SIDE_BY_SIDE_MAX_PARAMETERS.toLocaleString('en-US');
  const parts: string[] = [];
  if (small.length > 0)
    parts.push(
      parallel > 1
        ? `${names(small)} side by side, ${parallel} at a time, 1 thread each (under ${limit} parameters)${siblingsText(siblings)}`
        : `${names(small)} at 1 thread (under ${limit} parameters)`,
    );
  if (large.length > 0) parts.push(`${names(large)} one after another at every core`);
  const sideBySide = largestFirst(small);
  return {
    sideBySide,
    sideBySideJobs: laneJobs(sideBySide, siblings),
    parallel,
    sideBySideThreads: 1,
    oneByOne: large,
    oneByOneThreads: undefined,
    description: `${parts.join('; then ')} (the default; --threads or --parallel-members to change)`,
  };
}

const SIBLINGS_TEXT =
  ', each intervention sibling a job of its own once its model has trained (models largest first, then siblings largest first)';
const siblingsText = (siblings: boolean): string => (siblings ? SIBLINGS_TEXT : '');

/** The side-by-side jobs in lane order: every model, then (with `siblings`) every sibling, both largest first. */
function laneJobs(sideBySide: ModelPreset[], siblings: boolean): LaneJob[] {
  const models = sideBySide.map((m) => ({ model: m.name, sibling: false }));
  return siblings ? [...models, ...sideBySide.map((m) => ({ model: m.name, sibling: true }))] : models;
}

/**
 * The job a free lane starts next: the first of `jobs` (in lane order) not yet started and ready,
 * a model always, a sibling once its model's job has finished; undefined when none is (all started,
 * or the rest wait for a model still training).
 */
export function nextJob(
  jobs: readonly LaneJob[],
  started: ReadonlySet<number>,
  finished: ReadonlySet<number>,
): number | undefined {
  const ready = (job: LaneJob): boolean => {
    if (!job.sibling) return true;
    const baseline = jobs.findIndex((j) => !j.sibling && j.model === job.model);
    return baseline < 0 || finished.has(baseline);
  };
  const i = jobs.findIndex((job, i) => !started.has(i) && ready(job));
  return i < 0 ? undefined : i;
}

function largestFirst(models: ModelPreset[]): ModelPreset[] {
  const size = (m: ModelPreset) => countParameters(m.config).total;
  return [...models].sort((a, b) => size(b) - size(a));
}
