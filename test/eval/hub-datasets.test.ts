/**
 * Built-in tasks read from the local Hugging Face hub cache (and --dataset-dir) with DuckDB: small
 * datasets in each repository's real schema (column names, order and types: int64 labels, int32
 * locations, string lists, ARC's struct), written as parquet by DuckDB's COPY in the layouts
 * `huggingface-cli download` leaves (the parquet conversion under refs/refs/convert/parquet, a
 * repository's own files placed by its README's configs, JSON Lines named by split), blobs and
 * symlinks included. Each task read from there makes the same items as from the golden documents.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { commit, HubCacheWriter, SCHEMAS } from '../../bench/common-hub-cache.js';
import { locateDataset } from '../../src/eval/hub-datasets.js';
import { buildTask } from '../../src/eval/lm-eval/build.js';
import { loadBuiltinTask } from '../../src/eval/lm-eval/load.js';
import { builtinTask, evalSplit, fewshotSplit } from '../../src/eval/lm-eval/tasks.js';
import { loadTasks } from '../../src/eval/task-files.js';
import { golden, goldenSplit } from './lm-eval-golden.js';

const dir = mkdtempSync(join(tmpdir(), 'pythia-hub-datasets-'));
const cache = join(dir, 'hub');
let hub: HubCacheWriter;
after(() => {
  hub.close();
  rmSync(dir, { recursive: true, force: true });
});

const writeParquet = (path: string, rows: readonly object[], schema: Record<string, string>) =>
  hub.writeParquet(path, rows, schema);
const stagedParquet = (rows: readonly object[], schema: Record<string, string>) => hub.stagedParquet(rows, schema);
const snapshot = (repo: string, revision: string, commitHash: string, files: Record<string, string>) =>
  hub.snapshot(repo, revision, commitHash, files);

/** The parquet conversion of a config, of a golden task's documents: <config>/<split>/0000.parquet. */
function conversion(repo: string, config: string, task: string, schema: string, n: number, at: string = cache) {
  return hub.conversion(repo, config, golden.docs[task]!, SCHEMAS[schema]!, commit(n), at);
}

/** The items a task makes, as plain JSON (documents read from parquet come back as objects without prototype). */
const plain = (x: unknown) => JSON.parse(JSON.stringify(x));

function goldenTask(name: string) {
  const def = builtinTask(name)!;
  return buildTask(
    def,
    { repository: 'golden', config: 'golden', revision: null, dir: '' },
    goldenSplit(name, evalSplit(def)),
    goldenSplit(name, fewshotSplit(def)),
  );
}

before(async () => {
  hub = await HubCacheWriter.open(cache, join(dir, 'staging'));
  await conversion('EleutherAI/logiqa', 'logiqa', 'logiqa', 'logiqa', 1);
  await conversion('allenai/ai2_arc', 'ARC-Easy', 'arc_easy', 'arc', 2);
  await conversion('allenai/ai2_arc', 'ARC-Challenge', 'arc_challenge', 'arc', 2);
  await conversion('allenai/sciq', 'default', 'sciq', 'sciq', 3);
  // lambada_openai: a loading script and its data on main (no convention to read), the conversion beside it.
  const script = join(dir, 'staging', 'lambada_openai.py');
  writeFileSync(script, '# a loading script\n');
  const jsonl = join(dir, 'staging', 'lambada_test.jsonl');
  writeFileSync(jsonl, '{"text": "not this one"}\n');
  snapshot('EleutherAI/lambada_openai', 'main', commit(4), {
    'lambada_openai.py': script,
    'data/lambada_test.jsonl': jsonl,
  });
  await conversion('EleutherAI/lambada_openai', 'default', 'lambada_openai', 'lambada_openai', 5);
  // wikitext: the test split in two parquet files, read in order.
  const pages = golden.docs.wikitext!;
  snapshot('EleutherAI/wikitext_document_level', 'refs/convert/parquet', commit(6), {
    'wikitext-2-raw-v1/train/0000.parquet': await stagedParquet(pages.train!, SCHEMAS.wikitext!),
    'wikitext-2-raw-v1/validation/0000.parquet': await stagedParquet(pages.validation!, SCHEMAS.wikitext!),
    'wikitext-2-raw-v1/test/0000.parquet': await stagedParquet(pages.test!.slice(0, 1), SCHEMAS.wikitext!),
    'wikitext-2-raw-v1/test/0001.parquet': await stagedParquet(pages.test!.slice(1), SCHEMAS.wikitext!),
    // Another config's files are never read.
    'wikitext-103-raw-v1/test/0000.parquet': await stagedParquet([{ page: 'other' }], SCHEMAS.wikitext!),
  });
  // winogrande: the repository's own parquet files, placed by its README's configs.
  const readme = join(dir, 'staging', 'README.md');
  writeFileSync(
    readme,
    [
      '---',
      'configs:',
      '- config_name: winogrande_debiased',
      '  data_files:',
      '  - split: train',
      '    path: winogrande_debiased/train-*',
      '- config_name: winogrande_xl',
      '  data_files:',
      '  - split: train',
      '    path: winogrande_xl/train-*',
      '  - split: validation',
      '    path: winogrande_xl/validation-*',
      '---',
      '# WinoGrande',
      '',
    ].join('\n'),
  );
  const wino = golden.docs.winogrande!;
  snapshot('allenai/winogrande', 'main', commit(7), {
    'README.md': readme,
    'winogrande_xl/train-00000-of-00001.parquet': await stagedParquet(wino.train!, SCHEMAS.winogrande!),
    'winogrande_xl/validation-00000-of-00001.parquet': await stagedParquet(wino.validation!, SCHEMAS.winogrande!),
    'winogrande_debiased/train-00000-of-00001.parquet': await stagedParquet(wino.train!.slice(1), SCHEMAS.winogrande!),
  });
  // wsc273 under its older name, in the parquet conversion's older layout (<config>/<name>-<split>.parquet).
  snapshot('winograd_wsc', 'refs/convert/parquet', commit(8), {
    'wsc273/winograd_wsc-test.parquet': await stagedParquet(golden.docs.wsc273!.test!, SCHEMAS.wsc273!),
  });
});

const datasetDir = join(dir, 'datasets');

before(() => {
  // piqa in --dataset-dir as JSON Lines named by split (the hub's conventions, no README).
  for (const [split, docs] of Object.entries(golden.docs.piqa!)) {
    const path = join(datasetDir, 'baber', 'piqa', 'data', `${split}.jsonl`);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, docs.map((d) => `${JSON.stringify(d)}\n`).join(''));
  }
});

test('every built-in task read from the hub cache (or --dataset-dir) makes the golden items', async () => {
  for (const name of Object.keys(golden.tasks)) {
    const task = await loadBuiltinTask(name, { cacheDir: cache, datasetDir });
    const want = goldenTask(name);
    assert.deepEqual(plain(task.items), plain(want.items), name);
    assert.deepEqual(plain(task.fewshot?.pool ?? null), plain(want.fewshot?.pool ?? null), name);
    assert.equal(task.name, name);
    assert.equal(task.outputType, want.outputType);
  }
});

test('where each was found: snapshot, config and commit; files hashed into the identity', async () => {
  const wiki = locateDataset(
    { repository: 'EleutherAI/wikitext_document_level', config: 'wikitext-2-raw-v1', splits: ['test'] },
    { cacheDir: cache },
  );
  assert.equal(wiki.revision, commit(6));
  assert.deepEqual(
    wiki.splits.get('test')!.map((f) => relative(wiki.dir, f)),
    ['wikitext-2-raw-v1/test/0000.parquet', 'wikitext-2-raw-v1/test/0001.parquet'],
  );
  const lambada = locateDataset(
    { repository: 'EleutherAI/lambada_openai', config: 'default', splits: ['test'] },
    { cacheDir: cache },
  );
  assert.equal(lambada.revision, commit(5), 'the conversion, not the loading script on main');
  const wino = locateDataset(
    { repository: 'allenai/winogrande', config: 'winogrande_xl', splits: ['train', 'validation'] },
    { cacheDir: cache },
  );
  assert.deepEqual([wino.revision, wino.config], [commit(7), 'winogrande_xl']);
  assert.deepEqual(
    wino.splits.get('train')!.map((f) => relative(wino.dir, f)),
    ['winogrande_xl/train-00000-of-00001.parquet'],
  );
  const wsc = await loadBuiltinTask('wsc273', { cacheDir: cache });
  assert.match(wsc.path, /datasets--winograd_wsc/);
  const piqa = await loadBuiltinTask('piqa', { cacheDir: cache, datasetDir });
  assert.equal(piqa.path, join(datasetDir, 'baber', 'piqa'));
  // WikiText takes no demonstrations: its few-shot (train) split is neither needed nor read.
  const wikiDir = join(dir, 'datasets-wiki');
  const wikiRepo = join(wikiDir, 'EleutherAI', 'wikitext_document_level');
  mkdirSync(join(wikiRepo, 'wikitext-2-raw-v1'), { recursive: true });
  writeFileSync(
    join(wikiRepo, 'README.md'),
    '---\nconfigs:\n- config_name: wikitext-2-raw-v1\n  data_files:\n  - split: test\n    path: wikitext-2-raw-v1/test.jsonl\n---\n',
  );
  writeFileSync(
    join(wikiRepo, 'wikitext-2-raw-v1', 'test.jsonl'),
    golden.docs.wikitext!.test!.map((d) => `${JSON.stringify(d)}\n`).join(''),
  );
  const wikitext = await loadBuiltinTask('wikitext', { cacheDir: join(dir, 'empty'), datasetDir: wikiDir });
  assert.deepEqual([wikitext.items.length, wikitext.fewshot], [2, undefined]);
  // The identity is the definition's and the files': a file changed is another task.
  const before = (await loadBuiltinTask('logiqa', { cacheDir: cache })).sha256;
  assert.equal((await loadBuiltinTask('logiqa', { cacheDir: cache })).sha256, before);
  // The same files but for one more training document, in a dataset folder of their own.
  const changedDir = join(dir, 'datasets-changed');
  for (const [split, docs] of Object.entries(golden.docs.piqa!)) {
    const path = join(changedDir, 'baber', 'piqa', 'data', `${split}.jsonl`);
    mkdirSync(dirname(path), { recursive: true });
    const lines = split === 'train' ? [...docs, docs[0]!] : docs;
    writeFileSync(path, lines.map((d) => `${JSON.stringify(d)}\n`).join(''));
  }
  const changed = await loadBuiltinTask('piqa', { cacheDir: cache, datasetDir: changedDir });
  assert.notEqual(changed.sha256, piqa.sha256);
  assert.equal(changed.fewshot!.pool.length, piqa.fewshot!.pool.length + 1);
});

test('a dataset that is not there, or lacks a split, is one line with the command that fetches it', async () => {
  await assert.rejects(
    loadBuiltinTask('winogrande', { cacheDir: join(dir, 'empty') }),
    (e: Error) =>
      e.name === 'ConfigError' &&
      e.message.split('\n').length === 1 &&
      e.message.includes('dataset allenai/winogrande (winogrande_xl) is not in the Hugging Face cache') &&
      e.message.endsWith(
        "nothing is downloaded: fetch it with huggingface-cli download --repo-type dataset allenai/winogrande --revision refs/convert/parquet --include 'winogrande_xl/*'",
      ),
  );
  // The conversion of logiqa without its train split (a download limited by --include), in a cache of its own.
  const partial = join(dir, 'hub-partial');
  await conversion('EleutherAI/logiqa', 'logiqa', 'logiqa', 'logiqa', 9, partial);
  rmSync(join(partial, 'datasets--EleutherAI--logiqa', 'snapshots', commit(9), 'logiqa', 'train'), { recursive: true });
  await assert.rejects(
    loadBuiltinTask('logiqa', { cacheDir: partial }),
    /dataset EleutherAI\/logiqa \(logiqa\): .*snapshots\/0+9 has no train split of logiqa \(it has test\); nothing is downloaded: fetch it with huggingface-cli download --repo-type dataset EleutherAI\/logiqa --revision refs\/convert\/parquet --include 'logiqa\/\*'$/,
  );
  // A blob gone from under its link is named, with the command that fetches it again.
  const pruned = join(dir, 'hub-pruned');
  await conversion('EleutherAI/logiqa', 'logiqa', 'logiqa', 'logiqa', 10, pruned);
  const link = join(pruned, 'datasets--EleutherAI--logiqa', 'snapshots', commit(10), 'logiqa', 'test', '0000.parquet');
  rmSync(resolve(dirname(link), readlinkSync(link)));
  await assert.rejects(
    loadBuiltinTask('logiqa', { cacheDir: pruned }),
    (e: Error) =>
      e.name === 'ConfigError' &&
      e.message.startsWith(`${link} links to `) &&
      e.message.includes('which is missing from the Hugging Face cache; fetch it again with huggingface-cli download'),
  );
  await assert.rejects(loadBuiltinTask('hellaswag', { cacheDir: cache }), /hellaswag: not a built-in task/);
});

test('a file that is not what its name says, or a value of the wrong type, is named by file and row', async () => {
  const bad = join(dir, 'bad');
  mkdirSync(join(bad, 'allenai', 'sciq', 'default', 'test'), { recursive: true });
  mkdirSync(join(bad, 'allenai', 'sciq', 'default', 'train'), { recursive: true });
  writeFileSync(join(bad, 'allenai', 'sciq', 'default', 'test', '0000.parquet'), 'not parquet');
  await writeParquet(
    join(bad, 'allenai', 'sciq', 'default', 'train', '0000.parquet'),
    golden.docs.sciq!.train!,
    SCHEMAS.sciq!,
  );
  await assert.rejects(
    loadBuiltinTask('sciq', { cacheDir: join(dir, 'empty'), datasetDir: bad }),
    (e: Error) => e.name === 'FormatError' && /default\/test\/0000\.parquet: cannot read as parquet/.test(e.message),
  );
  // piqa's label as strings: refused by column, file and row.
  const piqa = join(dir, 'bad-piqa', 'baber', 'piqa');
  await writeParquet(join(piqa, 'default', 'train', '0000.parquet'), golden.docs.piqa!.train!, SCHEMAS.piqa!);
  await writeParquet(
    join(piqa, 'default', 'validation', '0000.parquet'),
    golden.docs.piqa!.validation!.map((d) => ({ ...d, label: String(d.label) })),
    { ...SCHEMAS.piqa!, label: 'VARCHAR' },
  );
  await assert.rejects(
    loadBuiltinTask('piqa', { cacheDir: join(dir, 'empty'), datasetDir: join(dir, 'bad-piqa') }),
    /default\/validation\/0000\.parquet: row 0: label: expected an integer, got "0" \(task piqa, validation split\)$/,
  );
});

test('--tasks resolves a path, then a task file in the task folders, then a built-in task or group (each once)', async () => {
  const taskDir = join(dir, 'tasks');
  mkdirSync(taskDir, { recursive: true });
  writeFileSync(
    join(taskDir, 'piqa.jsonl'),
    '{"id": "mine", "output_type": "multiple_choice", "context": "Q", "choices": ["a", "b"], "gold": 0}\n',
  );
  const lookup = { cacheDir: cache, datasetDir };
  const tasks = await loadTasks(['pythia', 'wikitext', 'arc_easy'], [], lookup);
  assert.deepEqual(
    tasks.map((t) => t.name),
    ['lambada_openai', 'piqa', 'winogrande', 'wsc273', 'arc_easy', 'arc_challenge', 'sciq', 'logiqa', 'wikitext'],
  );
  const [local] = await loadTasks(['piqa'], [taskDir], lookup);
  assert.deepEqual(
    [local!.path, local!.items[0]!.id, local!.fewshot],
    [join(taskDir, 'piqa.jsonl'), 'mine', undefined],
  );
  const [byPath] = await loadTasks([join(taskDir, 'piqa.jsonl')], [], lookup);
  assert.equal(byPath!.items[0]!.id, 'mine');
  await assert.rejects(loadTasks(['my-task.yaml'], [], lookup), /my-task\.yaml: task config not found$/);
  await assert.rejects(
    loadTasks(['hellaswag'], [taskDir], lookup),
    (e: Error) =>
      e.name === 'ConfigError' &&
      e.message ===
        `--tasks: unknown task "hellaswag" in the built-in tasks (arc_challenge, arc_easy, lambada_openai, logiqa, piqa, sciq, wikitext, winogrande, wsc273, pythia) and in ${taskDir}; known: piqa`,
  );
});
