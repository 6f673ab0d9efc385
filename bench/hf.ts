/** Shared pieces of the Hugging Face side-by-side benchmarks: a temporary checkpoint of our weights and a Python script run on it. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveCheckpoint } from '../src/model/checkpoint.js';
import type { NeoXConfig } from '../src/model/config.js';
import type { Params } from '../src/model/params.js';
import { configFor, hfPython, loadNote, randomParams, SHAPES } from './common.js';

/**
 * Saves `params` as a float32 checkpoint `<tmp>/model` (beside `files`, as JSON), runs
 * `python bench/<script> <tmp> ...args` and returns the last JSON line it prints; the folder is deleted after.
 */
export async function runOnHfCheckpoint<T>(
  python: string,
  script: string,
  config: NeoXConfig,
  params: Params,
  args: (string | number)[],
  files: Record<string, unknown> = {},
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'pythia-bench-hf-'));
  try {
    await saveCheckpoint(join(dir, 'model'), config, params);
    for (const [name, value] of Object.entries(files)) writeFileSync(join(dir, name), JSON.stringify(value));
    const r = spawnSync(python, [join(process.cwd(), 'bench', script), dir, ...args.map(String)], {
      encoding: 'utf8',
      timeout: 3_600_000,
      maxBuffer: 256 << 20,
    });
    const line = r.stdout
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .pop();
    if (!line) throw new Error(`bench/${script} failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    return JSON.parse(line) as T;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Prints a side-by-side bench's header and the Hugging Face baseline's note; returns the pythia-70m shape with random weights. */
export function pythia70mSideBySide(name: string, threads: number) {
  console.log(`${name}, ${threads} threads; ${loadNote()}`);
  const hf = hfPython();
  console.log(hf.note);
  const shape = SHAPES.find((s) => s.label === 'pythia-70m')!;
  const config = configFor(shape);
  return { hf, shape, config, params: randomParams(config) };
}
