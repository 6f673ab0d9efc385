/**
 * SIGKILL at any point while a checkpoint or a dataset is being replaced leaves either the old or
 * the new whole under its name (or, for a dataset, no .idx: a one-line error), never a mix; and
 * the next start restores a checkpoint folder a kill left renamed aside. The kills are placed, not
 * timed: a child counts its calls that change the file system and kills itself just before the
 * n-th, for every n from the first call to the last.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { IndexedDataset, IndexedDatasetWriter } from '../../src/data/indexed-dataset.js';
import { loadCheckpoint, recoverInterruptedSaves, saveCheckpoint } from '../../src/model/checkpoint.js';
import { fixtureDir, repoRoot } from '../support/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'pythia-kills-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const dist = (path: string): string => join(repoRoot, 'dist/src', path);

/**
 * Runs first in a child: counts the calls of node:fs and node:fs/promises that change the file
 * system, from `armKills()` on, and SIGKILLs the child just before call number KILL_AT. A child
 * that gets to the end prints how many there were.
 */
const KILL_AT_CALL = `
  import fs from 'node:fs';
  import fsp from 'node:fs/promises';
  import { syncBuiltinESMExports } from 'node:module';
  const killAt = Number(process.env.KILL_AT);
  const report = fs.writeSync;
  let armed = false;
  let calls = 0;
  const wrap = (module, names) => {
    for (const name of names) {
      const real = module[name];
      module[name] = function (...args) {
        if (armed && ++calls === killAt) {
          process.kill(process.pid, 'SIGKILL');
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
        }
        return real.apply(this, args);
      };
    }
  };
  wrap(fs, ['openSync', 'writeSync', 'writeFileSync', 'fsyncSync', 'closeSync', 'ftruncateSync', 'renameSync',
    'rmSync', 'unlinkSync', 'mkdirSync', 'copyFileSync']);
  wrap(fsp, ['open', 'writeFile', 'rename', 'rm', 'unlink', 'mkdir', 'copyFile']);
  syncBuiltinESMExports();
  globalThis.armKills = () => { armed = true; };
  process.on('exit', () => report(1, String(calls)));
`;

/** Runs `code` (an ES module that calls `armKills()`) with the kill at call `n`: killed, or finished after that many calls. */
function runKilledAt(code: string, n: number): Promise<{ killed: true } | { killed: false; calls: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', KILL_AT_CALL + code], {
      env: { ...process.env, KILL_AT: String(n) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.on('exit', (status, signal) => {
      if (signal === 'SIGKILL') resolve({ killed: true });
      else if (status === 0) resolve({ killed: false, calls: Number(out) });
      else reject(new Error(`the child failed (${status ?? signal})`));
    });
  });
}

/**
 * Kills `code` before each of its file-system calls in turn, checking what it leaves with `check`,
 * until a run finishes; returns what each kill left.
 */
async function killAtEveryCall<T>(code: string, reset: () => Promise<void>, check: (n: number) => T): Promise<T[]> {
  const seen: T[] = [];
  for (let n = 1; ; n++) {
    await reset();
    const run = await runKilledAt(code, n);
    if (!run.killed) {
      assert.equal(run.calls, n - 1, 'every call before the end was a kill point');
      return seen;
    }
    seen.push(check(n));
  }
}

test('a checkpoint saved over another and killed at any point loads whole (old or new) after recovery', async () => {
  const fixture = join(fixtureDir('parallel-r25'), 'model');
  const models = join(dir, 'models');
  const step = join(models, 'step1');
  const original = loadCheckpoint(fixture);
  const save = `
    const { loadCheckpoint, saveCheckpoint } = await import(${JSON.stringify(dist('model/checkpoint.js'))});
    const { config, params } = loadCheckpoint(${JSON.stringify(fixture)});
    const doubled = new Map([...params].map(([k, v]) => [k, v.map((x) => 2 * x)]));
    armKills();
    await saveCheckpoint(${JSON.stringify(step)}, config, doubled, { extraFiles: { 'marker.txt': '1' } });`;
  const reset = async (): Promise<void> => {
    rmSync(models, { recursive: true, force: true });
    await saveCheckpoint(step, original.config, original.params, { extraFiles: { 'marker.txt': '0' } });
  };
  const left = await killAtEveryCall(save, reset, (n) => {
    recoverInterruptedSaves(models, /^step\d+$/);
    assert.deepEqual(readdirSync(models), ['step1'], `after a kill at call ${n} nothing but step1 is left`);
    const loaded = loadCheckpoint(step);
    const marker = readFileSync(join(step, 'marker.txt'), 'utf8');
    const name = 'gpt_neox.embed_in.weight';
    assert.deepEqual(
      loaded.params.get(name),
      original.params.get(name)!.map((x) => (marker === '1' ? 2 : 1) * x),
      `weights match marker.txt after a kill at call ${n}`,
    );
    return marker;
  });
  // Kills before the swap leave the old checkpoint, kills after it the new one.
  assert.ok(left.length >= 8, `${left.length} kill points`);
  assert.equal(left[0], '0');
  assert.equal(left.at(-1), '1');
  assert.deepEqual(left, [...left].sort(), 'old until the swap, new after it');
});

test('start-up recovery: a folder renamed aside comes back when its place is empty, temporaries go', async () => {
  const models = join(dir, 'recover');
  mkdirSync(join(models, '.step4.0a1b2c3d.old'), { recursive: true });
  writeFileSync(join(models, '.step4.0a1b2c3d.old', 'config.json'), 'old and whole');
  mkdirSync(join(models, '.step4.99887766.tmp'));
  mkdirSync(join(models, 'step2'));
  mkdirSync(join(models, '.step2.12345678.old'));
  mkdirSync(join(models, '.other.12345678.old'));
  recoverInterruptedSaves(models, /^step\d+$/);
  assert.deepEqual(readdirSync(models).sort(), ['.other.12345678.old', 'step2', 'step4']);
  assert.equal(readFileSync(join(models, 'step4', 'config.json'), 'utf8'), 'old and whole');
});

/** Dataset A: 300 documents of 7 tokens of 1; B: 500 documents of 5 tokens of 2 (different .bin lengths). */
const LAYOUTS = { A: { documents: 300, size: 7, token: 1 }, B: { documents: 500, size: 5, token: 2 } };

function checkWhole(prefix: string, options: { fullCheckMaxIndexBytes?: number }): 'A' | 'B' | 'error' {
  let ds: IndexedDataset;
  try {
    ds = IndexedDataset.open(prefix, options);
  } catch (e) {
    assert.ok(!(e as Error).message.includes('\n'));
    return 'error';
  }
  try {
    const which = ds.length === LAYOUTS.A.documents ? 'A' : 'B';
    const { documents, size, token } = LAYOUTS[which];
    assert.equal(ds.length, documents);
    for (const i of [0, documents - 1]) assert.deepEqual(Array.from(ds.document(i)), new Array(size).fill(token));
    return which;
  } finally {
    ds.close();
  }
}

test('a dataset tokenized again over itself and killed at any point is the old pair, the new pair, or no .idx', async () => {
  const prefix = join(dir, 'data', 'corpus');
  const write = (layout: keyof typeof LAYOUTS): Promise<void> => {
    const { documents, size, token } = LAYOUTS[layout];
    const w = IndexedDatasetWriter.create(prefix, { vocabSize: 10 });
    for (let d = 0; d < documents; d++) w.add(new Array(size).fill(token));
    return w.finish();
  };
  await write('A');
  assert.equal(checkWhole(prefix, {}), 'A');
  await write('B');
  assert.equal(checkWhole(prefix, {}), 'B');
  assert.deepEqual(readdirSync(join(dir, 'data')).sort(), ['corpus.bin', 'corpus.idx'], 'no file left aside');

  const rewrite = `
    const { IndexedDatasetWriter } = await import(${JSON.stringify(dist('data/indexed-dataset.js'))});
    const { documents, size, token } = ${JSON.stringify(LAYOUTS.A)};
    armKills();
    const w = IndexedDatasetWriter.create(${JSON.stringify(prefix)}, { vocabSize: 10 });
    for (let d = 0; d < documents; d++) w.add(new Array(size).fill(token));
    await w.finish();`;
  const left = await killAtEveryCall(
    rewrite,
    async () => {
      rmSync(join(dir, 'data'), { recursive: true, force: true });
      await write('B');
    },
    (n) => {
      // Whole either way, also when only the ends of the index are checked (indexes over 64 MiB).
      const full = checkWhole(prefix, {});
      assert.equal(checkWhole(prefix, { fullCheckMaxIndexBytes: 0 }), full, `after a kill at call ${n}`);
      if (full === 'error') assert.ok(!existsSync(`${prefix}.idx`), 'only a missing .idx makes it unreadable');
      return full;
    },
  );
  // The old pair until the new .bin is in, then no .idx, then the new pair.
  assert.ok(left.length >= 6, `${left.length} kill points`);
  const order = ['B', 'error', 'A'];
  assert.deepEqual(
    left,
    [...left].sort((a, b) => order.indexOf(a) - order.indexOf(b)),
  );
  assert.equal(left[0], 'B');
  assert.equal(left.at(-1), 'A');
});

test('an old .idx beside a new .bin is refused on open, however large the index', async () => {
  const sub = join(dir, 'mixed');
  const a = IndexedDatasetWriter.create(join(sub, 'a'), { vocabSize: 10 });
  for (let d = 0; d < 4; d++) a.add([1, 2, 3]);
  await a.finish();
  const b = IndexedDatasetWriter.create(join(sub, 'b'), { vocabSize: 10 });
  for (let d = 0; d < 4; d++) b.add([1, 2, 3, 4]);
  await b.finish();
  renameSync(join(sub, 'b.bin'), join(sub, 'a.bin'));
  for (const fullCheckMaxIndexBytes of [0, 64 << 20]) {
    assert.throws(
      () => IndexedDataset.open(join(sub, 'a'), { fullCheckMaxIndexBytes }),
      (e: Error) =>
        e.name === 'FormatError' &&
        /a\.bin: longer than the index says: 32 bytes/.test(e.message) &&
        !e.message.includes('\n'),
    );
  }
});
