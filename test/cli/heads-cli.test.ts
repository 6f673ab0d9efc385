/** `pythia heads` and `pythia icl`: --json equals the model-level functions, the tables, one-line errors. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ActivationRunner } from '../../src/model/activations.js';
import { headScores } from '../../src/model/head-detectors.js';
import { iclPositions, iclScore, inductionLoss } from '../../src/model/icl.js';
import { repeatedRandomTokens, repeatTokenRange } from '../../src/model/repeated-tokens.js';
import { Scorer } from '../../src/model/score.js';
import { fixtureModel } from '../support/activations.js';
import { fixtureDir, repoRoot } from '../support/paths.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args, '--threads', '1'], { encoding: 'utf8' });
const model = join(fixtureDir('parallel-r25'), 'model');
const lines = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));

describe('pythia heads and pythia icl', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pythia-heads-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const m = fixtureModel('parallel-r25');
  const write = (name: string, rows: unknown): string => {
    const file = join(dir, name);
    writeFileSync(file, JSON.stringify(rows));
    return file;
  };

  test('heads --json: one object per head, equal to headScores on the seeded random sequences it states', async () => {
    const r = run('heads', model, '--json', '--sequences', '2', '--length', '20', '--seed', '9');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /2 random sequences of 2 × 20 tokens \(ids in \[100, 211\), seed 9\)/);
    const printed = lines(r.stdout);
    const runner = new ActivationRunner(m.config, m.params, { threads: 1 });
    const expected = await headScores(runner, repeatedRandomTokens(2, 20, repeatTokenRange(m.config.vocabSize), 9));
    await runner.release();
    assert.deepEqual(
      printed,
      expected.map((s) => ({
        layer: s.layer,
        head: s.head,
        previous_token: s.previousToken,
        duplicate_token: s.duplicateToken,
        induction: s.induction,
      })),
    );
  });

  test('heads --tokens: rows of any lengths; a table without --json', async () => {
    const rows = [m.rows[0]!.slice(0, 9), [5, 6, 5, 6]];
    const r = run('heads', model, '--tokens', write('rows.json', rows));
    assert.equal(r.status, 0, r.stderr);
    const table = r.stdout.trim().split('\n');
    assert.match(table[0]!, /^layer\s+head\s+previous_token\s+duplicate_token\s+induction$/);
    assert.equal(table.length, 1 + m.config.numLayers * m.config.numHeads);
    const runner = new ActivationRunner(m.config, m.params, { threads: 1 });
    const last = (await headScores(runner, rows)).at(-1)!;
    await runner.release();
    assert.equal(
      table.at(-1)!.trim().split(/\s+/).join(' '),
      [
        last.layer,
        last.head,
        last.previousToken.toFixed(4),
        last.duplicateToken.toFixed(4),
        last.induction.toFixed(4),
      ].join(' '),
    );
  });

  test('icl --json: the induction loss and the score at the scaled positions, on the rows given', async () => {
    const rows = [0, 1, 2].map((b) => Array.from({ length: 40 }, (_, t) => (b * 53 + t * 17 + 5) % m.config.vocabSize));
    const r = run('icl', model, '--json', '--tokens', write('icl.json', rows), '--sequences', '2', '--length', '10');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /positions 3 and 31 \(50 and 500 of 2048, scaled to a context of 128\)/);
    const scorer = await Scorer.create(m.config, m.params, { threads: 1 });
    const induction = await inductionLoss(scorer, repeatedRandomTokens(2, 10, repeatTokenRange(m.config.vocabSize), 1));
    const icl = await iclScore(scorer, rows, iclPositions(m.config.maxPositions));
    scorer.release();
    assert.deepEqual(lines(r.stdout), [
      {
        induction_loss: induction,
        early_position: 3,
        late_position: 31,
        early_loss: icl.earlyLoss,
        late_loss: icl.lateLoss,
        icl_score: icl.score,
        text: 'tokens',
        rows: rows.length,
        sequences: 2,
        length: 10,
      },
    ]);
  });

  test('icl without held-out text reads the random sequences and says so', () => {
    const r = run('icl', model, '--sequences', '2');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /on 2 rows: 2 random sequences of 2 × 63 tokens \(no held-out text\)/);
    assert.match(r.stdout, /^icl score\s+-?\d+\.\d{4} nats {2}\(late − early\)$/m);
  });

  for (const [label, args, message] of [
    [
      'a --length whose copies fill the context',
      ['heads', model, '--length', '64'],
      /--length 64: two copies are 128 tokens/,
    ],
    [
      'a token id outside the vocabulary',
      ['heads', model, '--tokens', 'BAD:[[1, 100000]]'],
      /bad\.json: row 0 position 1: token id 100000 is outside the vocabulary \[0, 211\)/,
    ],
    [
      'a row of one token',
      ['heads', model, '--tokens', 'BAD:[[1, 2], [3]]'],
      /bad\.json: row 1 has 1 tokens; expected 2 to 128/,
    ],
    [
      'icl rows too short for the late position',
      ['icl', model, '--tokens', 'BAD:[[1, 2, 3]]'],
      /row 0 has 3 tokens; expected 32 to 128/,
    ],
    [
      'a missing --tokens file',
      ['heads', model, '--tokens', join(tmpdir(), 'no-such-file.json')],
      /no-such-file\.json: cannot read \(ENOENT\)/,
    ],
  ] as const) {
    test(`refuses ${label} in one line`, () => {
      const argv = args.map((a) => (a.startsWith('BAD:') ? write('bad.json', JSON.parse(a.slice(4))) : a));
      const r = run(...argv);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    });
  }
});
