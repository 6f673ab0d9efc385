/**
 * The run folder (src/train/run-folder.ts): each file's hostile cases give one line naming the file
 * and the field, and every reader of the folder (evaluation, the case studies, the report, the
 * public API) sees the same checkpoints and the same records.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readTrainingRecord } from '../../src/analysis/training-record.js';
import { Suite } from '../../src/api/suite.js';
import { checkpointRef, readSuite, suiteCheckpoints } from '../../src/eval/checkpoints.js';
import { readSuiteInfo } from '../../src/report/suite-manifest.js';
import { nanoRecipe } from '../../src/train/recipes.js';
import {
  checkpointSteps,
  LOG_FILE,
  modelFolders,
  readLog,
  readSuiteManifest,
  readTrainerState,
  SUITE_MANIFEST,
  startLog,
  TRAINER_STATE_FILE,
  trainerStateText,
} from '../../src/train/run-folder.js';
import type { TrainerState } from '../../src/train/trainer.js';

const BOM = '\uFEFF';
const root = mkdtempSync(join(tmpdir(), 'pythia-run-folder-'));
let n = 0;
const fresh = (): string => {
  const dir = join(root, String(n++));
  mkdirSync(dir, { recursive: true });
  return dir;
};

function state(step: number, data = '/data/corpus'): TrainerState {
  return {
    format: 'pythia-ts trainer state',
    version: 1,
    model: 'm',
    step,
    samplesConsumed: step * nanoRecipe(0.003).trainBatchSize,
    recipe: nanoRecipe(0.003),
    data: { prefix: data, preshuffled: false },
    init: { seed: 1, from: null },
    rng: null,
    intervention: null,
    baseline: null,
  };
}

/** A checkpoint folder as the trainer lays it out (config.json stands for the weights). */
function checkpoint(dir: string, step: number): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), '{}');
  writeFileSync(join(dir, TRAINER_STATE_FILE), trainerStateText(state(step), dir));
  return dir;
}

/** One line, starting with the file's path, naming the field. */
function refused(fn: () => unknown, file: string, pattern: RegExp): void {
  assert.throws(fn, (e: Error) => {
    assert.equal(e.name, 'FormatError');
    assert.ok(!e.message.includes('\n'), e.message);
    assert.ok(e.message.startsWith(`${file}: `), e.message);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes(BOM));
    return true;
  });
}

test('trainer_state.json: written and read back; missing field, wrong type, BOM, truncated each name the file and field', () => {
  const dir = checkpoint(join(fresh(), 'step4'), 4);
  const read = readTrainerState(dir);
  assert.equal(read.step, 4);
  assert.equal(read.samplesConsumed, 4 * read.recipe.trainBatchSize);
  assert.equal(read.data.prefix, '/data/corpus');
  const path = join(dir, TRAINER_STATE_FILE);
  const { samplesConsumed: _, ...noSamples } = state(4);
  writeFileSync(path, JSON.stringify(noSamples));
  refused(() => readTrainerState(dir), path, /field samplesConsumed is missing \(expected a non-negative integer\)/);
  writeFileSync(path, JSON.stringify({ ...state(4), step: '4' }));
  refused(() => readTrainerState(dir), path, /field step is "4", expected a non-negative integer/);
  writeFileSync(path, `${BOM}${JSON.stringify(state(4))}`);
  refused(() => readTrainerState(dir), path, /U\+FEFF/);
  writeFileSync(path, JSON.stringify(state(4)).slice(0, 40));
  refused(() => readTrainerState(dir), path, /not valid JSON/);
  // transformers' Trainer writes a trainer_state.json of its own: not ours, so no record, not an error.
  writeFileSync(path, JSON.stringify({ global_step: 500, log_history: [] }));
  assert.deepEqual(readTrainingRecord(dir), { step: 4 });
  assert.equal(checkpointRef(dir).tokens, null);
  writeFileSync(path, JSON.stringify(state(4)).slice(0, 40));
  // Every reader refuses a broken one the same way, instead of passing over it.
  refused(() => readTrainingRecord(dir), path, /not valid JSON/);
  refused(() => checkpointRef(dir), path, /not valid JSON/);
});

test('log.jsonl: entries read back; a cut-short line, a wrong type, a missing step, a BOM name the file, line and field', () => {
  const dir = fresh();
  const path = join(dir, LOG_FILE);
  const lines = [
    { step: 0, val_loss: 10 },
    { step: 1, loss: 9.5, lr: 0.001, batch_sha256: 'ab' },
  ];
  writeFileSync(path, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
  assert.deepEqual(readLog(path), lines);
  writeFileSync(path, `${JSON.stringify(lines[0])}\n${JSON.stringify(lines[1]).slice(0, 12)}`);
  refused(() => readLog(path), path, /line 2: not valid JSON .*cut short/);
  writeFileSync(path, `${JSON.stringify({ step: 1, loss: '9.5' })}\n`);
  refused(() => readLog(path), path, /line 1: field loss is "9\.5", expected a number/);
  writeFileSync(path, `${JSON.stringify({ loss: 9.5 })}\n`);
  refused(() => readLog(path), path, /line 1: field step is missing, expected a non-negative integer/);
  writeFileSync(path, `${BOM}${JSON.stringify(lines[0])}\n`);
  refused(() => readLog(path), path, /line 1: .*U\+FEFF/);
  refused(() => readLog(join(dir, 'none.jsonl')), join(dir, 'none.jsonl'), /no such log/);
});

test('log.jsonl: a resumed run keeps the entries up to its step and drops a line a kill cut short', () => {
  const path = join(fresh(), LOG_FILE);
  writeFileSync(path, '{"step":1,"loss":2}\n{"step":2,"loss":1}\n{"step":3,"lo');
  startLog(path, 2, true);
  assert.deepEqual(readLog(path), [
    { step: 1, loss: 2 },
    { step: 2, loss: 1 },
  ]);
  startLog(path, 2, false);
  assert.throws(() => readLog(path), /no such log/);
});

test('suite.json: missing field, wrong type, BOM, truncated each name the file and field', () => {
  const dir = fresh();
  const path = join(dir, SUITE_MANIFEST);
  const manifest = {
    suite: 'nano',
    data: { prefix: 'corpus/data', preshuffled: false },
    models: [{ name: 'a', trainIters: 8 }],
    batchSha256: ['x', 'y'],
  };
  writeFileSync(path, JSON.stringify(manifest));
  assert.deepEqual(readSuiteManifest(dir), manifest);
  assert.equal(readSuiteManifest(fresh()), undefined);
  writeFileSync(path, JSON.stringify({ ...manifest, models: [{ trainIters: 8 }] }));
  refused(() => readSuiteManifest(dir), path, /models\[0\]\.name: missing \(expected a string\)/);
  writeFileSync(path, JSON.stringify({ ...manifest, models: [{ name: 'a', trainIters: '8' }] }));
  refused(() => readSuiteManifest(dir), path, /models\[0\]\.trainIters: expected a non-negative integer, got "8"/);
  writeFileSync(path, JSON.stringify({ ...manifest, data: { preshuffled: false } }));
  refused(() => readSuiteManifest(dir), path, /data\.prefix: missing/);
  writeFileSync(path, JSON.stringify({ ...manifest, batchSha256: [1] }));
  refused(() => readSuiteManifest(dir), path, /batchSha256: expected an array of strings/);
  writeFileSync(path, `${BOM}${JSON.stringify(manifest)}`);
  refused(() => readSuiteManifest(dir), path, /U\+FEFF/);
  writeFileSync(path, JSON.stringify(manifest).slice(0, 30));
  refused(() => readSuiteManifest(dir), path, /not valid JSON/);
  // The report and the API read it through the same check.
  refused(() => readSuiteInfo(dir), path, /not valid JSON/);
  refused(() => Suite.open(dir), path, /not valid JSON/);
});

test('every reader sees the same checkpoints: step<N> folders holding config.json, nothing else', () => {
  const dir = fresh();
  for (const [model, steps] of [
    ['a', [0, 2, 10]],
    ['b', [0, 10]],
  ] as const)
    for (const s of steps) checkpoint(join(dir, model, `step${s}`), s);
  mkdirSync(join(dir, 'a', 'step5')); // no config.json: not a checkpoint
  mkdirSync(join(dir, 'a', '.step8.abcd.tmp')); // a killed save's leftover
  mkdirSync(join(dir, 'a', 'step03x'));
  writeFileSync(join(dir, 'a', 'step7'), 'a file');
  mkdirSync(join(dir, 'empty'));
  writeFileSync(join(dir, 'a', LOG_FILE), '{"step":1,"loss":2}\n');
  writeFileSync(
    join(dir, SUITE_MANIFEST),
    JSON.stringify({
      suite: 'nano',
      data: { prefix: 'x', preshuffled: false },
      models: [{ name: 'a' }, { name: 'b' }],
    }),
  );

  assert.deepEqual(checkpointSteps(join(dir, 'a')), [0, 2, 10]);
  const folders = modelFolders(dir);
  assert.deepEqual(
    folders.map((m) => [m.name, m.steps, m.log !== undefined]),
    [
      ['a', [0, 2, 10], true],
      ['b', [0, 10], false],
    ],
  );
  const evalView = suiteCheckpoints(readSuite(dir)!, {}).map((c) => `${c.model}@${c.step}:${c.tokens}`);
  const apiView = Suite.open(dir)
    .checkpoints()
    .map((c) => `${c.model}@${c.step}:${checkpointRef(c.dir).tokens}`);
  const analysisView = folders.flatMap((m) =>
    m.steps.map((s) => {
      const r = readTrainingRecord(join(m.dir, `step${s}`));
      return `${m.name}@${r.step}:${r.step! * r.trainBatchSize! * r.seqLength!}`;
    }),
  );
  assert.deepEqual(evalView, apiView);
  assert.deepEqual(evalView, analysisView);
  assert.deepEqual(evalView.length, 5);
  assert.deepEqual(readSuiteInfo(dir)?.trainIters, new Map());
});
