/** `pythia activations`: named activations to safetensors, --list, one-line errors; `pythia forward --hidden-states`'s names. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { openSafetensors } from '../../src/formats/index.js';
import { activationNames } from '../../src/model/hooks.js';
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
