/**
 * `pythia report` end to end: a tiny suite and an intervention sibling trained, evaluated with the
 * case studies and reported through the real commands, the page checked in Node and in headless
 * Chromium.
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
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { svgToPng } from '../../src/report/render.js';
import { ResultsStore } from '../../src/results/store.js';
import { repoRoot } from '../support/paths.js';
import { chromiumMissing, launch, openReport } from './browser.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const ALL_CHARTS = [
  'logit-lens',
  'tuned-lens',
  'tuned-vs-logit-lens',
  'head-scores',
  'induction',
  'token-shares',
  'token-curves',
  'weight-changes',
  'loss',
  'accuracy',
  'perplexity',
  'final-accuracy',
  'canaries',
  'memorization-windows',
  'memorization-qq',
  'memorized-fraction',
  'term-frequency',
  'term-delta',
  'winobias',
  'crows-pairs',
];
/** Charts drawn from the case-study tables, and the tables. */
const CASE_STUDY_CHARTS = [
  'logit-lens',
  'tuned-lens',
  'tuned-vs-logit-lens',
  'head-scores',
  'induction',
  'token-shares',
  'token-curves',
  'weight-changes',
  'canaries',
  'memorization-windows',
  'memorization-qq',
  'memorized-fraction',
  'term-frequency',
  'term-delta',
];
const CASE_STUDY_TABLES = [
  'memorization',
  'memorization_windows',
  'memorization_poisson',
  'canary_memorization',
  'term_counts',
  'lens_layers',
  'head_scores',
  'icl_scores',
  'token_losses',
  'weight_stats',
  'weight_checkpoints',
];
let work: string;
let suite: string;

function pythia(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(...args: string[]): string {
  const r = pythia(...args);
  assert.equal(r.status, 0, `pythia ${args.join(' ')}\n${r.stderr}`);
  return r.stdout;
}

function chartIds(html: string, attribute: 'data-spec' | 'data-empty'): string[] {
  return [...html.matchAll(new RegExp(`<figure class="chart" id="([^"]+)" ${attribute}=`, 'g'))].map((m) => m[1]!);
}

before(() => {
  work = mkdtempSync(join(tmpdir(), 'pythia-report-'));
  suite = join(work, 'suite');
  const synth = join(work, 'synth');
  ok('synth', '--out', synth, '--tokens', '20000', '--vocab-size', '512');
  // 64 tokens per sample: room for memorization's 32-token prompt and 32-token continuation.
  ok(
    'suite',
    '--preset',
    'nano',
    '--models',
    'nano-25k',
    'nano-100k',
    '--data',
    join(synth, 'data/corpus_text_document'),
    '--vocab-file',
    join(synth, 'tokenizer.json'),
    '--out',
    suite,
    '--seq-length',
    '64',
    '--train-batch-size',
    '4',
    '--train-iters',
    '4',
    '--checkpoint-factor',
    '2',
    '--extra-save-iters',
    '0,1',
    '--eval-iters',
    '1',
    '--threads',
    '1',
  );
  ok(
    'eval',
    suite,
    '--limit',
    '12',
    '--threads',
    '1',
    '--memorization',
    '16',
    '--window',
    '4',
    '--canaries',
    '--term-counts',
    '--logit-lens',
    '--tuned-lens',
    '--tuned-lens-steps',
    '2',
    '--tuned-lens-tokens-per-step',
    '128',
    '--heads',
    '--icl',
    '--token-curves',
    '--weight-changes',
    '--held-out-rows',
    '4',
  );
  // The intervention sibling of nano-25k from step 2, named as its baseline's sibling, into the same database.
  const intervention = join(work, 'intervention');
  ok(
    'train',
    '--resume',
    join(suite, 'nano-25k/step2'),
    '--intervention',
    'pronoun-swap',
    '--out',
    intervention,
    '--threads',
    '1',
  );
  renameSync(join(intervention, 'nano-25k'), join(intervention, 'nano-25k-intervention'));
  ok(
    'eval',
    intervention,
    '--db',
    join(suite, 'results.duckdb'),
    '--task-dir',
    join(synth, 'tasks'),
    '--limit',
    '12',
    '--threads',
    '1',
  );
});

after(() => rmSync(work, { recursive: true, force: true }));

function figure(html: string, id: string): string {
  const start = html.indexOf(`<figure class="chart" id="${id}"`);
  return html.slice(start, html.indexOf('</figure>', start));
}

function specOf(html: string, id: string): { data: { values?: Record<string, unknown>[] }[] } {
  return JSON.parse(
    new RegExp(`<script type="application/json" id="spec-${id}">(.*?)</script>`, 's').exec(html)![1]!,
  ) as { data: { values?: Record<string, unknown>[] }[] };
}

test('pythia report writes one self-contained page: every chart as SVG and Vega spec with its data inline', () => {
  const out = ok('report', suite);
  const path = join(suite, 'report/index.html');
  assert.equal(out.trim(), path);
  const html = readFileSync(path, 'utf8');
  const drawn = chartIds(html, 'data-spec');
  assert.deepEqual(drawn.sort(), [...ALL_CHARTS].sort());
  // The paper's chart draws lm-eval's built-in tasks, which this suite was not evaluated on (test/report/paper.test.ts).
  assert.deepEqual(chartIds(html, 'data-empty'), ['paper-benchmarks']);
  for (const id of drawn) {
    assert.match(figure(html, id), /<div class="view"><svg [^>]*class="marks"/, `${id}: a pre-rendered SVG`);
    assert.match(figure(html, id), /<p class="how">[^<]+\.<\/p>/, `${id}: a sentence on how to read it`);
    assert.ok(
      specOf(html, id).data.some((d) => (d.values?.length ?? 0) > 0),
      `${id}: data inline in the spec`,
    );
  }
  // The intervention run is drawn beside its baseline, from the step it branched off (2).
  for (const id of ['winobias', 'crows-pairs']) {
    const rows = specOf(html, id)
      .data.flatMap((d) => d.values ?? [])
      .filter((r) => r.model === 'nano-25k-intervention');
    assert.deepEqual(
      rows.map((r) => [r.run, r.size, r.step]).sort(),
      [
        ['intervention', 'nano-25k', 2],
        ['intervention', 'nano-25k', 4],
      ],
      id,
    );
  }
  // The loss chart carries every logged loss and validation loss of both models.
  const logged = ['nano-25k', 'nano-100k'].flatMap((m) =>
    readFileSync(join(suite, m, 'log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => ({ model: m, ...(JSON.parse(l) as { step: number; loss?: number; val_loss?: number }) })),
  );
  const expected = logged.flatMap((l) => [
    ...(l.loss !== undefined ? [`${l.model} training ${l.step} ${l.loss}`] : []),
    ...(l.val_loss !== undefined ? [`${l.model} validation ${l.step} ${l.val_loss}`] : []),
  ]);
  const drawnLoss = specOf(html, 'loss')
    .data.flatMap((d) => d.values ?? [])
    .filter((v) => v.model !== 'nano-25k-intervention')
    .map((v) => `${v.model} ${v.series} ${v.step} ${v.loss}`);
  assert.deepEqual(drawnLoss.sort(), expected.sort());
  const ids = [...html.matchAll(/ id="([^"]+)"/g)].map((m) => m[1]!);
  assert.deepEqual(
    ids.filter((id, i) => ids.indexOf(id) !== i),
    [],
    'ids are unique (anchors, static SVG clip paths)',
  );
  // Self-contained: no external scripts, styles, images or fetches.
  assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=|<img[^>]+src=/);
  assert.doesNotMatch(html, /\b(src|href)="(https?:)?\/\//);
  assert.match(html, /vega/);
});

test('the suite table and the data-order hash come from suite.json and the training logs', () => {
  ok('report', suite);
  const html = readFileSync(join(suite, 'report/index.html'), 'utf8');
  const manifest = JSON.parse(readFileSync(join(suite, 'suite.json'), 'utf8')) as { batchSha256: string[] };
  const order = createHash('sha256').update(manifest.batchSha256.join('\n')).digest('hex');
  assert.ok(html.includes(order), 'data-order hash');
  assert.ok(html.includes(`${manifest.batchSha256[0]!.slice(0, 16)}…`), 'first batch hash');
  for (const model of ['nano-25k', 'nano-100k']) {
    const lines = readFileSync(join(suite, model, 'log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { step: number; loss?: number; val_loss?: number });
    const lastLoss = lines.filter((l) => l.loss !== undefined).at(-1)!.loss!;
    const lastVal = lines.filter((l) => l.val_loss !== undefined).at(-1)!.val_loss!;
    const row = new RegExp(`<tr><td>${model}</td>.*?</tr>`).exec(html)?.[0];
    assert.ok(row, model);
    assert.ok(row.includes(`>${lastLoss.toFixed(4)}<`), `${model} final loss ${lastLoss.toFixed(4)} in ${row}`);
    assert.ok(row.includes(`>${lastVal.toFixed(4)}<`), `${model} final validation loss`);
    assert.ok(row.includes('>4<'), `${model}: 4 steps`);
    assert.ok(row.includes('>1,024<'), `${model}: 4 steps × 4 sequences × 64 tokens`);
  }
});

test('the wall time of each stage of pythia run, from the run.json beside the suite', () => {
  // The record pythia run writes before drawing the report (src/pipeline/run.ts).
  const record = {
    out: work,
    stages: [
      { stage: 'synth', seconds: 0, status: 'skipped' },
      { stage: 'train', seconds: 95.25, status: 'done' },
      { stage: 'eval', seconds: 12.5, status: 'done' },
    ],
    totalSeconds: 107.75,
  };
  writeFileSync(join(work, 'run.json'), JSON.stringify(record));
  try {
    ok('report', suite, '--out', join(work, 'with-run'));
    const html = readFileSync(join(work, 'with-run/index.html'), 'utf8');
    assert.match(
      html,
      /Wall time of each stage of <code>pythia run<\/code> \(<code>run\.json<\/code>\): synth skipped, train 1\.6 min, eval 12\.5 s; 1\.8 min in all\./,
    );
    // A run.json that is not pythia run's record is passed over.
    writeFileSync(join(work, 'run.json'), '{"stages": "elsewhere"}');
    ok('report', suite, '--out', join(work, 'with-run'));
    assert.doesNotMatch(readFileSync(join(work, 'with-run/index.html'), 'utf8'), /Wall time of each stage/);
  } finally {
    rmSync(join(work, 'run.json'));
  }
});

test('--figures writes every drawn chart as SVG and as a PNG twice its size', () => {
  const figures = join(work, 'figures');
  ok('report', suite, '--out', join(work, 'page'), '--figures', figures);
  const html = readFileSync(join(work, 'page/index.html'), 'utf8');
  const drawn = chartIds(html, 'data-spec');
  assert.deepEqual(readdirSync(figures).sort(), drawn.flatMap((id) => [`${id}.png`, `${id}.svg`]).sort());
  for (const id of drawn) {
    const svg = readFileSync(join(figures, `${id}.svg`), 'utf8');
    const width = Number(/<svg[^>]* width="(\d+)"/.exec(svg)![1]);
    const height = Number(/<svg[^>]* height="(\d+)"/.exec(svg)![1]);
    assert.match(svg, /role-title-text/, `${id}: the figure carries its title`);
    const png = readFileSync(join(figures, `${id}.png`));
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${id}: PNG signature`);
    assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [2 * width, 2 * height], `${id}: PNG size`);
  }
});

/** Font files under the system font folders (resvg loads them for text in PNGs). */
function systemFonts(): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    if (!existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (/\.(ttf|otf|ttc)$/i.test(e.name)) found.push(join(dir, e.name));
    }
  };
  for (const dir of ['/usr/share/fonts', '/usr/local/share/fonts']) walk(dir);
  return found;
}

test('PNG figures carry their text (resvg with the system fonts)', (t) => {
  if (systemFonts().length === 0) return t.skip('no font files under /usr/share/fonts: PNG figures would have no text');
  if (!existsSync(join(work, 'figures/loss.svg')))
    ok('report', suite, '--out', join(work, 'page'), '--figures', join(work, 'figures'));
  const svg = readFileSync(join(work, 'figures/loss.svg'), 'utf8');
  const withText = svgToPng(svg);
  const withoutText = svgToPng(svg.replace(/<text\b[^>]*>[^<]*<\/text>/g, ''));
  assert.ok(svg.includes('<text'), 'the SVG has text');
  assert.notDeepEqual(withText, withoutText, 'removing the text changes the PNG');
});

test('the same database gives the same page, byte for byte', () => {
  ok('report', suite, '--out', join(work, 'again'));
  ok('report', suite, '--out', join(work, 'again2'));
  assert.deepEqual(readFileSync(join(work, 'again/index.html')), readFileSync(join(work, 'again2/index.html')));
});

test('user errors are one line: no suite folder, no results database, a broken suite.json, a file that is not a database', () => {
  const missing = pythia('report', join(work, 'nowhere'));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^pythia: .*nowhere: no such suite folder\n$/);
  const noDb = pythia('report', join(work, 'synth'));
  assert.equal(noDb.status, 1);
  assert.match(
    noDb.stderr,
    /^pythia: .*results\.duckdb: no results database; run `pythia eval .*` first, or name one with --db\n$/,
  );
  const broken = join(work, 'broken');
  mkdirSync(broken);
  writeFileSync(join(broken, 'suite.json'), '{"models": 3}');
  const badManifest = pythia(
    'report',
    broken,
    '--db',
    join(suite, 'results.duckdb'),
    '--out',
    join(work, 'broken-report'),
  );
  assert.equal(badManifest.status, 1);
  assert.match(badManifest.stderr, /^pythia: .*broken\/suite\.json: models: expected an array\n$/);
  writeFileSync(join(broken, 'not.duckdb'), 'not a database');
  const badDb = pythia('report', suite, '--db', join(broken, 'not.duckdb'), '--out', join(work, 'broken-report'));
  assert.equal(badDb.status, 1);
  assert.match(badDb.stderr, /^pythia: .*not\.duckdb: cannot open as a DuckDB results database/);
  assert.equal(badDb.stderr.trim().split('\n').length, 1);
});

test('in headless Chromium: every chart turns interactive with marks, no console error, no network request; the size selector filters', async (t) => {
  const missing = chromiumMissing();
  if (missing) return t.skip(missing);
  ok('report', suite);
  const html = join(suite, 'report/index.html');
  const browser = await launch();
  try {
    const screenshot = join(work, 'report.png');
    const { page, charts, errors, requests } = await openReport(browser, html, { screenshot });
    assert.deepEqual(errors, []);
    assert.deepEqual(requests, [pathToFileURL(html).href], 'the page itself and nothing else');
    for (const c of charts) {
      if (c.rendered === 'empty') assert.match(c.text, /^no data yet \(run pythia /, c.id);
      else {
        assert.equal(c.rendered, 'interactive', c.id);
        assert.ok(c.marks > 0, `${c.id}: marks in its SVG`);
        assert.equal(
          c.selector,
          c.id !== 'final-accuracy',
          `${c.id}: a size selector (final accuracy has sizes on its x axis)`,
        );
      }
    }
    assert.ok(existsSync(screenshot) && readFileSync(screenshot).subarray(1, 4).toString() === 'PNG');

    // Tooltips: hovering a point of the final-accuracy chart names its model and value.
    const point = await page.$('figure#final-accuracy .view svg g.mark-symbol.role-mark > path');
    assert.ok(point, 'a point to hover');
    await point.hover();
    await page.waitForFunction(
      "[...document.querySelectorAll('figure#final-accuracy .view, figure#final-accuracy .view *')].some((e) => /model: nano-/.test(e.getAttribute('title') ?? ''))",
      { timeout: 10_000 },
    );

    // The size selector: picking one size leaves fewer loss lines than 'all'.
    const lines = () => page.$$eval('figure#loss .view svg g.mark-line.role-mark > path', (p) => p.length);
    const before = await lines();
    await page.select('figure#loss select', 'nano-25k');
    await page.waitForFunction(
      `document.querySelectorAll('figure#loss .view svg g.mark-line.role-mark > path').length < ${before}`,
      { timeout: 10_000 },
    );
    assert.ok((await lines()) < before);
    await page.close();

    // Without JavaScript the pre-rendered SVGs are the charts.
    const still = await openReport(browser, html, { javascript: false });
    for (const c of still.charts.filter((x) => x.rendered !== 'empty')) {
      assert.equal(c.rendered, 'static', c.id);
      assert.ok(c.marks > 0, `${c.id}: marks in the static SVG`);
    }
    assert.deepEqual(still.errors, []);
  } finally {
    await browser.close();
  }
});

test('charts without rows wait with the command that fills them', async () => {
  const db = join(work, 'no-case-studies.duckdb');
  copyFileSync(join(suite, 'results.duckdb'), db);
  const store = await ResultsStore.open(db);
  try {
    for (const table of CASE_STUDY_TABLES) await store.connection.run(`DELETE FROM ${table}`);
  } finally {
    store.close();
  }
  ok('report', suite, '--db', db, '--out', join(work, 'waiting'));
  const html = readFileSync(join(work, 'waiting/index.html'), 'utf8');
  assert.deepEqual(chartIds(html, 'data-empty').sort(), [...CASE_STUDY_CHARTS, 'paper-benchmarks'].sort());
  for (const id of CASE_STUDY_CHARTS)
    assert.match(
      figure(html, id),
      /<div class="empty">no data yet \(run pythia eval &lt;suite&gt; --(memorization|canaries|term-counts|studies [a-z-]+)/,
      id,
    );
});
