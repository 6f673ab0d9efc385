/** `pythia lens`: --json equals GPTNeoX.logitLens, the table, one-line errors. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { GPTNeoX } from '../../src/api/gpt-neox.js';
import { fixtureModel } from '../support/activations.js';
import { fixtureDir, repoRoot } from '../support/paths.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
const model = join(fixtureDir('parallel-r25'), 'model');

describe('pythia lens', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pythia-lens-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const m = fixtureModel('parallel-r25');
  const tokens = join(dir, 'tokens.json');
  writeFileSync(tokens, JSON.stringify(m.rows));

  test('--json prints one object per layer, equal to GPTNeoX.logitLens', async () => {
    const r = run('lens', model, '--tokens', tokens, '--json', '--threads', '1');
    assert.equal(r.status, 0, r.stderr);
    const printed = r.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const neox = await GPTNeoX.fromPretrained(model, { threads: 1 });
    const expected = await neox.logitLens(m.rows);
    await neox.dispose();
    assert.equal(printed.length, m.config.numLayers + 1);
    assert.deepEqual(printed, expected);
    assert.deepEqual(Object.keys(printed[0]!), ['layer', 'kl', 'ce', 'entropy', 'top1']);
  });

  test('prints a table of every layer', () => {
    const r = run('lens', model, '--tokens', tokens, '--threads', '1');
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[1]!, /^layer\s+kl\s+ce\s+entropy\s+top1$/);
    assert.equal(lines.length, 2 + m.config.numLayers + 1);
    assert.match(lines.at(-1)!, new RegExp(`^\\s*${m.config.numLayers}\\s+0\\.0000\\s+\\S+\\s+\\S+\\s+1\\.0000$`));
  });

  for (const [label, rows, args, message] of [
    [
      'no --tokens and no --data for a checkpoint with no training record',
      undefined,
      [],
      /records no training data .*: give held-out text with --data <prefix>$/m,
    ],
    ['rows of one token', [[1], [2]], undefined, /rows of 1 token; the lens needs at least 2/],
    ['a token id outside the vocabulary', [[1, 100000]], undefined, /100000/],
    ['rows of unequal length', [[1, 2], [3]], undefined, /row 1 has 1 tokens but row 0 has 2/],
  ] as const) {
    test(`refuses ${label} in one line`, () => {
      const file = join(dir, `${label.replace(/\W+/g, '-')}.json`);
      if (rows) writeFileSync(file, JSON.stringify(rows));
      const r = run('lens', model, ...(args ?? ['--tokens', file]));
      assert.equal(r.status, 1);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    });
  }
});
