/**
 * `npm run bench:load`: loading and scoring a pythia-1b-shaped checkpoint (random weights, float16
 * safetensors as our writer stores them). A child process writes it to a temporary folder; a fresh
 * child loads it with `GPTNeoX.fromPretrained` (the checkpoint reader `pythia eval` uses) and scores
 * a few short continuations through the Scorer. Reported: that child's peak RSS against the float32
 * size of the weights (target ≤ 1.3×), and its load time against the time to read the file's bytes
 * and to widen float16 to float32. The folder is deleted at the end.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GPTNeoX } from '../src/api/gpt-neox.js';
import { RandomAccessFile } from '../src/formats/file-io.js';
import { f16ToF32 } from '../src/formats/float16.js';
import { saveCheckpoint } from '../src/model/checkpoint.js';
import { parameterShapes } from '../src/model/config.js';
import { pythiaPreset } from '../src/model/presets.js';
import { loadNote, randomParams, table } from './common.js';

const threads = Number(process.env.BENCH_THREADS ?? 2);
const PRESET = process.env.BENCH_LOAD_PRESET ?? '1b';
const config = { ...pythiaPreset(PRESET)!, dtype: 'float16' as const };
const GiB = 2 ** 30;

interface LoadResult {
  loadSeconds: number;
  scoreSeconds: number;
  rssStart: number;
  rssLoaded: number;
  maxRss: number;
}

async function child(mode: string, dir: string): Promise<void> {
  if (mode === 'write') {
    await saveCheckpoint(dir, config, randomParams(config), { dtype: 'float16' });
    return;
  }
  const rssStart = process.memoryUsage().rss;
  const t0 = performance.now();
  const model = await GPTNeoX.fromPretrained(dir, { threads });
  const loadSeconds = (performance.now() - t0) / 1000;
  const rssLoaded = process.memoryUsage().rss;
  const pairs = Array.from(
    { length: 4 },
    (_, i) => [Array.from({ length: 16 }, (_, t) => 100 + 37 * i + t), [7 + i, 8, 9, 10]] as const,
  );
  const t1 = performance.now();
  await model.score(pairs);
  const scoreSeconds = (performance.now() - t1) / 1000;
  const result: LoadResult = {
    loadSeconds,
    scoreSeconds,
    rssStart,
    rssLoaded,
    maxRss: process.resourceUsage().maxRSS * 1024,
  };
  console.log(JSON.stringify(result));
}

/** Drops the page cache of one file (GNU dd's nocache), so reads come from the disk; false where that is not possible. */
function dropCache(path: string): boolean {
  try {
    execFileSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none']);
    return true;
  } catch {
    return false;
  }
}

/** Seconds to read `path` in 64 MiB pieces, and to widen those pieces from float16 to float32. */
function readAndWiden(path: string): { read: number; widen: number } {
  const file = new RandomAccessFile(path);
  const chunk = new Uint8Array(64 << 20);
  const wide = new Float32Array(chunk.length / 2);
  let read = 0;
  let widen = 0;
  for (let at = 0; at < file.size; at += chunk.length) {
    const piece = chunk.subarray(0, Math.min(chunk.length, file.size - at));
    let t = performance.now();
    file.readInto(piece, at, 'bench');
    read += performance.now() - t;
    t = performance.now();
    f16ToF32(new Uint16Array(piece.buffer, 0, piece.length >> 1), wide.subarray(0, piece.length >> 1));
    widen += performance.now() - t;
  }
  file.close();
  return { read: read / 1000, widen: widen / 1000 };
}

function runChild(mode: string, dir: string): string {
  const r = spawnSync(process.execPath, [process.argv[1]!, mode, dir], {
    encoding: 'utf8',
    env: { ...process.env, BENCH_THREADS: String(threads) },
  });
  if (r.status !== 0)
    throw new Error(`bench:load ${mode} failed: ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`);
  return r.stdout;
}

async function main(): Promise<void> {
  const [mode, dir] = process.argv.slice(2);
  if (mode && dir) return child(mode, dir);
  console.log(`bench:load pythia-${PRESET}, ${threads} threads; ${loadNote()}`);
  const parent = mkdtempSync(join(tmpdir(), 'pythia-bench-load-'));
  try {
    const folder = join(parent, 'model');
    let t = performance.now();
    runChild('write', folder);
    console.log(`wrote ${folder} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const files = readdirSync(folder)
      .filter((f) => f.endsWith('.safetensors'))
      .map((f) => join(folder, f));
    const fileBytes = files.reduce((a, f) => a + statSync(f).size, 0);
    const fp32Bytes = 4 * parameterShapes(config).reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0);
    const cold = files.every(dropCache);
    const io = files.map(readAndWiden).reduce((a, b) => ({ read: a.read + b.read, widen: a.widen + b.widen }));
    if (cold) files.forEach(dropCache);
    t = performance.now();
    const line = runChild('load', folder).trim().split('\n').pop()!;
    const load = JSON.parse(line) as LoadResult;
    console.log(
      `\npythia-${PRESET} shape, ${(fileBytes / GiB).toFixed(2)} GiB of float16 safetensors (${cold ? 'page cache dropped before reading' : 'read from the page cache'}); float32 weights ${(fp32Bytes / GiB).toFixed(2)} GiB; ${loadNote()}`,
    );
    console.log(
      table(
        ['measure', 'value'],
        [
          [
            'child peak RSS (load + score)',
            `${(load.maxRss / GiB).toFixed(2)} GiB = ${(load.maxRss / fp32Bytes).toFixed(2)}x float32 weights`,
          ],
          [
            'child RSS at start / after load',
            `${(load.rssStart / GiB).toFixed(2)} / ${(load.rssLoaded / GiB).toFixed(2)} GiB`,
          ],
          ['load (fromPretrained)', `${load.loadSeconds.toFixed(1)} s`],
          ['read the file bytes', `${io.read.toFixed(1)} s`],
          ['widen float16 → float32', `${io.widen.toFixed(1)} s`],
          ['score 4 continuations (first call: compiles)', `${load.scoreSeconds.toFixed(1)} s`],
        ],
      ),
    );
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
}

await main();
