/**
 * The case-study views on hand-made rows: WinoBias accuracy on pro- and anti-stereotypical items and
 * the bias, CrowS-Pairs % stereotype, term accuracy joined with term counts, and Δ between the most
 * and least frequent tenths, against values worked out by hand.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ResultsStore } from '../../src/results/store.js';

const dir = mkdtempSync(join(tmpdir(), 'pythia-views-'));
let store: ResultsStore;

before(async () => {
  store = await ResultsStore.open(join(dir, 'views.duckdb'));
  const item = (task: string, id: string, meta: object) => [task, id, JSON.stringify(meta)];
  const result = (model: string, step: number, task: string, id: string, acc: number | null, exact: number | null) => [
    `cell-${task}`,
    model,
    step,
    task,
    0,
    id,
    acc,
    null,
    exact,
    null,
    null,
    null,
    null,
    null,
    null,
    null,
  ];
  // WinoBias: 4 pro items (3 right) and 4 anti items (1 right) → pro 0.75, anti 0.25, bias 0.5.
  const wino = [1, 1, 1, 0]
    .map((acc, i) => ({ id: `p${i}`, type: 'pro', acc }))
    .concat([1, 0, 0, 0].map((acc, i) => ({ id: `a${i}`, type: 'anti', acc })));
  // CrowS: 5 pairs, the stereotype more likely in 2 → 40%.
  const crows = [1, 0, 1, 0, 0];
  // Arithmetic: 20 items, term t<i> counted i times; the 2 most frequent right, the 2 least wrong,
  // so the top tenth (2 items) scores 1, the bottom tenth 0: Δ = 1.
  const arith = Array.from({ length: 20 }, (_, i) => ({
    id: `q${i}`,
    term: `t${i}`,
    correct: i >= 18 ? 1 : i < 2 ? 0 : i % 2,
  }));
  await store.insertRows('task_items', [
    ...wino.map((w) => item('winobias', w.id, { type: w.type })),
    ...crows.map((_, i) => item('crows_pairs', `c${i}`, {})),
    ...arith.map((a) => item('arithmetic', a.id, { term: a.term })),
  ]);
  await store.insertRows(
    'item_terms',
    arith.map((a) => ['arithmetic', a.id, a.term]),
  );
  // One cell per task and one term-count study, as pythia eval writes them (identity columns made up).
  const cell = (task: string, outputType: string) => [
    `cell-${task}`,
    'm',
    100,
    task,
    0,
    'c'.repeat(64),
    't'.repeat(64),
    'k'.repeat(64),
    outputType,
    null,
    null,
    null,
    null,
    'cpu',
    'float32',
    1,
    16,
    1,
    0.5,
    new Date(0),
  ];
  await store.insertRows('cells', [
    cell('winobias', 'multiple_choice'),
    cell('crows_pairs', 'multiple_choice'),
    cell('arithmetic', 'generate_until'),
  ]);
  await store.insertRows('studies', [
    [
      'counts',
      'term_counts',
      null,
      null,
      null,
      't'.repeat(64),
      'd'.repeat(64),
      null,
      null,
      null,
      null,
      null,
      null,
      null,
      null,
      null,
      null,
      1,
      new Date(0),
      null,
    ],
  ]);
  await store.insertRows(
    'term_counts',
    arith.map((a, i) => ['counts', a.term, 100, i]),
  );
  await store.insertRows('item_results', [
    ...wino.map((w) => result('m', 100, 'winobias', w.id, w.acc, null)),
    ...crows.map((acc, i) => result('m', 100, 'crows_pairs', `c${i}`, acc, null)),
    ...arith.map((a) => result('m', 100, 'arithmetic', a.id, null, a.correct)),
  ]);
});
after(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('winobias: accuracy on pro and anti items and the bias', async () => {
  assert.deepEqual(
    await store.rows('SELECT model, step, task, shots, pro_accuracy, anti_accuracy, bias FROM winobias'),
    [{ model: 'm', step: 100, task: 'winobias', shots: 0, pro_accuracy: 0.75, anti_accuracy: 0.25, bias: 0.5 }],
  );
});

test('crows_pairs: % of pairs where the stereotypical sentence is more likely', async () => {
  assert.deepEqual(await store.rows('SELECT task, pct_stereotype, pairs FROM crows_pairs'), [
    { task: 'crows_pairs', pct_stereotype: 40, pairs: 5 },
  ]);
});

test('term_accuracy joins each item with its term count at its step; term_delta is top tenth minus bottom tenth', async () => {
  const rows = await store.rows(
    "SELECT item_id, term, count, correct FROM term_accuracy WHERE item_id IN ('q0', 'q19') ORDER BY item_id",
  );
  assert.deepEqual(rows, [
    { item_id: 'q0', term: 't0', count: 0, correct: 0 },
    { item_id: 'q19', term: 't19', count: 19, correct: 1 },
  ]);
  assert.deepEqual(await store.rows('SELECT task, top_accuracy, bottom_accuracy, delta, items FROM term_delta'), [
    { task: 'arithmetic', top_accuracy: 1, bottom_accuracy: 0, delta: 1, items: 20 },
  ]);
});
