/** `pythia activations`: named activations to safetensors, --list, one-line errors; `pythia forward --hidden-states`'s names. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openSafetensors } from '../../src/formats/index.js';
import { activationNames } from '../../src/model/hooks.js';
import { writeTextCheckpoint } from '../api/text-checkpoint.js';
import { assertActivationClose, fixtureModel } from '../support/activations.js';
import { fixtureDir, repoRoot } from '../support/paths.js';
import { referenceGptNeoX } from '../support/reference.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
const model = join(fixtureDir('sequential-r100'), 'model');

describe('pythia activations', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pythia-activations-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const m = fixtureModel('sequential-r100');
  const tokens = join(dir, 'tokens.json');
  writeFileSync(tokens, JSON.stringify(m.rows));

  test('writes the names asked for, under their names, equal to the float64 reference', () => {
    const out = join(dir, 'acts.safetensors');
    const r = run(
      'activations',
      model,
      '--tokens',
      tokens,
      '--names',
      'blocks.*.attn.hook_attn_scores',
      '--names',
      'blocks.1.hook_resid_mid',
      '--out',
      out,
      '--threads',
      '1',
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /4 names over 3 × 17 tokens \(decomposed attention\)/);
    const file = openSafetensors(out);
    assert.deepEqual(
      file
        .list()
        .map((t) => t.name)
        .sort(),
      [
        'blocks.0.attn.hook_attn_scores',
        'blocks.1.attn.hook_attn_scores',
        'blocks.1.hook_resid_mid',
        'blocks.2.attn.hook_attn_scores',
      ],
    );
    const reference = referenceGptNeoX(m.config, m.params, m.rows).activations;
    for (const t of file.list())
      assertActivationClose({ data: file.readFloat32(t.name), dims: t.shape }, reference.get(t.name)!, t.name);
    file.close();
  });

  test('--list prints every name with its shape', () => {
    const r = run('activations', model, '--list');
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.deepEqual(
      lines.map((l) => l.split(/\s+/)[0]),
      activationNames(m.config),
    );
    assert.match(r.stdout, /blocks\.0\.attn\.hook_pattern\s+\[batch, 3, dest, src\]/);
    assert.match(r.stdout, /blocks\.2\.attn\.hook_z\s+\[batch, pos, 3, 16\]/);
  });

  test('bad requests are one line naming what is wrong', () => {
    const unequal = join(dir, 'unequal.json');
    writeFileSync(unequal, '[[1, 2, 3], [4, 5]]');
    const cases: [string[], RegExp][] = [
      [
        ['--tokens', tokens, '--names', 'blocks.*.hook_nothing', '--out', join(dir, 'x')],
        /"blocks\.\*\.hook_nothing" matches none.*--list/,
      ],
      [['--tokens', unequal, '--out', join(dir, 'x')], /unequal\.json: row 1 has 2 tokens but row 0 has 3/],
      [['--text', 'hello', '--out', join(dir, 'x')], /--text needs a tokenizer/],
      [['--text', 'hello', '--tokens', tokens, '--out', join(dir, 'x')], /either --tokens/],
      [['--tokens', tokens], /--out <file\.safetensors> is required/],
    ];
    for (const [args, message] of cases) {
      const r = run('activations', model, ...args);
      assert.equal(r.status, 1, args.join(' '));
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });
});

describe('pythia patch', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pythia-patch-cli-'));
  const checkpoint = join(dir, 'text');
  before(() => writeTextCheckpoint(checkpoint, dir));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const texts = [
    '--clean',
    'the cat sat on the',
    '--corrupt',
    'the dog sat on the',
    '--answer',
    ' mat',
    '--wrong',
    ' cat',
  ];

  test('--json prints the [layer, position] and [layer, head] grids; a position the inputs share before the change is 0', () => {
    const resid = run('patch', checkpoint, ...texts, '--json', '--threads', '1', '--batch-size', '3');
    assert.equal(resid.status, 0, resid.stderr);
    const r = JSON.parse(resid.stdout);
    assert.equal(r.over, 'resid_pre');
    assert.deepEqual(r.tokens, ['the', ' cat', ' sat', ' on', ' the']);
    assert.equal(r.grid.length, 2);
    assert.equal(r.grid[0].length, 5);
    assert.ok(Math.abs(r.grid[0][0]) < 1e-5 && Math.abs(r.grid[0][1] - 1) < 1e-5, JSON.stringify(r.grid[0]));
    assert.match(resid.stderr, /10\/10 patched runs/);
    const heads = run('patch', checkpoint, ...texts, '--over', 'head_out', '--json', '--threads', '1');
    assert.equal(heads.status, 0, heads.stderr);
    const h = JSON.parse(heads.stdout);
    assert.equal(h.columns, 'head');
    assert.deepEqual([h.grid.length, h.grid[0].length], [2, 8]);
    assert.equal(h.cleanLogitDiff, r.cleanLogitDiff);
    const table = run('patch', checkpoint, ...texts, '--threads', '1');
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, /layer \\ position\s+0:"the"\s+1:" cat"/);
  });

  test('multi-token answers and inputs of different token lengths are refused in one line', () => {
    const cases: [string[], RegExp][] = [
      [
        ['--clean', 'the cat sat on the', '--corrupt', 'the dog sat on the', '--answer', ' mat', '--wrong', ' the cat'],
        /--wrong " the cat" is 2 tokens/,
      ],
      [
        ['--clean', 'the cat sat on the', '--corrupt', 'the dog sat on the mat', '--answer', ' mat', '--wrong', ' cat'],
        /--clean is 5 tokens and --corrupt 6/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = run('patch', checkpoint, ...args);
      assert.equal(r.status, 1);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });
});
