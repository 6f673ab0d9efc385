/**
 * Reproducing the paper's appendix end to end through the commands: two Pythia-named models, each
 * at several step revisions in a hub cache laid out as huggingface_hub writes it, evaluated with
 * `pythia eval 'org/name@step*'` on built-in tasks (and a JSONL task) from a folder with no --db,
 * then drawn by `pythia report .`: the paper chart holds exactly the built-in tasks' acc rows the
 * evaluation printed, one panel per task in the paper's order, one line per model by size.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { saveCheckpoint } from '../../src/model/checkpoint.js';
import { buildSections } from '../../src/report/charts.js';
import { loadReportData } from '../../src/report/data.js';
import { ResultsStore } from '../../src/results/store.js';
import { golden } from '../eval/lm-eval-golden.js';
import { makeWorld, randomParams, writeJsonl, writeTasks } from '../eval/support.js';
import { repoRoot } from '../support/paths.js';
import { chromiumMissing, launch, openReport } from './browser.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'pythia-paper-'));
const cache = join(dir, 'hub');
const datasets = join(dir, 'datasets');
const work = join(dir, 'work');
const TINY = 'EleutherAI/pythia-tiny';
const SMALL = 'EleutherAI/pythia-small';

interface Row {
  model: string;
  step: number;
  task: string;
  shots: number;
  metric: string;
  value: number;
}
let evaluated: Row[];

function pythia(...args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd: work });
}

/** One revision of a hub model: its files as blobs by hash, the snapshot's relative links, the ref. */
function addRevision(id: string, step: number, files: string): void {
  const repo = join(cache, `models--${id.replace('/', '--')}`);
  const commit = createHash('sha1').update(`${id}@step${step}`).digest('hex');
  mkdirSync(join(repo, 'blobs'), { recursive: true });
  mkdirSync(join(repo, 'refs'), { recursive: true });
  mkdirSync(join(repo, 'snapshots', commit), { recursive: true });
  for (const name of readdirSync(files)) {
    const blob = createHash('sha256')
      .update(readFileSync(join(files, name)))
      .digest('hex');
    copyFileSync(join(files, name), join(repo, 'blobs', blob));
    symlinkSync(`../../blobs/${blob}`, join(repo, 'snapshots', commit, name));
  }
  writeFileSync(join(repo, 'refs', `step${step}`), commit);
}

before(async () => {
  const world = await makeWorld(dir);
  let seed = 1;
  for (const [id, hiddenSize, steps] of [
    [TINY, 32, [8, 0, 1]],
    [SMALL, 48, [0, 8]],
  ] as const) {
    const config = { ...world.config, hiddenSize };
    for (const step of steps) {
      const files = join(dir, 'written', `${id.replace('/', '--')}-${step}`);
      await saveCheckpoint(files, config, randomParams(config, seed++), { tokenizerPath: world.tokenizerPath });
      addRevision(id, step, files);
    }
  }
  for (const [split, docs] of Object.entries(golden.docs.piqa!))
    writeJsonl(join(datasets, 'baber', 'piqa', `${split}.jsonl`), docs);
  for (const [split, docs] of Object.entries(golden.docs.wsc273!))
    writeJsonl(join(datasets, 'lighteval', 'winograd_wsc', 'wsc273', `${split}.jsonl`), docs);
  writeFileSync(
    join(datasets, 'lighteval', 'winograd_wsc', 'README.md'),
    '---\nconfigs:\n- config_name: wsc273\n  data_files:\n  - split: test\n    path: wsc273/test.jsonl\n---\n',
  );
  writeTasks(dir);
  mkdirSync(work);
  const r = pythia(
    'eval',
    `${TINY}@step*`,
    `${SMALL}@step*`,
    '--tasks',
    'wsc273',
    'piqa',
    join(dir, 'tasks', 'choice.jsonl'),
    '--dataset-dir',
    datasets,
    '--cache-dir',
    cache,
    '--limit',
    '3',
    '--threads',
    '1',
    '--json',
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /results kept in \.\/results\.duckdb/);
  evaluated = JSON.parse(r.stdout) as Row[];
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('org/name@step* evaluates every cached step revision of each id, in step order', () => {
  const checkpoints = [...new Set(evaluated.map((r) => `${r.model}@${r.step}`))];
  assert.deepEqual(checkpoints, [`${SMALL}@0`, `${SMALL}@8`, `${TINY}@0`, `${TINY}@1`, `${TINY}@8`]);
});

function specOf(html: string, id: string): { data: { values?: Record<string, unknown>[] }[] } {
  return JSON.parse(
    new RegExp(`<script type="application/json" id="spec-${id}">(.*?)</script>`, 's').exec(html)![1]!,
  ) as { data: { values?: Record<string, unknown>[] }[] };
}

const key = (x: Readonly<Record<string, unknown>> | Row) => `${x.model} ${x.step} ${x.task} ${x.shots} ${x.value}`;

test("the paper chart: acc of the built-in tasks against step + 1 (log), a panel per task in the paper's order, a colour per size", async () => {
  const store = await ResultsStore.open(join(work, 'results.duckdb'), { readOnly: true });
  let data: Awaited<ReturnType<typeof loadReportData>>;
  try {
    data = await loadReportData(store);
  } finally {
    store.close();
  }
  const chart = buildSections(data)
    .flatMap((s) => s.charts)
    .find((c) => c.id === 'paper-benchmarks');
  assert.ok(chart?.spec, 'drawn');
  const spec = chart.spec as {
    data: { values: Record<string, unknown>[] };
    facet: { field: string; sort: string[] };
    spec: { encoding: Record<string, { field: string; scale?: { type?: string; domain?: unknown } }> };
  };
  // Every acc row of a built-in task the evaluation printed, and no other (not the JSONL task, not acc_norm).
  const expected = evaluated.filter((x) => x.metric === 'acc' && x.task !== 'choice').map(key);
  assert.equal(expected.length, 10, '5 checkpoints × 2 built-in tasks');
  assert.deepEqual(spec.data.values.map(key).sort(), expected.sort());
  // PIQA before WSC273, as in the paper (LAMBADA, PIQA, WinoGrande, WSC273, ARC-Easy, …), though asked the other way round.
  assert.deepEqual(spec.facet, { ...spec.facet, field: 'panel', sort: ['piqa', 'wsc273'] });
  const { x, color } = spec.spec.encoding;
  assert.deepEqual([x!.field, x!.scale?.type], ['step1', 'log']);
  assert.deepEqual([color!.field, color!.scale?.domain], ['size', [TINY, SMALL]], 'sizes by parameter count');
});

test('pythia report . draws it from ./results.duckdb, pre-rendered with its rows inline', () => {
  const r = pythia('report', '.');
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /paper-benchmarks/, 'not among the charts waiting for data');
  const html = readFileSync(join(work, 'report', 'index.html'), 'utf8');
  const start = html.indexOf('<figure class="chart" id="paper-benchmarks"');
  assert.ok(start >= 0);
  assert.match(html.slice(start, html.indexOf('</figure>', start)), /<div class="view"><svg [^>]*class="marks"/);
  const inline = specOf(html, 'paper-benchmarks').data.flatMap((d) => d.values ?? []);
  assert.equal(inline.length, 10);
});

test('in headless Chromium the paper chart turns interactive with its marks and no error', async (t) => {
  const missing = chromiumMissing();
  if (missing) return t.skip(missing);
  assert.equal(pythia('report', '.').status, 0);
  const browser = await launch();
  try {
    const { page, charts, errors } = await openReport(browser, join(work, 'report', 'index.html'));
    assert.deepEqual(errors, []);
    const chart = charts.find((c) => c.id === 'paper-benchmarks');
    assert.equal(chart?.rendered, 'interactive');
    assert.ok(chart.marks > 0);
    await page.close();
  } finally {
    await browser.close();
  }
});

test('--steps picks among the hub revisions a glob matched, and a step none of them has is refused in one line', () => {
  const common = ['--tasks', join(dir, 'tasks', 'choice.jsonl'), '--cache-dir', cache, '--limit', '2'];
  const r = pythia('eval', `${TINY}@step*`, ...common, '--steps', '0,8', '--db', 'steps.duckdb', '--json');
  assert.equal(r.status, 0, r.stderr);
  const checkpoints = [...new Set((JSON.parse(r.stdout) as Row[]).map((x) => `${x.model}@${x.step}`))];
  assert.deepEqual(checkpoints, [`${TINY}@0`, `${TINY}@8`]);
  const bad = pythia('eval', `${TINY}@step*`, ...common, '--steps', '0,5', '--db', 'bad.duckdb');
  assert.notEqual(bad.status, 0);
  assert.equal(bad.stderr.trim(), `pythia: --steps: 5 not among the revisions of ${TINY}@step* in the cache (0, 1, 8)`);
  assert.ok(!existsSync(join(work, 'bad.duckdb')), 'a refused run leaves no database');
});
