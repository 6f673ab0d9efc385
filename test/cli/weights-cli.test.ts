/**
 * `pythia weights`: --json equals weightStats and weightsSha256 on the checkpoints as loaded, for
 * folders, a suite and an `org/name@step*` glob over hub revisions (one a copy of the one before);
 * `pythia token-losses`: --json equals a float64 log-softmax of the model's logits; one-line errors.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { datasetHeldOut } from '../../src/analysis/held-out.js';
import { weightStats, weightsSha256 } from '../../src/analysis/weight-stats.js';
import { IndexedDatasetWriter } from '../../src/data/indexed-dataset.js';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import { forward } from '../../src/model/forward.js';
import { Prng } from '../../src/util/prng.js';
import { makeWorld, writeCheckpoint } from '../eval/support.js';
import { repoRoot } from '../support/paths.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
const dir = mkdtempSync(join(tmpdir(), 'pythia-weights-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const suite = join(dir, 'suite');
const step = (s: number) => join(suite, 'm', `step${s}`);
const data = join(dir, 'data', 'held');

function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}

/** A hub revision as huggingface_hub leaves it: blobs by sha256, a snapshot of relative links, a ref. */
function addRevision(cache: string, id: string, ref: string, folder: string): void {
  const repo = join(cache, `models--${id.replace('/', '--')}`);
  const commit = createHash('sha1').update(ref).digest('hex');
  mkdirSync(join(repo, 'blobs'), { recursive: true });
  mkdirSync(join(repo, 'snapshots', commit), { recursive: true });
  mkdirSync(join(repo, 'refs'), { recursive: true });
  for (const name of readdirSync(folder)) {
    const content = readFileSync(join(folder, name));
    const blob = createHash('sha256').update(content).digest('hex');
    writeFileSync(join(repo, 'blobs', blob), content);
    symlinkSync(`../../blobs/${blob}`, join(repo, 'snapshots', commit, name));
  }
  writeFileSync(join(repo, 'refs', ref), commit);
}

before(async () => {
  const world = await makeWorld(dir, 16);
  await writeCheckpoint(world, step(0), 1);
  await writeCheckpoint(world, step(1), 1);
  await writeCheckpoint(world, step(2), 2);
  const writer = IndexedDatasetWriter.create(data, { vocabSize: world.config.vocabSize });
  const rng = new Prng(3);
  for (let d = 0; d < 10; d++) writer.add(Array.from({ length: 8 }, () => rng.int(world.config.vocabSize)));
  await writer.finish();
});

describe('pythia weights', () => {
  test('--json: per checkpoint and group the numbers of weightStats, the hash, and the identical flag', () => {
    const r = run('weights', step(2), step(0), step(1), '--json');
    assert.equal(r.status, 0, r.stderr);
    const lines = jsonLines(r.stdout);
    assert.deepEqual(Object.keys(lines[0]!), [
      'model',
      'step',
      'param_group',
      'norm',
      'previous_step',
      'relative_change',
      'cosine',
      'weights_sha256',
      'identical',
    ]);
    const params = [0, 1, 2].map((s) => loadCheckpoint(step(s)));
    const expected = [0, 1, 2].flatMap((s) =>
      weightStats(params[s]!.config, params[s]!.params, s > 0 ? params[s - 1]!.params : undefined).map((g) => ({
        model: 'm',
        step: s,
        param_group: g.group,
        norm: g.norm,
        previous_step: s > 0 ? s - 1 : null,
        relative_change: g.relativeChange,
        cosine: g.cosine,
        weights_sha256: weightsSha256(params[s]!.params),
        identical: s === 0 ? null : s === 1,
      })),
    );
    assert.deepEqual(lines, expected);
    // A suite folder names the same checkpoints.
    assert.equal(run('weights', suite, '--json').stdout, r.stdout);
  });

  test('a glob over hub revisions, in step order; the table names the identical checkpoint', () => {
    const cache = join(dir, 'hub');
    for (const s of [0, 1, 2]) addRevision(cache, 'org/tiny', `step${s}`, step(s));
    const r = run('weights', 'org/tiny@step*', '--cache-dir', cache, '--json');
    assert.equal(r.status, 0, r.stderr);
    const all = jsonLines(r.stdout).filter((l) => l.param_group === 'all');
    assert.deepEqual(
      all.map((l) => [l.model, l.step, l.previous_step, l.identical]),
      [
        ['org/tiny', 0, null, null],
        ['org/tiny', 1, 0, true],
        ['org/tiny', 2, 1, false],
      ],
    );
    const table = run('weights', 'org/tiny@step*', '--cache-dir', cache);
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, /^model\s+step\s+group\s+norm\s+previous\s+rel_change\s+cosine\s+identical$/m);
    assert.match(table.stdout, /^org\/tiny step 1: weights identical to step 0$/m);
  });

  test('a source that is neither a checkpoint nor a suite nor in the hub cache: one line', () => {
    const r = run('weights', 'org/absent@step*', '--cache-dir', join(dir, 'hub'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /org\/absent is not in the Hugging Face cache/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });
});

describe('pythia token-losses', () => {
  test('--json: each token after the first of each row, its loss a float64 log-softmax of the logits', async () => {
    const r = run('token-losses', step(2), '--data', data, '--rows', '3', '--length', '6', '--json', '--threads', '1');
    assert.equal(r.status, 0, r.stderr);
    const lines = jsonLines(r.stdout);
    assert.equal(lines.length, 3 * 5);
    const held = datasetHeldOut(data, { rows: 3, length: 6 });
    const { config, params } = loadCheckpoint(step(2));
    const { logits } = await forward(config, params, BigInt64Array.from(held.tokens, BigInt), 3, {}, { threads: 1 });
    const V = config.vocabSize;
    lines.forEach((line, i) => {
      const [row, position] = [Math.floor(i / 5), (i % 5) + 1];
      const token = held.tokens[row * 6 + position]!;
      assert.deepEqual([line.row, line.position, line.token], [row, position, token]);
      const at = (row * 6 + position - 1) * V;
      const z = Array.from(logits!.subarray(at, at + V));
      const max = Math.max(...z);
      const want = max + Math.log(z.reduce((s, v) => s + Math.exp(v - max), 0)) - z[token]!;
      assert.ok(Math.abs((line.loss as number) - want) < 1e-4, `${row}/${position}: ${line.loss} vs ${want}`);
    });
  });

  test('without --json, a summary; the default length is what the model reads', () => {
    const r = run('token-losses', step(0), '--data', data, '--rows', '2', '--threads', '1');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /2 × 17 tokens \(32 predicted\)/);
    assert.match(r.stdout, /^tokens\s+32$/m);
    assert.match(r.stdout, /^mean\s+\d+\.\d{4} nats$/m);
  });

  for (const [label, args, message] of [
    ['no held-out text for a checkpoint without a training record', [], /give held-out text with --data <prefix>/],
    [
      'a row longer than the model reads',
      ['--data', data, '--length', '40'],
      /--length: 40 tokens is more than this model reads/,
    ],
  ] as const) {
    test(`refuses ${label} in one line`, () => {
      const r = run('token-losses', step(0), ...args);
      assert.equal(r.status, 1);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    });
  }
});
