/**
 * Built-in tasks through `pythia eval`: datasets found in --dataset-dir (JSON Lines placed by the
 * hub's conventions and by a README's configs), evaluated at 0 and 1 shots into a results database
 * whose rows carry lm-eval's task names and the tasks' identities; a dataset that is not there is
 * one line with the command that fetches it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadBuiltinTask } from '../../src/eval/lm-eval/load.js';
import { ResultsStore } from '../../src/results/store.js';
import { repoRoot } from '../support/paths.js';
import { golden } from './lm-eval-golden.js';
import { makeWorld, writeCheckpoint } from './support.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'pythia-builtin-cli-'));
const datasets = join(dir, 'datasets');
const emptyCache = join(dir, 'no-cache');
let checkpoint: string;

function jsonl(path: string, docs: readonly object[]): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, docs.map((d) => `${JSON.stringify(d)}\n`).join(''));
}

before(async () => {
  const world = await makeWorld(dir);
  checkpoint = join(dir, 'tiny', 'step0');
  await writeCheckpoint(world, checkpoint, 1);
  for (const [split, docs] of Object.entries(golden.docs.piqa!))
    jsonl(join(datasets, 'baber', 'piqa', `${split}.jsonl`), docs);
  const wsc = join(datasets, 'lighteval', 'winograd_wsc');
  jsonl(join(wsc, 'wsc273', 'test.jsonl'), golden.docs.wsc273!.test!);
  writeFileSync(
    join(wsc, 'README.md'),
    '---\nconfigs:\n- config_name: wsc273\n  data_files:\n  - split: test\n    path: wsc273/test.jsonl\n---\n',
  );
});
after(() => rmSync(dir, { recursive: true, force: true }));

function pythia(...args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
}

test('pythia eval --tasks piqa wsc273: lm-eval names, metrics and identities in the database', async () => {
  const db = join(dir, 'results.duckdb');
  const r = pythia(
    'eval',
    checkpoint,
    '--tasks',
    'piqa',
    'wsc273',
    '--dataset-dir',
    datasets,
    '--cache-dir',
    emptyCache,
    '--shots',
    '0,1',
    '--limit',
    '3',
    '--db',
    db,
    '--threads',
    '1',
    '--json',
  );
  assert.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as { task: string; shots: number; metric: string; n: number }[];
  assert.deepEqual(
    rows.map((x) => `${x.task} ${x.shots} ${x.metric} ${x.n}`),
    ['piqa 0 acc 3', 'piqa 0 acc_norm 3', 'piqa 1 acc 3', 'piqa 1 acc_norm 3', 'wsc273 0 acc 3', 'wsc273 1 acc 3'],
  );
  const store = await ResultsStore.open(db, { readOnly: true });
  try {
    const tasks = await store.rows('SELECT task, output_type, items, sha256 FROM tasks ORDER BY task');
    const lookup = { cacheDir: emptyCache, datasetDir: datasets };
    assert.deepEqual(tasks, [
      {
        task: 'piqa',
        output_type: 'multiple_choice',
        items: 5,
        sha256: (await loadBuiltinTask('piqa', lookup)).sha256,
      },
      {
        task: 'wsc273',
        output_type: 'multiple_choice',
        items: 8,
        sha256: (await loadBuiltinTask('wsc273', lookup)).sha256,
      },
    ]);
    const [item] = await store.rows("SELECT meta FROM task_items WHERE task = 'piqa' AND item_id = '0'");
    assert.equal(JSON.parse(String(item!.meta)).goal, 'How do I dry wet shoes?');
  } finally {
    store.close();
  }
});

test('a built-in task whose dataset is not there is one line with the command that fetches it; nothing is written', () => {
  const db = join(dir, 'missing.duckdb');
  const r = pythia(
    'eval',
    checkpoint,
    '--tasks',
    'winogrande',
    '--cache-dir',
    emptyCache,
    '--db',
    db,
    '--threads',
    '1',
  );
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^pythia: [^\n]*\n$/, 'one line, no stack');
  assert.match(
    r.stderr,
    /dataset allenai\/winogrande \(winogrande_xl\) is not in the Hugging Face cache .*; nothing is downloaded: fetch it with huggingface-cli download --repo-type dataset allenai\/winogrande --revision refs\/convert\/parquet --include 'winogrande_xl\/\*'\n$/,
  );
});

test('--help says the order a task name resolves in', () => {
  const help = pythia('eval', '--help').stdout.replace(/\s+/g, ' ');
  assert.match(help, /--dataset-dir <dir>/);
  assert.match(help, /--include-path <dirs\.\.\.>/);
  assert.match(
    help,
    /a path \(\.jsonl, or an lm-eval \.yaml task config\), then a task in --task-dir or the suite's task folder, then a task, tag or group of the --include-path YAML configs, then a built-in task/,
  );
});
