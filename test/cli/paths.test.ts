/**
 * Paths recorded in a run folder (suite.json, trainer_state.json) resolve against the folder of the
 * file that records them, never against the directory a command runs from: commands give the same
 * results run from anywhere, after the whole project is moved, and after the suite alone is moved;
 * same-named files in the current directory, or at the place a moved project used to be, are never
 * read. A suite.json of an older version, which recorded the data as typed, is refused in one line
 * rather than read against the current directory.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { IndexedDatasetWriter } from '../../src/data/indexed-dataset.js';
import { makeWorld, writeJsonl, writeTasks } from '../eval/support.js';
import { repoRoot } from '../support/paths.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const root = mkdtempSync(join(tmpdir(), 'pythia-paths-'));
after(() => rmSync(root, { recursive: true, force: true }));

function pythia(cwd: string, ...args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8' });
}

function ok(r: ReturnType<typeof pythia>): string {
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

const errorLines = (stderr: string): string[] =>
  stderr
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('pythia:') || l.includes('    at '));

const DATA = 'corpus/data/corpus_text_document';
const SUITE = 'runs/suite';

/**
 * A project as a user lays it out: `corpus/` (tokenizer, data, tasks) and `runs/suite/`, trained
 * from inside the project with relative paths, as they would be typed.
 */
async function project(dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const world = await makeWorld(join(dir, 'corpus'));
  const writer = IndexedDatasetWriter.create(join(dir, DATA), { vocabSize: world.tokenizer.vocabSize });
  for (let d = 0; d < 40; d++)
    writer.add(await world.tokenizer.encode(`Long ago a fox found ${d} coins by the river.`));
  await writer.finish();
  writeTasks(join(dir, 'corpus'));
  ok(
    pythia(
      dir,
      'suite',
      '--preset',
      'nano',
      '--models',
      'nano-25k',
      '--data',
      DATA,
      '--tokenizer',
      'corpus/tokenizer.json',
      '--out',
      SUITE,
      '--seq-length',
      '8',
      '--train-batch-size',
      '2',
      '--train-iters',
      '4',
      '--eval-iters',
      '0',
      '--threads',
      '1',
    ),
  );
  return dir;
}

/** Task files named as the project's, with other items, and one more task: evaluating any of them changes the rows. */
function plantDecoyTasks(corpus: string): void {
  const tasks = join(corpus, 'tasks');
  for (const name of ['choice', 'lambada', 'rolling', 'arithmetic', 'decoy'])
    writeJsonl(join(tasks, `${name}.jsonl`), [
      { id: 'x', output_type: 'loglikelihood', context: 'The cat sat on the', target: ' river' },
    ]);
}

/** A dataset too small to train or score from: a command that reads it fails. */
async function plantDecoyData(prefix: string): Promise<void> {
  const writer = IndexedDatasetWriter.create(prefix, { vocabSize: 300 });
  writer.add([1, 2, 3]);
  await writer.finish();
}

/** Benchmark rows of the suite's last checkpoint on its default tasks, into a database of its own. */
function evalRows(cwd: string, suite: string, db: string, ...extra: string[]): unknown {
  return JSON.parse(
    ok(pythia(cwd, 'eval', suite, '--steps', '4', '--limit', '2', '--threads', '1', '--db', db, '--json', ...extra)),
  );
}

/** Memorization scores of the last checkpoint, with the data order its trainer_state.json records. */
function memorize(cwd: string, checkpoint: string): string {
  return ok(
    pythia(cwd, 'memorize', checkpoint, '--sample', '4', '--prompt-len', '4', '--cont-len', '4', '--threads', '1'),
  );
}

test("pythia eval run from another directory evaluates the suite's own tasks, never same-named files there", async () => {
  const dir = await project(join(root, 'cwd', 'project'));
  const expected = evalRows(dir, SUITE, join(root, 'cwd', 'a.duckdb'));
  const elsewhere = join(root, 'cwd', 'elsewhere');
  plantDecoyTasks(join(elsewhere, 'corpus'));
  assert.deepEqual(evalRows(elsewhere, join(dir, SUITE), join(root, 'cwd', 'b.duckdb')), expected);
  assert.equal(memorize(elsewhere, join(dir, SUITE, 'nano-25k/step4')), memorize(dir, 'runs/suite/nano-25k/step4'));
});

test('a project moved as a whole works from anywhere, and what is left at its old place is not read', async () => {
  const before = await project(join(root, 'moved', 'before'));
  const expected = evalRows(before, SUITE, join(root, 'moved', 'a.duckdb'));
  const scores = memorize(before, 'runs/suite/nano-25k/step4');
  const weights = readFileSync(join(before, SUITE, 'nano-25k/step4/model.safetensors'));

  const after = join(root, 'moved', 'after');
  renameSync(before, after);
  // Same-named files where the project was: the paths it recorded as they were written.
  await plantDecoyData(join(before, DATA));
  plantDecoyTasks(join(before, 'corpus'));
  const elsewhere = join(root, 'moved', 'elsewhere');
  mkdirSync(elsewhere);
  assert.deepEqual(evalRows(elsewhere, join(after, SUITE), join(root, 'moved', 'b.duckdb')), expected);
  assert.equal(memorize(elsewhere, join(after, SUITE, 'nano-25k/step4')), scores);

  // Resuming without --data trains on the moved data, to the same weights.
  rmSync(join(after, SUITE, 'nano-25k/step4'), { recursive: true });
  ok(pythia(elsewhere, 'train', '--resume', join(after, SUITE, 'nano-25k/step2'), '--threads', '1'));
  assert.ok(readFileSync(join(after, SUITE, 'nano-25k/step4/model.safetensors')).equals(weights));
});

test('a suite moved on its own still finds the data and tasks it was trained with', async () => {
  const dir = await project(join(root, 'alone', 'project'));
  const expected = evalRows(dir, SUITE, join(root, 'alone', 'a.duckdb'));
  const scores = memorize(dir, 'runs/suite/nano-25k/step4');
  const suite = join(root, 'alone', 'somewhere', 'else', 'suite');
  mkdirSync(join(suite, '..'), { recursive: true });
  renameSync(join(dir, SUITE), suite);
  const elsewhere = join(root, 'alone', 'elsewhere');
  plantDecoyTasks(join(elsewhere, 'corpus'));
  assert.deepEqual(evalRows(elsewhere, suite, join(root, 'alone', 'b.duckdb')), expected);
  assert.equal(memorize(elsewhere, join(suite, 'nano-25k/step4')), scores);
});

test('an older suite.json that kept the data as typed is refused in one line naming both places; older trainer states still read', async () => {
  const dir = await project(join(root, 'old', 'project'));
  const expected = evalRows(dir, SUITE, join(root, 'old', 'a.duckdb'));
  const scores = memorize(dir, 'runs/suite/nano-25k/step4');
  const manifestPath = join(dir, SUITE, 'suite.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  writeFileSync(manifestPath, JSON.stringify({ ...manifest, data: { prefix: DATA, preshuffled: false } }));
  const r = pythia(dir, 'eval', SUITE, '--steps', '4', '--limit', '2', '--db', join(root, 'old', 'b.duckdb'));
  assert.equal(r.status, 1);
  const lines = errorLines(r.stderr);
  assert.equal(lines.length, 1, r.stderr);
  assert.ok(lines[0]!.startsWith(`pythia: ${join(SUITE, 'suite.json')}: data.prefix: ${DATA}: `), lines[0]);
  assert.ok(lines[0]!.includes(resolve(dir, SUITE, DATA)), lines[0]);
  assert.ok(lines[0]!.includes(resolve(dir, DATA)), lines[0]);
  assert.match(lines[0]!, /--task-dir/);
  // Naming the task folder is enough.
  assert.deepEqual(evalRows(dir, SUITE, join(root, 'old', 'c.duckdb'), '--task-dir', 'corpus/tasks'), expected);

  // trainer_state.json of an older version: the data prefix absolute, nothing else.
  const stepDir = join(dir, SUITE, 'nano-25k/step4');
  const statePath = join(stepDir, 'trainer_state.json');
  const state = JSON.parse(readFileSync(statePath, 'utf8'));
  writeFileSync(statePath, JSON.stringify({ ...state, data: { prefix: resolve(dir, DATA), preshuffled: false } }));
  const copy = join(root, 'old', 'step4');
  cpSync(stepDir, copy, { recursive: true });
  assert.equal(memorize(join(root, 'old'), copy), scores);
});
