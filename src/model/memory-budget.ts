/**
 * Whether a checkpoint runs resident (every weight in memory as float32) or layer-streamed, and
 * how much of a memory budget the streamed activations may take.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../util/errors.js';
import { type NeoXConfig, parameterShapes } from './config.js';
import { int8WeightBytes, type WeightFormat } from './int8.js';

/** Share of the available memory (or of `--max-memory`) the float32 weights may take and still load whole. */
export const RESIDENT_SHARE = 0.7;

const UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KIB: 2 ** 10,
  MIB: 2 ** 20,
  GIB: 2 ** 30,
  TIB: 2 ** 40,
};

/** `8GB`, `512MiB`, `1.5GiB`, `4096` (bytes): a size in bytes; decimal units are powers of 1000, binary ones of 1024. */
export function parseMemorySize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*$/i.exec(text);
  const bytes = m ? Number(m[1]) * UNITS[(m[2] ?? 'B').toUpperCase()]! : Number.NaN;
  if (!Number.isFinite(bytes) || bytes < 1)
    throw new ConfigError(`memory size ${JSON.stringify(text)}: expected a positive size such as 8GB or 512MiB`);
  return Math.floor(bytes);
}

/** Bytes shown as the largest binary unit that keeps a number of at least 1 (`1.5 GiB`). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  let v = bytes;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

/** The float32 weights' bytes: what loading the checkpoint whole takes. */
export function float32WeightBytes(config: NeoXConfig): number {
  return parameterShapes(config).reduce((a, { shape }) => a + 4 * shape.reduce((x, d) => x * d, 1), 0);
}

function readNumber(path: string, pattern?: RegExp): number | undefined {
  try {
    const text = readFileSync(path, 'utf8');
    const m = pattern ? pattern.exec(text) : /^\s*(\d+)\s*$/.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Memory this process may still take: MemAvailable from /proc/meminfo, or what is left under the
 * cgroup's limit (v2 memory.max, v1 memory.limit_in_bytes) where that is lower; undefined where
 * neither is known (not Linux).
 */
export function availableMemory(): number | undefined {
  const kib = readNumber('/proc/meminfo', /^MemAvailable:\s+(\d+) kB$/m);
  const candidates: number[] = kib === undefined ? [] : [kib * 1024];
  for (const [limit, usage] of [
    ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory.current'],
    ['/sys/fs/cgroup/memory/memory.limit_in_bytes', '/sys/fs/cgroup/memory/memory.usage_in_bytes'],
  ] as const) {
    const max = readNumber(limit);
    const used = readNumber(usage);
    // v1 writes "no limit" as a number near 2^63.
    if (max !== undefined && used !== undefined && max < 2 ** 60) candidates.push(Math.max(0, max - used));
  }
  return candidates.length === 0 ? undefined : Math.min(...candidates);
}

export interface MemoryPlan {
  /** Run a layer at a time from the checkpoint's files. */
  stream: boolean;
  /** The budget the decision was made against: `--max-memory`, or the available memory; undefined where unknown. */
  budget: number | undefined;
  /** The float32 weights' bytes. */
  weights: number;
  /** Why it streams (`float32 weights of 48.0 GiB exceed 70% of 22.1 GiB available`); undefined when resident. */
  reason?: string;
}

/**
 * Resident when the weights (float32, or `format`'s) fit in 70% of `maxMemory` (the peak to stay under), or,
 * without it, of the available memory; layer-streamed otherwise.
 */
export function planMemory(
  config: NeoXConfig,
  maxMemory?: number,
  available = availableMemory(),
  format: WeightFormat = 'float32',
): MemoryPlan {
  const weights = format === 'int8' ? int8WeightBytes(config) : float32WeightBytes(config);
  const budget = maxMemory ?? available;
  if (budget === undefined || weights <= RESIDENT_SHARE * budget) return { stream: false, budget, weights };
  const against =
    maxMemory !== undefined ? `--max-memory ${formatBytes(maxMemory)}` : `${formatBytes(budget)} available`;
  return {
    stream: true,
    budget,
    weights,
    reason: `${format} weights of ${formatBytes(weights)} exceed ${RESIDENT_SHARE * 100}% of ${against}`,
  };
}

/** What node, onnxruntime and the tokenizer take before any weight or activation: kept out of a streamed budget. */
export const RUNTIME_BYTES = 512 * 2 ** 20;

/** What a streamed run keeps between layers where no budget is given: 1 GiB; rows beyond run in further passes. */
export const DEFAULT_ACTIVATION_BYTES = 2 ** 30;

/** Least residual-stream budget a streamed run is given, however small the rest of its budget. */
export const MIN_ACTIVATION_BYTES = 64 * 2 ** 20;

/**
 * The residual streams a streamed run may keep between layers: half of what the budget leaves after
 * the runtime and the stream's buffers (the other half is for one batch's work inside a layer and
 * the copies in and out of it), never under 64 MiB; 1 GiB where the budget is unknown.
 */
export function streamedActivationBytes(budget: number | undefined, bufferBytes: number): number {
  if (budget === undefined) return 2 ** 30;
  return Math.max(MIN_ACTIVATION_BYTES, Math.floor((budget - RUNTIME_BYTES - bufferBytes) / 2));
}

/**
 * What a streamed run says on stderr: why it streams, and where the budget is below what streaming
 * itself takes (the runtime, the stream's buffers, the least activation budget), that it will be
 * exceeded.
 */
export function streamingMessage(plan: MemoryPlan, bufferBytes: number): string {
  const floor = RUNTIME_BYTES + bufferBytes + MIN_ACTIVATION_BYTES;
  const below =
    plan.budget !== undefined && plan.budget < floor
      ? ` (streaming itself needs about ${formatBytes(floor)}: the budget will be exceeded)`
      : '';
  return `${plan.reason}: streaming one layer at a time${below}`;
}
