import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PreshuffledWriter } from '../../src/data/preshuffled.js';
import { oncePerProcess } from '../support/once.js';
import { repoRoot } from '../support/paths.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
let work: string;

function pythia(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'pythia-train-cli-'));
  const writer = PreshuffledWriter.create(join(work, 'data'), { vocabSize: 64, seqLength: 16 });
  for (let s = 0; s < 16; s++) writer.addSample(Array.from({ length: 17 }, (_, t) => (s + 3 * t) % 64));
  await writer.finish();
});

after(() => rmSync(work, { recursive: true, force: true }));

/** A finished three-step run in `<work>/run`, which the resume test copies. */
const trainedRun = oncePerProcess(async () => {
  const r = pythia(
    'train',
    '--preset',
    'nano-25k',
    '--data',
    join(work, 'data'),
    '--preshuffled',
    '--out',
    join(work, 'run'),
    '--seq-length',
    '16',
    '--train-batch-size',
    '4',
    '--train-iters',
    '3',
    '--checkpoint-factor',
    '2',
    '--extra-save-iters',
    '0,1',
    '--eval-iters',
    '1',
    '--threads',
    '1',
  );
  assert.equal(r.status, 0, r.stderr);
  return { ...r, dir: join(work, 'run') };
});

test('pythia train runs a short preshuffled run and prints where things are', async () => {
  const r = await trainedRun();
  assert.match(r.stdout, /nano-25k: step 3, final loss \d+\.\d+, validation loss \d+\.\d+/);
  assert.match(r.stdout, /step\{0,1,2,3\}/);
  for (const step of [0, 1, 2, 3])
    assert.ok(existsSync(join(work, 'run/nano-25k', `step${step}`, 'model.safetensors')));
});

test('user errors are one line, without a stack trace', () => {
  const cases: [string[], RegExp][] = [
    [['train', '--preset', 'nano-25k', '--out', join(work, 'x')], /^pythia: --data <prefix> is required/],
    [
      ['train', '--preset', 'pythia-7b', '--data', join(work, 'data'), '--out', join(work, 'x')],
      /^pythia: preset: unknown model pythia-7b/,
    ],
    [
      ['train', '--resume', join(work, 'any/nano-25k/step2'), '--lr', '0.1'],
      /^pythia: --lr cannot be combined with --resume/,
    ],
    [['train', '--resume', join(work, 'nowhere')], /^pythia: .*nowhere: cannot resume: trainer_state\.json is missing/],
    [
      [
        'train',
        '--preset',
        'nano-25k',
        '--data',
        join(work, 'data'),
        '--preshuffled',
        '--out',
        join(work, 'y'),
        '--seq-length',
        '16',
        '--train-iters',
        '5',
      ],
      /^pythia: .*data: 16 samples, but 5 steps of 16 need 80/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = pythia(...args);
    assert.equal(r.status, 1, args.join(' '));
    const errors = r.stderr
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith('pythia train: '));
    assert.match(errors.join('\n'), message);
    assert.equal(
      r.stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('pythia:') || l.includes('    at ')).length,
      1,
      r.stderr,
    );
  }
});

test('pythia train --resume continues to the end; export neox-config writes one file per model', async () => {
  const resumed = join(work, 'resumed');
  cpSync((await trainedRun()).dir, resumed, { recursive: true });
  rmSync(join(resumed, 'nano-25k/step3'), { recursive: true });
  const r = pythia('train', '--resume', join(resumed, 'nano-25k/step2'), '--threads', '1');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /step\{3\}/);
  const original = join(work, 'run/nano-25k/step3/model.safetensors');
  assert.ok(readFileSync(join(resumed, 'nano-25k/step3/model.safetensors')).equals(readFileSync(original)));
  const e = pythia('export', 'neox-config', '--preset', 'nano', '--out', join(work, 'configs'));
  assert.equal(e.status, 0, e.stderr);
  assert.equal(e.stdout.trim().split('\n').length, 4);
  assert.match(readFileSync(join(work, 'configs/nano-793k.yml'), 'utf8'), /^hidden-size: 128$/m);
});
