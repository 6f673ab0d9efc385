/**
 * `pythia tuned-lens train|eval` on a random checkpoint laid out as a suite's, with held-out rows
 * from a tokenized dataset: train saves under <suite>/lenses/<model>/step<N> with progress on
 * stderr; eval prints each layer's tuned metrics beside the logit lens's, the tuned KL lower at
 * every layer but the last; one-line refusals (a lens folder inside a hub snapshot, a lens of
 * another width, both --lens and --lens-dir, no folder for a checkpoint outside a suite, lr 0).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { IndexedDatasetWriter } from '../../src/data/indexed-dataset.js';
import { saveCheckpoint } from '../../src/model/checkpoint.js';
import type { NeoXConfig } from '../../src/model/config.js';
import { pythiaArchitecture } from '../../src/model/presets.js';
import { randomParams } from '../eval/support.js';
import { repoRoot } from '../support/paths.js';
import { Rng } from '../support/random.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

describe('pythia tuned-lens', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pythia-tuned-lens-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const config: NeoXConfig = {
    ...pythiaArchitecture({ numLayers: 2, hiddenSize: 32, numHeads: 2, vocabSize: 96, maxPositions: 32 }),
    dtype: 'float32',
  };
  const checkpoint = join(dir, 'suite/nano/step8');
  const data = join(dir, 'data/held-out');
  const held = ['--data', data, '--rows', '4', '--length', '24', '--threads', '1'];

  before(async () => {
    await saveCheckpoint(checkpoint, config, randomParams(config, 5));
    const writer = IndexedDatasetWriter.create(data, { vocabSize: config.vocabSize });
    const rng = new Rng(3);
    for (let d = 0; d < 20; d++) writer.add(Array.from(rng.ints(50, 0, config.vocabSize), Number));
    await writer.finish();
  });

  test("train saves under the suite's lenses/ with progress on stderr; eval beats the logit lens", () => {
    const trained = run(
      'tuned-lens',
      'train',
      checkpoint,
      ...held,
      '--steps',
      '30',
      '--tokens-per-step',
      '96',
      '--json',
    );
    assert.equal(trained.status, 0, trained.stderr);
    const summary = JSON.parse(trained.stdout);
    const lensDir = join(dir, 'suite/lenses/nano/step8');
    assert.equal(summary.lens_dir, lensDir);
    assert.equal(summary.rows_per_step, 4);
    assert.equal(summary.steps, 30);
    assert.ok(summary.final_loss < summary.first_loss, trained.stdout);
    assert.deepEqual(readdirSync(lensDir).sort(), ['config.json', 'params.safetensors']);
    assert.match(trained.stderr, /step 1\/30, loss/);
    assert.match(trained.stderr, /step 30\/30, loss/);

    const evaluated = run('tuned-lens', 'eval', checkpoint, '--threads', '1', '--json');
    assert.equal(evaluated.status, 0, evaluated.stderr);
    assert.match(evaluated.stderr, /evaluating on the first 4 × 24 tokens/);
    const layers = evaluated.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.equal(layers.length, config.numLayers + 1);
    assert.deepEqual(Object.keys(layers[0]), ['layer', 'kl', 'ce', 'entropy', 'top1', 'logit']);
    for (const l of layers.slice(0, -1)) assert.ok(l.kl < l.logit.kl, `layer ${l.layer}: ${JSON.stringify(l)}`);
    const last = layers.at(-1);
    assert.equal(last.kl, 0);
    assert.equal(last.logit.kl, 0);

    const table = run('tuned-lens', 'eval', checkpoint, '--threads', '1');
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout.split('\n')[1]!, /^layer\s+tuned kl\s+tuned ce\s+tuned entropy\s+tuned top1\s+logit kl/);
  });

  test('refuses a lens folder inside a hub snapshot in one line, before any training', () => {
    const snapshot = join(dir, 'hub/models--org--tiny/snapshots/0123abcd');
    mkdirSync(snapshot, { recursive: true });
    cpSync(checkpoint, snapshot, { recursive: true });
    const r = run('tuned-lens', 'train', snapshot, ...held, '--lens-dir', join(snapshot, 'lens'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /inside a Hugging Face hub snapshot, which is never written into/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.equal(existsSync(join(snapshot, 'lens')), false);
  });

  for (const [label, args, message] of [
    [
      'no folder for a checkpoint outside a suite',
      () => ['train', join(dir, 'hub/models--org--tiny/snapshots/0123abcd'), ...held],
      /not a suite checkpoint.*--lens-dir/,
    ],
    [
      'both --lens and --lens-dir',
      () => ['eval', checkpoint, '--lens', dir, '--lens-dir', dir],
      /either --lens .* or --lens-dir, not both/,
    ],
    [
      'a lens of another width',
      () => ['eval', checkpoint, '--lens', join(repoRoot, 'test/fixtures/tuned-lens/lens'), ...held],
      /2 translators of width 4 does not fit a model of 2 layers of width 32/,
    ],
    [
      'a learning rate of 0',
      () => ['train', checkpoint, ...held, '--lr', '0'],
      /tuned lens lr: expected a positive number, got 0/,
    ],
  ] as const) {
    test(`refuses ${label} in one line`, () => {
      const r = run('tuned-lens', ...args());
      assert.equal(r.status, 1, r.stdout);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    });
  }
});
