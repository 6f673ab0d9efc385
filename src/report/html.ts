/**
 * The report page: one HTML file holding every chart twice, as a pre-rendered SVG (what a reader
 * without JavaScript sees) and as a Vega spec that the inlined Vega runtime turns into the
 * interactive view (tooltips, the size selector) in its place. No network, no external files.
 */
import { STUDIES, STUDY_NAMES, type StudyName } from '../results/studies.js';
import { attentionSection } from './attention-viewer.js';
import type { Chart, Section } from './charts.js';
import type { ModelInfo, ReportData, TrainingSummary } from './data.js';
import type { StageTimes, SuiteInfo } from './suite-manifest.js';

export interface RenderedChart {
  chart: Chart;
  /** The compiled Vega spec, or null when the chart has no data. */
  vega: unknown;
  svg: string | null;
}

export interface PageInput {
  title: string;
  database: string;
  suite: SuiteInfo | null;
  stages: StageTimes | null;
  data: ReportData;
  sections: { section: Section; charts: RenderedChart[] }[];
  vegaRuntime: string;
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** JSON inside a <script> element: no "</script" or "<!--" can appear. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

/** Gives a pre-rendered SVG's ids (clip paths, gradients) a per-chart prefix, so charts on one page cannot share them. */
function scopeSvgIds(svg: string, prefix: string): string {
  return svg.replace(/\bid="([^"]+)"/g, `id="${prefix}-$1"`).replace(/url\(#/g, `url(#${prefix}-`);
}

function number(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function duration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '–';
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(2)} h`;
}

function table(header: string[], rows: string[][], numericFrom = 1): string {
  const th = header.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows
    .map(
      (r) =>
        `<tr>${r.map((c, i) => `<td${i >= numericFrom ? ' class="num"' : ''}>${escapeHtml(c)}</td>`).join('')}</tr>`,
    )
    .join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function suiteTable(models: ModelInfo[], training: TrainingSummary[], suite: SuiteInfo | null): string {
  const names = [...new Set([...models.map((m) => m.model), ...training.map((t) => t.model)])];
  const rows = names.map((name) => {
    const m = models.find((x) => x.model === name);
    const t = training.find((x) => x.model === name);
    return [
      name,
      m?.run ?? 'baseline',
      number(m?.parameters),
      number(m?.nonEmbeddingParameters),
      m ? `${m.layers ?? '–'} × ${m.hiddenSize ?? '–'}, ${m.heads ?? '–'} heads` : '–',
      number(t?.lastStep ?? suite?.trainIters.get(name)),
      number(t?.tokens),
      duration(t?.trainSeconds ?? null),
      number(t?.finalLoss, 4),
      number(t?.finalValLoss, 4),
    ];
  });
  return table(
    [
      'model',
      'run',
      'parameters',
      'non-embedding parameters',
      'layers × width, heads',
      'steps',
      'tokens',
      'training time',
      'final loss',
      'final validation loss',
    ],
    rows,
    2,
  );
}

function dataOrder(suite: SuiteInfo | null): string {
  const order = suite?.dataOrder;
  if (!order) return '<p>Data order: no <code>suite.json</code> with batch hashes beside the database.</p>';
  return `<p class="hash">Data order (every size trained on these batches in this order): sha256 of the ${order.steps} per-step batch hashes
<code>${order.sha256}</code>; step 1 <code>${order.first.slice(0, 16)}…</code>, step ${order.steps} <code>${order.last.slice(0, 16)}…</code>.</p>`;
}

function stageTimes(times: StageTimes | null): string {
  if (!times) return '';
  const parts = times.stages.map((s) => `${s.stage} ${s.status === 'skipped' ? 'skipped' : duration(s.seconds)}`);
  const total = times.totalSeconds === null ? '' : `; ${duration(times.totalSeconds)} in all`;
  return `<p class="hash">Wall time of each stage of <code>pythia run</code> (<code>run.json</code>): ${escapeHtml(parts.join(', '))}${total}.</p>`;
}

function poissonTable(rows: Record<string, unknown>[]): string {
  if (rows.length === 0) return '';
  const fmt = (v: unknown, d: number) => number(v as number | null, d);
  return `<details><summary>Poisson statistics per (model, step, window size)</summary>
${table(
  ['model', 'step', 'window', 'windows', 'λ', 'dispersion', 'χ²', 'dof', 'p-value'],
  rows.map((r) => [
    String(r.model),
    fmt(r.step, 0),
    fmt(r.window_size, 0),
    fmt(r.windows, 0),
    fmt(r.mean, 3),
    fmt(r.dispersion, 3),
    fmt(r.chi2, 2),
    fmt(r.dof, 0),
    fmt(r.p_value, 4),
  ]),
)}</details>`;
}

function deltaTable(rows: Record<string, unknown>[]): string {
  if (rows.length === 0) return '';
  const fmt = (v: unknown, d: number) => number(v as number | null, d);
  return `<details><summary>Δ per (size, step, k): the table</summary>
${table(
  ['model', 'task', 'k (shots)', 'step', 'top 10% accuracy', 'bottom 10% accuracy', 'Δ', 'items'],
  rows.map((r) => [
    String(r.model),
    String(r.task),
    fmt(r.shots, 0),
    fmt(r.step, 0),
    fmt(r.top_accuracy, 3),
    fmt(r.bottom_accuracy, 3),
    fmt(r.delta, 3),
    fmt(r.items, 0),
  ]),
  2,
)}</details>`;
}

function figure(r: RenderedChart): string {
  const { chart } = r;
  const head = `<h3>${escapeHtml(chart.title)}</h3>\n<p class="how">${escapeHtml(chart.caption)}</p>`;
  if (r.svg === null) {
    return `<figure class="chart" id="${chart.id}" data-empty="true">\n${head}\n<div class="empty">${escapeHtml(chart.empty)}</div>\n</figure>`;
  }
  return `<figure class="chart" id="${chart.id}" data-spec="spec-${chart.id}" data-rendered="static">
${head}
<div class="view">${scopeSvgIds(r.svg, `static-${chart.id}`)}</div>
<script type="application/json" id="spec-${chart.id}">${scriptJson(r.vega)}</script>
</figure>`;
}

const STYLE = `
body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 0 auto; max-width: 1180px; padding: 0 24px 48px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; } h3 { margin: 0.2em 0; font-size: 1.05em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 3px 10px; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure.chart { margin: 1.5em 0; } p.how { color: #555; max-width: 900px; margin: 0.2em 0 0.6em; font-size: 0.92em; }
.empty { border: 1px dashed #bbb; color: #777; padding: 24px; max-width: 560px; text-align: center; font-style: italic; }
.view svg { max-width: 100%; height: auto; }
.vega-bindings { margin: 4px 0; font-size: 0.9em; }
code { font-size: 0.88em; word-break: break-all; } p.hash { font-size: 0.9em; }
details { margin: 0.8em 0; }
`;

/** Turns each figure's static SVG into the interactive Vega view; on failure the static SVG stays. */
const BOOT = `
(function () {
  document.querySelectorAll('figure[data-spec]').forEach(function (figure) {
    var holder = figure.querySelector('.view');
    var next = document.createElement('div');
    next.className = 'view';
    next.hidden = true;
    holder.after(next);
    try {
      var spec = JSON.parse(document.getElementById(figure.dataset.spec).textContent);
      var view = new vega.View(vega.parse(spec), { renderer: 'svg', container: next, hover: true });
      view.runAsync().then(function () {
        holder.remove();
        next.hidden = false;
        figure.dataset.rendered = 'interactive';
      }, function (e) {
        next.remove();
        console.error('chart ' + figure.id + ': ' + e);
      });
    } catch (e) {
      next.remove();
      console.error('chart ' + figure.id + ': ' + e);
    }
  });
})();
`;

/** The tables below a study's charts, for the studies that have one. */
const STUDY_TABLES: { readonly [K in StudyName]?: (data: ReportData) => string } = {
  memorization: (data) => poissonTable(data.studies.memorizationPoisson),
  'term-counts': (data) => deltaTable(data.studies.termDelta),
  attention: attentionSection,
};

export function buildPage(input: PageInput): string {
  const nav = [
    `<a href="#suite">Suite</a>`,
    ...input.sections.map((s) => `<a href="#${s.section.id}">${escapeHtml(s.section.title)}</a>`),
  ].join('');
  const sections = input.sections.map(({ section, charts }) => {
    const extra = STUDY_NAMES.filter((name) => STUDIES[name].report.section === section.id)
      .map((name) => STUDY_TABLES[name]?.(input.data) ?? '')
      .join('');
    return `<section id="${section.id}">\n<h2>${escapeHtml(section.title)}</h2>\n${charts.map(figure).join('\n')}\n${extra}\n</section>`;
  });
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(input.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(input.title)}</h1>
<p>Results database <code>${escapeHtml(input.database)}</code>${input.suite?.dataPrefix ? `; training data <code>${escapeHtml(input.suite.dataPrefix)}</code>` : ''}.
Every chart is a Vega-Lite spec drawn from that database; with JavaScript, hover for values and pick a size from the selector.</p>
${input.data.notes.map((n) => `<p class="how">${escapeHtml(n)}</p>`).join('\n')}
<nav>${nav}</nav>
<section id="suite">
<h2>Suite</h2>
${suiteTable(input.data.models, input.data.training, input.suite)}
<p class="how">Training time sums each logged step's tokens divided by its measured throughput (optimizer steps only, not checkpoint writing or validation); tokens are those seen by the last checkpoint.</p>
${dataOrder(input.suite)}
${stageTimes(input.stages)}
</section>
${sections.join('\n')}
<script>${input.vegaRuntime.replace(/<\/script/gi, '<\\/script')}</script>
<script>${BOOT}</script>
</body>
</html>
`;
}
