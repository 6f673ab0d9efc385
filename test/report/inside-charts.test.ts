/**
 * The "Inside the model" charts from hand-made rows of each study's report queries: each spec
 * carries exactly the rows it was given, compiles with Vega-Lite and renders in Node and in
 * headless Chromium without an error (the checkpoint slider and the parameter-group selector
 * redraw it), and no rows give the placeholder naming the command that fills them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type Chart, type ChartContext, sizeSelector } from '../../src/report/charts.js';
import type { ReportData, ScoreRow } from '../../src/report/data.js';
import { buildPage, type RenderedChart } from '../../src/report/html.js';
import {
  type HeadScoreRow,
  headCharts,
  type IclScoreRow,
  type IdenticalCheckpointRow,
  iclCharts,
  type LensLayerRow,
  logitLensCharts,
  type TokenLearningRow,
  type TokenLossRow,
  thresholdsSentence,
  tokenCurveCharts,
  tunedLensCharts,
  type WeightChangeRow,
  weightCharts,
} from '../../src/report/inside-charts.js';
import { renderSvg, toVega, vegaRuntime } from '../../src/report/render.js';
import { STUDIES, STUDY_NAMES } from '../../src/results/studies.js';
import { chromiumMissing, launch, openReport } from './browser.js';

const A = 'nano-a';
const B = 'nano-b';
const AI = 'nano-a-intervention';
const context: ChartContext = { models: [A, AI, B], sizes: [A, B], selector: sizeSelector([A, B]) };
const STEPS = [0, 1, 2, 4, 8, 16, 32];

function lensRow(model: string, layers: number, step: number, layer: number): LensLayerRow {
  const kl = ((layers - layer) * 2) / (1 + step / 4);
  return {
    model,
    size: model,
    run: 'baseline',
    step,
    layer,
    kl,
    ce: kl + 3,
    entropy: 2 + layer / 10,
    top1: 1 - kl / 10,
    kl_bpb: model === A ? kl / 3 : null,
    ce_bpb: model === A ? (kl + 3) / 3 : null,
  };
}

function lensRows(at: Record<string, number[]>, layers: Record<string, number>): LensLayerRow[] {
  return Object.entries(at).flatMap(([model, steps]) =>
    steps.flatMap((step) =>
      Array.from({ length: layers[model]! + 1 }, (_, layer) => lensRow(model, layers[model]!, step, layer)),
    ),
  );
}

// A has 2 blocks (layers 0, 1 and L = 2), B 3 blocks.
const LAYERS = { [A]: 2, [B]: 3 };
// A lone checkpoint outside a suite (step −1) has no place on a step axis.
const lone = lensRow(A, 2, -1, 0);
const logit = [lone, ...lensRows({ [A]: STEPS, [B]: STEPS }, LAYERS)];
const onSteps = logit.slice(1);
const tuned = lensRows({ [A]: [8, 32], [B]: [16] }, LAYERS).map((r) => ({ ...r, kl: r.kl / 2 }));

// A: 2 layers × 2 heads at steps 0, 8, 32; B: 3 layers × 2 heads at steps 8, 32.
const heads: HeadScoreRow[] = (
  [
    [A, 2, [0, 8, 32]],
    [B, 3, [8, 32]],
  ] as const
).flatMap(([model, layers, steps]) =>
  steps.flatMap((step) =>
    Array.from({ length: layers * 2 }, (_, i) => ({
      model,
      size: model,
      run: 'baseline',
      step,
      layer: Math.floor(i / 2),
      head: i % 2,
      previous_token: i === 0 ? 0.9 : 0.1,
      duplicate_token: 0.05 * i,
      induction: step === 32 && i === 3 ? 0.8 : 0.02 * i,
    })),
  ),
);

const icl: IclScoreRow[] = [
  ...[A, B].flatMap((model) =>
    [0, 8, 32].map((step) => ({
      model,
      size: model,
      run: 'baseline',
      step,
      induction_loss: 6 - step / 8,
      early_position: 50,
      late_position: 500,
      early_loss: 5,
      late_loss: 5 - step / 16,
      icl_score: -step / 16,
    })),
  ),
  {
    model: AI,
    size: A,
    run: 'intervention',
    step: 32,
    induction_loss: 2,
    early_position: 50,
    late_position: 500,
    early_loss: 5,
    late_loss: 3,
    icl_score: -2,
  },
];

function score(model: string, step: number, task: string, metric: string, value: number): ScoreRow {
  return {
    model,
    size: model,
    run: 'baseline',
    step,
    task,
    shots: 0,
    metric,
    value,
    stderr: 0.01,
    n: 500,
    parameters: 1e5,
  };
}
const lambadaAcc = [
  score(A, 0, 'lambada', 'acc', 0.05),
  score(A, 32, 'lambada', 'acc', 0.9),
  score(B, 32, 'lambada', 'acc', 0.1),
];
const scores: ScoreRow[] = [
  score(A, 0, 'arithmetic', 'acc', 0.2),
  lambadaAcc[0]!,
  score(A, 0, 'lambada', 'perplexity', 300),
  lambadaAcc[1]!,
  score(A, -1, 'lambada', 'acc', 0.5),
  lambadaAcc[2]!,
  score(A, 32, 'lambada_openai', 'acc', 0.3),
];

const learning: TokenLearningRow[] = [
  { model: A, size: A, run: 'baseline', category: 'learned', tokens: 60, share: 0.6, learned_ratio: 0.5 },
  { model: A, size: A, run: 'baseline', category: 'forgotten', tokens: 10, share: 0.1, learned_ratio: 0.5 },
  { model: A, size: A, run: 'baseline', category: 'never', tokens: 30, share: 0.3, learned_ratio: 0.5 },
  { model: B, size: B, run: 'baseline', category: 'learned', tokens: 70, share: 0.7, learned_ratio: 0.5 },
  { model: B, size: B, run: 'baseline', category: 'forgotten', tokens: 5, share: 0.05, learned_ratio: 0.5 },
  { model: B, size: B, run: 'baseline', category: 'never', tokens: 25, share: 0.25, learned_ratio: 0.5 },
];
const byStep: TokenLossRow[] = [A, B].flatMap((model, m) =>
  STEPS.map((step) => ({
    model,
    size: model,
    run: 'baseline',
    step,
    mean_loss: 6 - step / 10 - m,
    learned_share: step / 40,
  })),
);

// A has the whole model ('all') and per-group rows, B only 'all'; A's step 2 is identical to its step 1.
const changes: WeightChangeRow[] = [A, B].flatMap((model) =>
  (model === A ? ['all', 'embed', 'attn'] : ['all']).flatMap((param_group) =>
    [0, 1, 2, 4, 8].map((step, i, all) => ({
      model,
      size: model,
      run: 'baseline',
      step,
      param_group,
      norm: 10 + step,
      previous_step: i === 0 ? null : all[i - 1]!,
      relative_change: i === 0 ? null : model === A && step === 2 ? 0 : 1 / (step + 1),
      cosine: i === 0 ? null : 0.99,
    })),
  ),
);
const identical: IdenticalCheckpointRow[] = [A, B].flatMap((model) =>
  [0, 1, 2, 4, 8].map((step, i, all) => ({
    model,
    size: model,
    step,
    previous_step: i === 0 ? null : all[i - 1]!,
    weights_sha256: `${model}-${model === A && step === 2 ? 1 : step}`,
    identical: model === A && step === 2,
  })),
);
const THRESHOLDS = { learned: 0.5, forgotten: 0.5 };

function allCharts(): Chart[] {
  return [
    ...logitLensCharts(logit, context),
    ...tunedLensCharts(tuned, logit, context),
    ...headCharts(heads, context),
    ...iclCharts(icl, heads, scores, context),
    ...tokenCurveCharts(learning, byStep, THRESHOLDS, context),
    ...weightCharts(changes, identical, context),
  ];
}

type Spec = {
  data?: { values: unknown[] };
  layer?: Spec[];
  vconcat?: Spec[];
  hconcat?: Spec[];
  title?: { text: string };
};

function chart(id: string): Chart & { spec: Spec } {
  const found = allCharts().find((c) => c.id === id);
  assert.ok(found?.spec, `${id} drawn`);
  return found as Chart & { spec: Spec };
}

test('every chart has an id, a title, one sentence on how to read it, and its own id', () => {
  const charts = allCharts();
  assert.deepEqual(
    charts.map((c) => c.id),
    [
      'logit-lens',
      'tuned-lens',
      'tuned-vs-logit-lens',
      'head-scores',
      'induction',
      'token-shares',
      'token-curves',
      'weight-changes',
    ],
  );
  for (const c of charts) {
    assert.ok(c.title.length > 0 && c.spec !== null, c.id);
    assert.match(c.caption, /^[A-Z].*\.$/, `${c.id}: a caption`);
  }
});

test('the lens heatmaps carry exactly the rows given at suite steps (not step −1), in order; the comparison the last tuned step of each model', () => {
  assert.deepEqual(chart('logit-lens').spec.data!.values, onSteps);
  assert.deepEqual(chart('tuned-lens').spec.data!.values, tuned);
  const [tunedLayer, logitLayer] = chart('tuned-vs-logit-lens').spec.layer!;
  // A's last tuned step is 32, B's 16: every layer of each, tuned and logit at the same checkpoint.
  const expected = (rows: LensLayerRow[]) => rows.filter((r) => (r.model === A ? r.step === 32 : r.step === 16));
  assert.deepEqual(tunedLayer!.data!.values, expected(tuned));
  assert.deepEqual(logitLayer!.data!.values, expected(logit));
  assert.equal(tunedLayer!.data!.values.length, 3 + 4);
});

test('the head heatmaps, the token charts and the weight chart carry exactly the rows given', () => {
  assert.deepEqual(chart('head-scores').spec.data!.values, heads);
  assert.deepEqual(chart('token-shares').spec.data!.values, learning);
  assert.deepEqual(chart('token-curves').spec.data!.values, byStep);
  const [lines, rules] = chart('weight-changes').spec.layer!;
  assert.deepEqual(lines!.data!.values, changes);
  assert.deepEqual(rules!.data!.values, identical);
});

test("the induction chart: head scores, ICL rows and the LAMBADA tasks' accuracy at suite steps, one panel each", () => {
  const panels = chart('induction').spec.vconcat!;
  assert.deepEqual(
    panels.map((p) => p.title!.text),
    [
      'strongest induction head',
      'induction loss',
      'in-context-learning score',
      'lambada accuracy',
      'lambada_openai accuracy',
    ],
  );
  assert.deepEqual(panels[0]!.data!.values, heads);
  assert.deepEqual(panels[1]!.data!.values, icl);
  assert.deepEqual(panels[2]!.data!.values, icl);
  assert.deepEqual(panels[3]!.data!.values, lambadaAcc);
  assert.deepEqual(panels[4]!.data!.values, [scores[6]]);
  // Without LAMBADA rows, or without head scores, those panels are left out.
  const alone = iclCharts(icl, [], [], context)[0]!.spec as Spec;
  assert.deepEqual(
    alone.vconcat!.map((p) => p.title!.text),
    ['induction loss', 'in-context-learning score'],
  );
});

test("the token charts state the study's thresholds", () => {
  for (const id of ['token-shares', 'token-curves'])
    assert.ok(
      chart(id).caption.includes(
        'A token is learned: its loss falls below 0.5× its step-0 loss and stays there at every later checkpoint; forgotten: it fell below, then rose back above at a later checkpoint; never: neither.',
      ),
      id,
    );
  assert.match(thresholdsSentence({ learned: 0.5, forgotten: 0.8 }), /rose back above 0\.8× its step-0 loss/);
});

test('no rows: every chart waits with the command that fills it', () => {
  const charts = [
    ...logitLensCharts([lone], context),
    ...tunedLensCharts([], logit, context),
    ...headCharts([], context),
    ...iclCharts([], [], scores, context),
    ...tokenCurveCharts([], [], THRESHOLDS, context),
    ...weightCharts([], [], context),
  ];
  assert.deepEqual(
    charts.map((c) => [c.id, c.spec, c.empty]),
    [
      ['logit-lens', null, 'no data yet (run pythia eval <suite> --studies logit-lens)'],
      ['tuned-lens', null, 'no data yet (run pythia eval <suite> --studies tuned-lens)'],
      ['tuned-vs-logit-lens', null, 'no data yet (run pythia eval <suite> --studies tuned-lens,logit-lens)'],
      ['head-scores', null, 'no data yet (run pythia eval <suite> --studies heads)'],
      ['induction', null, 'no data yet (run pythia eval <suite> --studies icl,heads)'],
      ['token-shares', null, 'no data yet (run pythia eval <suite> --studies token-curves)'],
      ['token-curves', null, 'no data yet (run pythia eval <suite> --studies token-curves)'],
      ['weight-changes', null, 'no data yet (run pythia eval <suite> --studies weights)'],
    ],
  );
});

async function rendered(charts: Chart[]): Promise<RenderedChart[]> {
  const out: RenderedChart[] = [];
  for (const c of charts) {
    if (c.spec === null) out.push({ chart: c, vega: null, svg: null });
    else {
      const vega = toVega(c.spec);
      out.push({ chart: c, vega, svg: await renderSvg(vega) });
    }
  }
  return out;
}

/** Drawn marks of one kind (rect, line, symbol, rule) in a pre-rendered SVG. */
function svgMarks(svg: string, kind: string): number {
  const groups = [...svg.matchAll(new RegExp(`<g class="mark-${kind} role-mark[^"]*"[^>]*>(.*?)</g>`, 'gs'))];
  return groups.reduce((n, g) => n + [...g[1]!.matchAll(/<(path|line)\b/g)].length, 0);
}

test('every spec compiles with Vega-Lite and renders in Node; the heatmaps draw one cell per row at the shown checkpoint', async () => {
  const byId = new Map((await rendered(allCharts())).map((r) => [r.chart.id, r]));
  for (const [id, r] of byId) assert.match(r.svg!, /<svg[^>]*class="marks"/, id);
  assert.equal(svgMarks(byId.get('logit-lens')!.svg!, 'rect'), onSteps.length);
  assert.equal(svgMarks(byId.get('tuned-lens')!.svg!, 'rect'), tuned.length);
  // The slider starts at the last checkpoint (32): A's 2 × 2 heads and B's 3 × 2, three scores each.
  assert.equal(svgMarks(byId.get('head-scores')!.svg!, 'rect'), (4 + 6) * 3);
  assert.match(byId.get('head-scores')!.svg!, /nano-a · step 32/);
  // The weight chart starts at 'all', the whole model: A's and B's lines, and one rule for A's identical step 2.
  assert.equal(svgMarks(byId.get('weight-changes')!.svg!, 'line'), 2);
  assert.equal(svgMarks(byId.get('weight-changes')!.svg!, 'rule'), 1);
  // Three stacked bars per model.
  assert.equal(svgMarks(byId.get('token-shares')!.svg!, 'rect'), learning.length);
});

test('the lens cells tile the step axis: each starts where the previous checkpoint ends', async () => {
  const spec = chart('logit-lens').spec;
  // Only the first model's layer L, so the cells are one row of the heatmap.
  const single = { ...spec, data: { values: onSteps.filter((r) => r.model === A && r.layer === 2) } };
  const svg = await renderSvg(toVega(single));
  const cells = [...svg.matchAll(/aria-roledescription="rect mark" d="M([\d.]+),[\d.]+h([\d.]+)v/g)].map(
    (m) => [Number(m[1]), Number(m[2])] as const,
  );
  assert.equal(cells.length, STEPS.length);
  for (let i = 1; i < cells.length; i++)
    assert.ok(
      Math.abs(cells[i - 1]![0] + cells[i - 1]![1] - cells[i]![0]) < 0.01,
      `cell ${i} starts where ${i - 1} ends`,
    );
});

const work = mkdtempSync(join(tmpdir(), 'pythia-inside-charts-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('in headless Chromium every chart turns interactive with no error; the checkpoint slider and the group selector redraw', async (t) => {
  const missing = chromiumMissing();
  if (missing) return t.skip(missing);
  const data: ReportData = {
    models: [],
    loss: [],
    scores,
    training: [],
    // Every study's report rows empty: the page's own sections (the attention viewer) have none.
    studies: Object.fromEntries(
      STUDY_NAMES.flatMap((name) => Object.keys(STUDIES[name].report.queries)).map((query) => [query, []]),
    ) as unknown as ReportData['studies'],
    winobias: [],
    crows: [],
    notes: [],
  };
  // One chart waiting for its rows, under an id of its own (ids are unique on a page).
  const waiting = logitLensCharts([], context).map((c) => ({ ...c, id: 'logit-lens-waiting' }));
  const charts = await rendered([...allCharts(), ...waiting]);
  const html = join(work, 'index.html');
  writeFileSync(
    html,
    buildPage({
      title: 'inside',
      database: 'none',
      suite: null,
      stages: null,
      data,
      sections: [{ section: { id: 'inside', title: 'Inside the model', charts: charts.map((r) => r.chart) }, charts }],
      vegaRuntime: vegaRuntime(),
    }),
  );
  const browser = await launch();
  try {
    const { page, charts: states, errors } = await openReport(browser, html);
    assert.deepEqual(errors, []);
    for (const c of states.slice(0, -1)) {
      assert.equal(c.rendered, 'interactive', c.id);
      assert.ok(c.marks > 0, `${c.id}: marks`);
      assert.ok(c.selector, `${c.id}: a size selector`);
    }
    assert.deepEqual(states.at(-1), {
      id: 'logit-lens-waiting',
      rendered: 'empty',
      marks: 0,
      selector: false,
      text: 'no data yet (run pythia eval <suite> --studies logit-lens)',
    });

    const rects = (id: string) => page.$$eval(`figure#${id} .view svg g.mark-rect.role-mark > path`, (p) => p.length);
    assert.equal(await rects('head-scores'), 30);
    // The slider to the first checkpoint (step 0): only A has one, 2 × 2 heads, three scores.
    await page.$eval('figure#head-scores input[type=range]', (input) => {
      const range = input as unknown as { value: string; dispatchEvent(e: unknown): boolean };
      range.value = '0';
      range.dispatchEvent(new Event('input'));
    });
    await page.waitForFunction(
      "document.querySelectorAll('figure#head-scores .view svg g.mark-rect.role-mark > path').length === 12",
      { timeout: 10_000 },
    );
    assert.match(await page.$eval('figure#head-scores .view svg', (s) => s.textContent ?? ''), /nano-a · step 0/);
    // To the middle one (step 8): A and B both at 8.
    await page.$eval('figure#head-scores input[type=range]', (input) => {
      const range = input as unknown as { value: string; dispatchEvent(e: unknown): boolean };
      range.value = '1';
      range.dispatchEvent(new Event('input'));
    });
    await page.waitForFunction(
      "document.querySelectorAll('figure#head-scores .view svg g.mark-rect.role-mark > path').length === 30",
      { timeout: 10_000 },
    );

    // The parameter group: 'embed' is A's alone, one line instead of two.
    const lines = () => page.$$eval('figure#weight-changes .view svg g.mark-line.role-mark > path', (p) => p.length);
    assert.equal(await lines(), 2);
    const selects = await page.$$('figure#weight-changes select');
    assert.equal(selects.length, 2, 'size and parameter group');
    await selects[1]!.select('embed');
    await page.waitForFunction(
      "document.querySelectorAll('figure#weight-changes .view svg g.mark-line.role-mark > path').length === 1",
      { timeout: 10_000 },
    );
    await page.close();
  } finally {
    await browser.close();
  }
});
