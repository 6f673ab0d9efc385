/**
 * SIGKILL at any moment while a checkpoint or a dataset is being replaced leaves either the old or
 * the new whole under its name (or, for a dataset, no .idx: a one-line error), never a mix; and
 * the next start restores a checkpoint folder a kill left renamed aside.
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

/** Runs `code` (an ES module) in a child that loops, and SIGKILLs it `ms` after its first line of output. */
function killAfter(code: string, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let armed = false;
    child.stdout.on('data', () => {
      if (armed) return;
      armed = true;
      setTimeout(() => child.kill('SIGKILL'), ms);
    });
    child.on('exit', (status, signal) =>
      signal === 'SIGKILL' ? resolve() : reject(new Error(`the looping child ended by itself (${status})`)),
    );
  });
}

const DELAYS = [0, 3, 11, 29, 53, 97, 151];

test('a checkpoint overwritten again and again and killed at any moment loads whole (old or new) after recovery', async () => {
  const fixture = join(fixtureDir('parallel-r25'), 'model');
  const models = join(dir, 'models');
  const step = join(models, 'step1');
  const original = loadCheckpoint(fixture);
  await saveCheckpoint(step, original.config, original.params, { extraFiles: { 'marker.txt': '0' } });
  const loop = `
    import { loadCheckpoint, saveCheckpoint } from ${JSON.stringify(dist('model/checkpoint.js'))};
    const { config, params } = loadCheckpoint(${JSON.stringify(fixture)});
    const doubled = new Map([...params].map(([k, v]) => [k, v.map((x) => 2 * x)]));
    for (let i = 1; ; i++) {
      await saveCheckpoint(${JSON.stringify(step)}, config, i % 2 ? doubled : params, { extraFiles: { 'marker.txt': String(i % 2) } });
      process.stdout.write('.');
    }`;
  for (const ms of DELAYS) {
    await killAfter(loop, ms);
    recoverInterruptedSaves(models, /^step\d+$/);
    assert.deepEqual(readdirSync(models), ['step1'], `after a kill at ${ms} ms nothing but step1 is left`);
    const loaded = loadCheckpoint(step);
    const factor = readFileSync(join(step, 'marker.txt'), 'utf8') === '1' ? 2 : 1;
    const name = 'gpt_neox.embed_in.weight';
    assert.deepEqual(
      loaded.params.get(name),
      original.params.get(name)!.map((x) => factor * x),
      `weights match marker.txt after a kill at ${ms} ms`,
    );
  }
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

test('a dataset tokenized again over itself and killed at any moment is the old pair, the new pair, or no .idx', async () => {
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

  const loop = `
    import { IndexedDatasetWriter } from ${JSON.stringify(dist('data/indexed-dataset.js'))};
    const layouts = ${JSON.stringify(LAYOUTS)};
    for (let i = 0; ; i++) {
      const { documents, size, token } = i % 2 ? layouts.A : layouts.B;
      const w = IndexedDatasetWriter.create(${JSON.stringify(prefix)}, { vocabSize: 10 });
      for (let d = 0; d < documents; d++) w.add(new Array(size).fill(token));
      await w.finish();
      process.stdout.write('.');
    }`;
  for (const ms of DELAYS) {
    await killAfter(loop, ms);
    // Whole either way, also when only the ends of the index are checked (indexes over 64 MiB).
    const full = checkWhole(prefix, {});
    assert.equal(checkWhole(prefix, { fullCheckMaxIndexBytes: 0 }), full);
    if (full === 'error') assert.ok(!existsSync(`${prefix}.idx`), 'only a missing .idx makes it unreadable');
  }
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
