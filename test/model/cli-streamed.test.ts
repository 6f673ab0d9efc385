/**
 * The commands that read activations, with `--max-memory` below a checkpoint's float32 weights:
 * each says on stderr that it streams and prints or writes the resident run's numbers (within 1e-6
 * relative, 1e-5 for forward's logits, which the resident path computes with another attention
 * graph); on fixture parallel-r25 split into float16 shards. The commands that cannot stream refuse
 * the flag in one line.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { openSafetensors } from '../../src/formats/index.js';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import { Prng } from '../../src/util/prng.js';
import { fixtureDir, repoRoot } from '../support/paths.js';
import { writeShardedCheckpoint } from './sharded-checkpoint.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'pythia-cli-stream-'));
const checkpoint = join(dir, 'model');
const tokens = join(dir, 'tokens.json');
const STREAMS = /float32 weights of .* exceed 70% of --max-memory .*: streaming one layer at a time/;

function pythia(...args: string[]) {
  return spawnSync(process.execPath, [cli, ...args, '--threads', '1'], { encoding: 'utf8' });
}

/** The command's run resident and with --max-memory 50KB; both must succeed, only the second stream. */
function both(...args: string[]): { resident: string; streamed: string } {
  const resident = pythia(...args);
  assert.equal(resident.status, 0, resident.stderr);
  assert.doesNotMatch(resident.stderr, STREAMS);
  const streamed = pythia(...args, '--max-memory', '50KB');
  assert.equal(streamed.status, 0, streamed.stderr);
  assert.match(streamed.stderr, STREAMS);
  return { resident: resident.stdout, streamed: streamed.stdout };
}

function assertNumbersClose(got: unknown, want: unknown, tolerance: number, path = ''): void {
  if (typeof want === 'number') {
    assert.equal(typeof got, 'number', path);
    if (got === want) return;
    assert.ok(
      Math.abs((got as number) - want) <= tolerance * Math.max(1, Math.abs(want)),
      `${path}: ${got} vs ${want}`,
    );
  } else if (want !== null && typeof want === 'object') {
    assert.deepEqual(Object.keys(got as object), Object.keys(want), path);
    for (const [k, v] of Object.entries(want))
      assertNumbersClose((got as Record<string, unknown>)[k], v, tolerance, `${path}.${k}`);
  } else {
    assert.equal(got, want, path);
  }
}

function assertFilesClose(got: string, want: string, tolerance: (name: string) => number): void {
  const [g, w] = [openSafetensors(got), openSafetensors(want)];
  try {
    assert.deepEqual(
      g.list().map((t) => [t.name, t.shape]),
      w.list().map((t) => [t.name, t.shape]),
    );
    for (const { name } of w.list())
      assertNumbersClose(Array.from(g.readFloat32(name)), Array.from(w.readFloat32(name)), tolerance(name), name);
  } finally {
    g.close();
    w.close();
  }
}

const jsonLines = (text: string): unknown[] =>
  text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

before(async () => {
  const { config, params } = loadCheckpoint(join(fixtureDir('parallel-r25'), 'model'));
  await writeShardedCheckpoint(checkpoint, config, params, 'float16', 5);
  const rng = new Prng(2);
  const rows = Array.from({ length: 3 }, () => Array.from({ length: 12 }, () => rng.int(config.vocabSize)));
  writeFileSync(tokens, JSON.stringify(rows));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('forward --max-memory streams: logits, block inputs and loss as resident', () => {
  const args = ['forward', checkpoint, '--tokens', tokens, '--hidden-states', '--loss'];
  both(...args, '--out', join(dir, 'forward-resident.safetensors'));
  const r = pythia(...args, '--out', join(dir, 'forward-streamed.safetensors'), '--max-memory', '50KB');
  assert.equal(r.status, 0, r.stderr);
  assertFilesClose(join(dir, 'forward-streamed.safetensors'), join(dir, 'forward-resident.safetensors'), (name) =>
    name === 'logits' ? 1e-5 : 1e-6,
  );
});

test('activations --max-memory streams: every name as resident', () => {
  const args = ['activations', checkpoint, '--tokens', tokens];
  assert.equal(pythia(...args, '--out', join(dir, 'act-resident.safetensors')).status, 0);
  const r = pythia(...args, '--out', join(dir, 'act-streamed.safetensors'), '--max-memory', '50KB');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, STREAMS);
  assertFilesClose(join(dir, 'act-streamed.safetensors'), join(dir, 'act-resident.safetensors'), () => 1e-6);
});

test('lens and heads --max-memory stream and print the resident numbers', () => {
  for (const command of ['lens', 'heads']) {
    const { resident, streamed } = both(command, checkpoint, '--tokens', tokens, '--json');
    assertNumbersClose(jsonLines(streamed), jsonLines(resident), 1e-6, command);
  }
});

test('train, export and forward --grads refuse --max-memory in one line', () => {
  for (const [args, why] of [
    [['train', '--preset', 'nano-25k'], /--max-memory: train cannot stream/],
    [['train', '--init-from', checkpoint], /--max-memory: train --init-from cannot stream/],
    [['export', 'onnx', checkpoint, '--out', join(dir, 'onnx')], /--max-memory: export cannot stream/],
    [
      ['forward', checkpoint, '--tokens', tokens, '--out', join(dir, 'g.safetensors'), '--grads'],
      /forward --grads cannot stream/,
    ],
  ] as const) {
    const r = spawnSync(process.execPath, [cli, ...args, '--max-memory', '8GB'], { encoding: 'utf8' });
    assert.notEqual(r.status, 0, args.join(' '));
    assert.match(r.stderr, why);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});
