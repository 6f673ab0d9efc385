/**
 * The STUDIES table (src/results/studies.ts) and rows inserted by column name: every study's
 * tables are in the schema keyed by the study, its cells split between shards with nothing lost or
 * doubled, and a row that names a column the table lacks, or leaves one out, is refused.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { CheckpointRef } from '../../src/eval/checkpoints.js';
import { TABLES } from '../../src/results/schema.js';
import { ResultsStore } from '../../src/results/store.js';
import { parseStudies, STUDIES, STUDY_NAMES, studyCells } from '../../src/results/studies.js';

const dir = mkdtempSync(join(tmpdir(), 'pythia-study-table-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test("every study's result tables are in the schema, keyed by the study first", () => {
  for (const name of STUDY_NAMES) {
    const study = STUDIES[name];
    assert.ok(study.tables.length > 0, name);
    for (const table of study.tables) {
      const spec = TABLES.find((t) => t.name === table);
      assert.ok(spec, `${name}: ${table} is not in TABLES`);
      assert.equal(spec.key[0], 'study', table);
    }
  }
  assert.deepEqual(
    STUDY_NAMES.map((n) => STUDIES[n].flag.name),
    [
      '--canaries',
      '--memorization',
      '--term-counts',
      '--logit-lens',
      '--tuned-lens',
      '--heads',
      '--icl',
      '--token-curves',
      '--weight-changes',
      '--attention',
    ],
  );
});

test('study cells: per checkpoint or per step, sorted, and every shard takes its share with nothing lost or doubled', () => {
  const refs = (model: string, steps: number[]): CheckpointRef[] =>
    steps.map((step) => ({ model, step, dir: `${model}/step${step}`, tokens: null }));
  const checkpoints = [...refs('b', [4, 0, 2]), ...refs('a', [0, 4])];
  const all = studyCells(['term-counts', 'memorization'], checkpoints);
  assert.deepEqual(
    all.map((c) => `${c.study}:${c.model ?? '*'}@${c.step}`),
    [
      'memorization:a@0',
      'memorization:a@4',
      'memorization:b@0',
      'memorization:b@2',
      'memorization:b@4',
      'term-counts:*@0',
      'term-counts:*@2',
      'term-counts:*@4',
    ],
  );
  for (const count of [1, 2, 3, 5]) {
    const shards = Array.from({ length: count }, (_, index) => studyCells(STUDY_NAMES, checkpoints, { index, count }));
    const joined = shards.flat().map((c) => JSON.stringify(c));
    assert.equal(new Set(joined).size, joined.length, `${count} shards: a cell twice`);
    assert.deepEqual(
      joined.sort(),
      studyCells(STUDY_NAMES, checkpoints)
        .map((c) => JSON.stringify(c))
        .sort(),
    );
  }
});

test('--studies names are checked against the table', () => {
  assert.deepEqual(parseStudies('term-counts, memorization'), ['term-counts', 'memorization']);
  assert.throws(
    () => parseStudies('memorisation'),
    /unknown study memorisation \(studies: canaries, memorization, term-counts, logit-lens, tuned-lens, heads, icl, token-curves, weights, attention\)/,
  );
});

test('rows inserted by column name: any order of keys; an unknown or a missing column is refused', async () => {
  const store = await ResultsStore.open(join(dir, 'r.duckdb'));
  try {
    await store.insertObjects('term_counts', [{ count: 7, step: 2, term: 'x', study: 's' }]);
    assert.deepEqual(await store.rows('SELECT study, term, step, count::INTEGER AS count FROM term_counts'), [
      { study: 's', term: 'x', step: 2, count: 7 },
    ]);
    await assert.rejects(
      store.insertObjects('term_counts', [{ study: 's', term: 'y', step: 2, count: 1, counts: 1 }]),
      /term_counts: no column counts/,
    );
    await assert.rejects(
      store.insertObjects('term_counts', [{ study: 's', term: 'y', step: 2 }]),
      /without a value for count/,
    );
  } finally {
    store.close();
  }
});
