/**
 * One error hierarchy, one line each: every user-facing error is a PythiaError; the CLI prints
 * those and Node's system errors (disk full, permission denied, closed pipe) as `pythia: <line>`.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { describeError } from '../../src/cli/errors.js';
import { GraphError } from '../../src/graph/shape.js';
import { RuntimeError } from '../../src/runtime/session.js';
import { nanoRecipe } from '../../src/train/recipes.js';
import { checkTrainerState } from '../../src/train/resume-state.js';
import { loadResumePoint, TRAINER_STATE_FILE } from '../../src/train/trainer.js';
import { ConfigError, DataError, FormatError, PythiaError, UserError } from '../../src/util/errors.js';
import { fixtureDir, repoRoot } from '../support/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'pythia-errors-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const cli = join(repoRoot, 'dist/src/cli/main.js');
const model = join(fixtureDir('parallel-r25'), 'model');

function systemError(code: string, syscall: string, path?: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: something, ${syscall}`) as NodeJS.ErrnoException;
  Object.assign(e, { code, syscall, errno: -1 }, path === undefined ? {} : { path });
  return e;
}

test('every user-facing error class is a PythiaError and is reported as its one line', () => {
  const errors = [
    new FormatError('f.bin', 'bad'),
    new ConfigError('c'),
    new DataError('d'),
    new UserError('u'),
    new GraphError('matmul', 'g'),
    new RuntimeError('r'),
  ];
  for (const e of errors) {
    assert.ok(e instanceof PythiaError, e.name);
    assert.equal(describeError(e), e.message);
  }
  assert.deepEqual(
    errors.map((e) => e.name),
    ['FormatError', 'ConfigError', 'DataError', 'UserError', 'GraphError', 'RuntimeError'],
  );
  assert.equal(describeError(new FormatError('f.bin', 'two\n  lines')), 'f.bin: two lines');
  // An error that crossed a thread boundary keeps only its name.
  const carried = Object.assign(new Error('x.json: field y'), { name: 'ConfigError' });
  assert.equal(describeError(carried), 'x.json: field y');
  assert.match(describeError(new TypeError('boom')), /^internal error: TypeError: boom\n/);
});

test('system errors are one line, with their path when known', () => {
  assert.equal(describeError(systemError('ENOSPC', 'write')), 'no space left on device during write');
  assert.equal(describeError(systemError('ENOSPC', 'write', '/data/x.bin')), '/data/x.bin: no space left on device');
  assert.equal(describeError(systemError('EACCES', 'open', '/root/x')), '/root/x: permission denied');
  assert.equal(describeError(systemError('ENOENT', 'open', 'nope.json')), 'nope.json: no such file or directory');
  assert.equal(describeError(systemError('EPIPE', 'write')), 'broken pipe (the reader closed it) during write');
  assert.equal(describeError(systemError('EWEIRD', 'read', 'z')), 'z: EWEIRD: something, read');
});

test('a closed pipe ends `pythia inspect` quietly; a full stdout is one line', async () => {
  const child = spawn(process.execPath, [cli, 'inspect', model, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const status = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(stderr, '');
  assert.equal(status, 0);
  const full = spawnSync('sh', ['-c', `"${process.execPath}" "${cli}" inspect "${model}" --json > /dev/full`], {
    encoding: 'utf8',
  });
  assert.equal(full.stderr, 'pythia: standard output: no space left on device\n');
  assert.equal(full.status, 1);
});

/** A tiny tmpfs to fill, when this process may mount one (root on Linux); undefined otherwise. */
function tinyDisk(name: string, size: string): string | undefined {
  const mount = join(dir, name);
  mkdirSync(mount);
  const done = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mount]);
  if (done.status !== 0) return undefined;
  after(() => spawnSync('umount', [mount]));
  return mount;
}

test('disk full: `forward`, `data tokenize` and `train` print one line naming the file', (t) => {
  const disk = tinyDisk('tiny', '48k');
  if (!disk) return t.skip('cannot mount a tmpfs here (needs root)');
  const tokens = join(dir, 'tokens.json');
  writeFileSync(tokens, JSON.stringify([[1, 2, 3, 4, 5, 6, 7, 8]]));
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

  const forward = run(
    'forward',
    model,
    '--tokens',
    tokens,
    '--out',
    join(disk, 'out.safetensors'),
    '--hidden-states',
    '--grads',
    '--loss',
  );
  assert.equal(forward.stderr, `pythia: ${join(disk, 'out.safetensors')}: no space left on device\n`);
  assert.equal(forward.status, 1);

  const corpus = join(dir, 'corpus.txt');
  writeFileSync(corpus, 'word '.repeat(40_000));
  const tokenizer = join(dir, 'tokenizer.json');
  assert.equal(run('tokenizer', 'train', '--input', corpus, '--vocab-size', '300', '--out', tokenizer).status, 0);
  const tokenize = run('data', 'tokenize', '--input', corpus, '--tokenizer', tokenizer, '--out', join(disk, 'ds'));
  assert.match(tokenize.stderr, new RegExp(`^pythia: ${join(disk, 'ds')}\\.(bin|idx): no space left on device\\n$`));
  assert.equal(tokenize.status, 1);

  const data = join(dir, 'ds');
  assert.equal(run('data', 'tokenize', '--input', corpus, '--tokenizer', tokenizer, '--out', data).status, 0);
  const train = run(
    'train',
    '--preset',
    'nano-25k',
    '--data',
    data,
    '--vocab-file',
    tokenizer,
    '--train-iters',
    '2',
    '--out',
    disk,
  );
  assert.match(
    train.stderr,
    new RegExp(`pythia: ${join(disk, 'nano-25k', 'step0')}/[a-z_.]+: no space left on device\\n$`),
  );
  assert.equal(train.status, 1);
});

test('--resume from a trainer_state.json with a missing or wrong field names the file and the field', () => {
  const state = {
    format: 'pythia-ts trainer state',
    version: 1,
    model: 'm',
    step: 2,
    samplesConsumed: 32,
    recipe: nanoRecipe(0.003),
    data: { prefix: '/data/corpus', preshuffled: false },
    init: { seed: 1, from: null },
    rng: { words: [1, -2, 3, 4], spareNormal: null },
    intervention: null,
  };
  assert.equal(checkTrainerState(state, 's.json'), state);
  const step = join(dir, 'step2');
  cpSync(model, step, { recursive: true });
  const write = (s: unknown) => writeFileSync(join(step, TRAINER_STATE_FILE), JSON.stringify(s));
  const refused = (pattern: RegExp) =>
    assert.throws(
      () => loadResumePoint(step),
      (e: Error) => e.name === 'FormatError' && pattern.test(e.message) && !e.message.includes('\n'),
    );
  const { lr: _, ...noLr } = state.recipe.schedule;
  write({ ...state, recipe: { ...state.recipe, schedule: noLr } });
  refused(
    new RegExp(
      `${join(step, TRAINER_STATE_FILE)}: cannot resume: field recipe\\.schedule\\.lr is missing \\(expected a number\\)`,
    ),
  );
  write({ ...state, step: -1 });
  refused(/field step is -1, expected a non-negative integer/);
  write({
    ...state,
    recipe: { ...state.recipe, checkpoint: { ...state.recipe.checkpoint, checkpointScale: 'cubic' } },
  });
  refused(/field recipe\.checkpoint\.checkpointScale is "cubic", expected one of "linear", "log"/);
  write({ ...state, data: undefined });
  refused(/data is missing, expected an object/);
  write([]);
  refused(/the file is \[\], expected an object/);
});
