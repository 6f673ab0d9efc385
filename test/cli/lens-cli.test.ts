/**
 * `pythia lens`: --json equals GPTNeoX.logitLens, the table, one-line errors; on held-out text (a
 * trained suite's validation batches, whose last-layer cross-entropy is the logged val_loss, or a
 * --data prefix) with bits per byte from the checkpoint's tokenizer or --tokenizer.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { heldOutTokens } from '../../src/analysis/held-out.js';
import { GPTNeoX } from '../../src/api/gpt-neox.js';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import { readLog } from '../../src/train/run-folder.js';
import { fixtureModel } from '../support/activations.js';
import { fixtureDir, repoRoot } from '../support/paths.js';
import { type TinySuite, trainTinySuite } from '../support/tiny-suite.js';

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

describe('pythia lens on held-out text', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pythia-lens-held-out-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let tiny: TinySuite;
  before(() => {
    tiny = trainTinySuite(dir);
  });
  const lines = (stdout: string) =>
    stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number>);

  test("without --tokens it reads the checkpoint's validation batches: the last layer's cross-entropy is the logged val_loss", async () => {
    const r = run('lens', tiny.step(4), '--rows', '4', '--json', '--threads', '1');
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stderr,
      /^pythia lens: reading 4 rows of 1 held-out batches after the last training batch \(sha256 [0-9a-f]{12}\)$/m,
    );
    const layers = lines(r.stdout);
    assert.deepEqual(Object.keys(layers[0]!), ['layer', 'kl', 'ce', 'entropy', 'top1', 'kl_bpb', 'ce_bpb']);
    const logged = readLog(tiny.log).find((e) => e.step === 4)!.val_loss!;
    assert.ok(Math.abs(layers.at(-1)!.ce! - logged) < 1e-5, `${layers.at(-1)!.ce} vs ${logged}`);
    // Bits per byte: × tokens / bytes / ln 2 of the rows' text.
    const held = await heldOutTokens(tiny.step(4), { rows: 4, length: 65 });
    const tokenizer = await loadTokenizer(tiny.tokenizer);
    let bytes = 0;
    for (let row = 0; row < 4; row++)
      bytes += Buffer.byteLength(tokenizer.decode(Array.from(held.tokens.subarray(row * 65, (row + 1) * 65))));
    const factor = (4 * 65) / bytes / Math.LN2;
    for (const l of layers) {
      assert.ok(Math.abs(l.kl_bpb! - l.kl! * factor) < 1e-12);
      assert.ok(Math.abs(l.ce_bpb! - l.ce! * factor) < 1e-12);
    }
  });

  test('its default rows are 16 of a training sample, the table has the bits-per-byte columns', () => {
    const r = run('lens', tiny.step(2), '--threads', '1');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /reading 16 rows of 4 held-out batches/);
    assert.match(r.stderr, /over 16 × 65 tokens \(1024 predicted positions\)/);
    assert.match(r.stdout.split('\n')[1]!, /^layer\s+kl\s+ce\s+entropy\s+top1\s+kl_bpb\s+ce_bpb$/);
  });

  test('--data reads a dataset from its start, as long as the context allows', () => {
    const r = run('lens', tiny.step(4), '--data', tiny.data, '--rows', '2', '--json', '--threads', '1');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /reading the first 2 × 129 tokens of /);
    assert.equal(lines(r.stdout).length, 3);
  });

  test('--tokenizer gives bits per byte to a checkpoint that has none; without one, nats only and said', () => {
    const tokens = join(dir, 'rows.json');
    writeFileSync(tokens, JSON.stringify(fixtureModel('parallel-r25').rows));
    const without = run('lens', model, '--tokens', tokens, '--json', '--threads', '1');
    assert.equal(without.status, 0, without.stderr);
    assert.match(without.stderr, /has no tokenizer\.json and no --tokenizer was given: nats only, no bits per byte/);
    const withTokenizer = run(
      'lens',
      model,
      '--tokens',
      tokens,
      '--json',
      '--threads',
      '1',
      '--tokenizer',
      tiny.tokenizer,
    );
    assert.equal(withTokenizer.status, 0, withTokenizer.stderr);
    const layers = lines(withTokenizer.stdout);
    assert.ok(layers.every((l) => l.kl_bpb! >= 0 && l.ce_bpb! > 0));
    assert.deepEqual(
      layers.map(({ layer, kl, ce, entropy, top1 }) => ({ layer, kl, ce, entropy, top1 })),
      lines(without.stdout),
    );
  });

  for (const [label, args, message] of [
    [
      'a row longer than a training sample',
      ['--length', '66'],
      /--length: 66 tokens is longer than a training sample .*\(65\)$/,
    ],
    [
      '--tokens with --data',
      ['--tokens', 'x.json', '--data', 'y'],
      /give either --tokens <file\.json> or --data <prefix>/,
    ],
    ['a missing dataset', ['--data', '/nonexistent/corpus'], /nonexistent\/corpus/],
  ] as const) {
    test(`refuses ${label} in one line`, () => {
      const r = run('lens', tiny.step(4), ...args);
      assert.equal(r.status, 1);
      assert.match(r.stderr.trim(), message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    });
  }
});
