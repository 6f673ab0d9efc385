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
 * Side by side, the largest models start first, so that the last to finish is a small one.
 */
import { countParameters } from '../model/config.js';
import type { ExecutionProvider } from '../runtime/session.js';
import { ConfigError } from '../util/errors.js';
import type { ModelPreset } from './recipes.js';

/** Models with fewer parameters than this (embeddings included) train side by side by default. */
export const SIDE_BY_SIDE_MAX_PARAMETERS = 4_000_000;

export interface MemberSchedule {
  /** Models trained side by side, `parallel` at a time, in the order they start (largest first). */
  sideBySide: ModelPreset[];
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
  /** Cores of this machine (os.availableParallelism()). */
  cores: number;
}

const names = (models: ModelPreset[]): string => models.map((m) => m.name).join(', ');
const threadsText = (threads: number | undefined): string =>
  threads === undefined ? 'every core' : `${threads} thread${threads === 1 ? '' : 's'}`;

export function memberSchedule(models: ModelPreset[], options: ScheduleOptions): MemberSchedule {
  const { threads, parallelMembers, device, cores } = options;
  const oneByOne = (why: string): MemberSchedule => ({
    sideBySide: [],
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
    return {
      sideBySide: largestFirst(models),
      parallel,
      sideBySideThreads: each,
      oneByOne: [],
      oneByOneThreads: undefined,
      description: `models side by side, ${parallel} at a time, ${threadsText(each)} each (--parallel-members ${parallelMembers})`,
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
        ? `${names(small)} side by side, ${parallel} at a time, 1 thread each (under ${limit} parameters)`
        : `${names(small)} at 1 thread (under ${limit} parameters)`,
    );
  if (large.length > 0) parts.push(`${names(large)} one after another at every core`);
  return {
    sideBySide: largestFirst(small),
    parallel,
    sideBySideThreads: 1,
    oneByOne: large,
    oneByOneThreads: undefined,
    description: `${parts.join('; then ')} (the default; --threads or --parallel-members to change)`,
  };
}

function largestFirst(models: ModelPreset[]): ModelPreset[] {
  const size = (m: ModelPreset) => countParameters(m.config).total;
  return [...models].sort((a, b) => size(b) - size(a));
}
