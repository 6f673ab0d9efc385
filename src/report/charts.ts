/**
 * The report's charts as Vega-Lite specs, each with its data inline, a title, axis titles with
 * units, a legend and one sentence on how to read it. A chart whose rows are missing comes back
 * with `spec: null` and the command that fills it.
 */
import { BUILTIN_TASKS, TASK_GROUPS } from '../eval/lm-eval/tasks.js';
import {
  DEFAULT_STUDY_SETTINGS,
  STUDIES,
  STUDY_NAMES,
  type StudyDefinition,
  type StudyName,
} from '../results/studies.js';
import { ACCURACY_METRICS, type ReportData, type ScoreRow } from './data.js';
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
  tokenCurveCharts,
  tunedLensCharts,
  type WeightChangeRow,
  weightCharts,
} from './inside-charts.js';
import { poissonQQ, poissonQuantile } from './poisson.js';

export type VegaLiteSpec = Record<string, unknown>;

export interface Chart {
  id: string;
  title: string;
  /** One sentence on how to read the chart. */
  caption: string;
  spec: VegaLiteSpec | null;
  /** Shown in place of the chart when it has no rows. */
  empty: string;
}

export interface Section {
  id: string;
  title: string;
  charts: Chart[];
}

const SELECT = 'size_select';
export const STEP_LOG = 'step + 1 (optimizer steps, log scale)';
export const STEP = 'step (optimizer steps)';

export type Selector = { params: unknown[]; filter: unknown };

/** The size selector: a parameter bound to a drop-down, and the filter it drives. */
export function sizeSelector(sizes: readonly string[]): Selector {
  return {
    params: [{ name: SELECT, value: 'all', bind: { input: 'select', options: ['all', ...sizes], name: 'size ' } }],
    filter: { filter: `${SELECT} == 'all' || datum.size == ${SELECT}` },
  };
}

function modelColor(models: readonly string[]): unknown {
  return { field: 'model', type: 'nominal', title: 'model', sort: models, scale: { domain: models } };
}

export function sizeColor(sizes: readonly string[]): unknown {
  return { field: 'size', type: 'nominal', title: 'size', sort: sizes, scale: { domain: sizes } };
}

/** Dash legends draw their symbols as dark strokes (the default draws them in no colour). */
export const DASH_LEGEND = { symbolType: 'stroke', symbolStrokeColor: '#444', symbolStrokeWidth: 2 };
/** Baseline runs solid, intervention runs dashed; the legend lists only the runs the rows have. */
export function runDash(rows: readonly Record<string, unknown>[]): unknown {
  const runs = ['baseline', 'intervention'].filter((run) => rows.some((r) => (r.run ?? 'baseline') === run));
  const dashes: Record<string, number[]> = { baseline: [1, 0], intervention: [5, 3] };
  return {
    field: 'run',
    type: 'nominal',
    title: 'run',
    scale: { domain: runs, range: runs.map((r) => dashes[r]) },
    legend: DASH_LEGEND,
  };
}

export function panelLabel(r: { task: string; metric?: string; shots: number }): string {
  return [r.task, r.metric, r.shots > 0 ? `${r.shots}-shot` : null]
    .filter((s) => s !== null && s !== undefined)
    .join(' · ');
}

function withSize<T extends Record<string, unknown>>(
  rows: readonly T[],
  sizeOf: Map<string, string>,
): (T & { size: string })[] {
  return rows.map((r) => ({
    ...r,
    size: (r.size as string | undefined) ?? sizeOf.get(r.model as string) ?? (r.model as string),
  }));
}

export function empty(command: string): string {
  return `no data yet (run ${command})`;
}

/** The sections the case studies' charts go in (each study names its own in STUDIES). */
const STUDY_SECTIONS = [
  { id: 'memorization', title: 'Memorization' },
  { id: 'terms', title: 'Term frequency' },
  { id: 'inside', title: 'Inside the model' },
] as const satisfies readonly { id: StudyDefinition['report']['section']; title: string }[];

export interface ChartContext {
  models: string[];
  sizes: string[];
  selector: Selector;
}

/** Each case study's charts, over the rows of its report queries; one entry per study of STUDIES. */
const STUDY_CHARTS: { readonly [K in StudyName]: (data: ReportData, c: ChartContext) => Chart[] } = {
  canaries: (data, c) => [canaryChart(data, c.sizes, c.selector)],
  memorization: (data, c) => [
    windowsChart(data, c.models, c.sizes, c.selector),
    qqChart(data, c.sizes, c.selector),
    memorizedFractionChart(data, c.sizes, c.selector),
  ],
  'term-counts': (data, c) => [termChart(data, c.selector), deltaChart(data, c.sizes, c.selector)],
  'logit-lens': (data, c) => logitLensCharts(data.studies.lensLayers as unknown as LensLayerRow[], c),
  'token-curves': (data, c) => {
    const learning = data.studies.tokenLearning as unknown as TokenLearningRow[];
    const ratio = learning[0]?.learned_ratio ?? DEFAULT_STUDY_SETTINGS.learnedRatio;
    return tokenCurveCharts(
      learning,
      data.studies.tokenLossByStep as unknown as TokenLossRow[],
      { learned: ratio, forgotten: ratio },
      c,
    );
  },
  weights: (data, c) =>
    weightCharts(
      data.studies.weightChanges as unknown as WeightChangeRow[],
      data.studies.identicalCheckpoints as unknown as IdenticalCheckpointRow[],
      c,
    ),
  // The attention viewer is no chart: html.ts puts attention-viewer.ts's section in its place.
  attention: () => [],
  heads: (data, c) => headCharts(data.studies.headScores as unknown as HeadScoreRow[], c),
  icl: (data, c) =>
    iclCharts(
      data.studies.iclScores as unknown as IclScoreRow[],
      data.studies.headScores as unknown as HeadScoreRow[],
      data.scores,
      c,
    ),
  'tuned-lens': (data, c) =>
    tunedLensCharts(
      data.studies.tunedLensLayers as unknown as LensLayerRow[],
      data.studies.lensLayers as unknown as LensLayerRow[],
      c,
    ),
};

export function buildSections(data: ReportData): Section[] {
  const models = data.models.map((m) => m.model);
  const sizes = [...new Set(data.models.map((m) => m.size))];
  const sizeOf = new Map(data.models.map((m) => [m.model, m.size]));
  const selector = sizeSelector(sizes);
  return [
    { id: 'training', title: 'Training', charts: [lossChart(data, models, sizeOf, selector)] },
    {
      id: 'benchmarks',
      title: 'Benchmarks',
      charts: [
        accuracyChart(data.scores, models, selector),
        paperChart(data.scores, sizes, selector),
        otherMetricsChart(data.scores, models, selector),
        finalAccuracyChart(data.scores),
      ],
    },
    ...STUDY_SECTIONS.map((section) => ({
      ...section,
      charts: STUDY_NAMES.filter((name) => STUDIES[name].report.section === section.id).flatMap((name) =>
        STUDY_CHARTS[name](data, { models, sizes, selector }),
      ),
    })),
    {
      id: 'bias',
      title: 'Gender bias',
      charts: [winobiasChart(data, sizes, selector), crowsChart(data, sizes, selector)],
    },
  ];
}

function lossChart(data: ReportData, models: string[], sizeOf: Map<string, string>, selector: Selector): Chart {
  const chart = {
    id: 'loss',
    title: 'Training and validation loss against step',
    caption:
      "Each line is one model: solid the training loss of each step's batch, dashed the held-out validation loss at its checkpoints; " +
      'lower is better, and larger models should end lower. The x axis is step + 1 on a log scale, so step 0 (the initialisation) sits at 1.',
    empty: empty('pythia eval <suite>, which loads every <model>/log.jsonl'),
  };
  if (data.loss.length === 0) return { ...chart, spec: null };
  return {
    ...chart,
    spec: {
      data: { values: withSize(data.loss as unknown as Record<string, unknown>[], sizeOf) },
      params: selector.params,
      transform: [selector.filter, { calculate: 'datum.step + 1', as: 'step1' }],
      width: 560,
      height: 300,
      mark: { type: 'line', strokeWidth: 1.5, point: { size: 30, opacity: 0, filled: false } },
      encoding: {
        x: { field: 'step1', type: 'quantitative', scale: { type: 'log', nice: false }, title: STEP_LOG },
        y: {
          field: 'loss',
          type: 'quantitative',
          scale: { zero: false },
          title: 'cross-entropy loss (nats per token)',
        },
        color: modelColor(models),
        strokeDash: {
          field: 'series',
          type: 'nominal',
          title: 'loss',
          scale: {
            domain: ['training', 'validation'],
            range: [
              [1, 0],
              [4, 2],
            ],
          },
          legend: DASH_LEGEND,
        },
        tooltip: [
          { field: 'model' },
          { field: 'series' },
          { field: 'step', type: 'quantitative' },
          { field: 'loss', type: 'quantitative', format: '.4f' },
        ],
      },
    },
  };
}

function scoreTooltip(): unknown[] {
  return [
    { field: 'model' },
    { field: 'task' },
    { field: 'metric' },
    { field: 'shots', type: 'quantitative' },
    { field: 'step', type: 'quantitative' },
    { field: 'value', type: 'quantitative', format: '.4f' },
    { field: 'stderr', type: 'quantitative', format: '.4f', title: 'standard error' },
    { field: 'n', type: 'quantitative', title: 'items' },
  ];
}

/**
 * Lines against step + 1 on a log x axis, one panel per `panel` value in `panels`' order, each
 * panel with its own y scale; `encoding` gives y, colour and the rest.
 */
function stepPanels(
  values: readonly Record<string, unknown>[],
  panels: readonly string[],
  selector: Selector,
  layout: { columns: number; width: number },
  encoding: Record<string, unknown>,
): VegaLiteSpec {
  return {
    data: { values },
    params: selector.params,
    transform: [selector.filter, { calculate: 'datum.step + 1', as: 'step1' }],
    facet: {
      field: 'panel',
      type: 'nominal',
      title: null,
      sort: panels,
      header: { labelFontSize: 12, labelFontWeight: 'bold' },
    },
    columns: Math.min(layout.columns, panels.length),
    resolve: { scale: { y: 'independent' }, axis: { x: 'independent' } },
    spec: {
      width: layout.width,
      height: 150,
      mark: { type: 'line', point: { size: 20 } },
      encoding: {
        x: { field: 'step1', type: 'quantitative', scale: { type: 'log', nice: false }, title: STEP_LOG },
        ...encoding,
      },
    },
  };
}

function metricPanels(
  rows: readonly ScoreRow[],
  models: string[],
  selector: Selector,
  logY: boolean,
  yTitle: string,
): VegaLiteSpec {
  const values = rows.map((r) => ({ ...r, panel: panelLabel(r) }));
  const panels = [...new Set(values.map((v) => v.panel))];
  return stepPanels(
    values,
    panels,
    selector,
    { columns: 3, width: 220 },
    {
      y: {
        field: 'value',
        type: 'quantitative',
        scale: logY ? { type: 'log' } : { domain: { unionWith: [0, 0.05] } },
        title: yTitle,
      },
      color: modelColor(models),
      tooltip: scoreTooltip(),
    },
  );
}

// Checkpoints outside a suite (a lone folder, a hub snapshot) are step −1: they have no place on a step axis.
function accuracyChart(scores: readonly ScoreRow[], models: string[], selector: Selector): Chart {
  const rows = scores.filter((r) => ACCURACY_METRICS.includes(r.metric) && r.step >= 0);
  return {
    id: 'accuracy',
    title: 'Benchmark accuracy against step',
    caption:
      'One panel per task and metric (acc, acc_norm, exact_match); each line is one model across its checkpoints, with the x axis step + 1 on a log scale; ' +
      'a line that leaves chance (0.5 for two choices, 0 for generation) is where the model learned the task.',
    empty: empty('pythia eval <suite>'),
    spec: rows.length === 0 ? null : metricPanels(rows, models, selector, false, 'accuracy (fraction)'),
  };
}

/** lm-eval's built-in tasks with an accuracy, the paper's first and in its order, then the rest by name. */
const PAPER_ORDER: readonly string[] = [
  ...TASK_GROUPS.pythia!,
  ...BUILTIN_TASKS.map((t) => t.task).filter((t) => !TASK_GROUPS.pythia!.includes(t)),
];

/**
 * The Pythia paper's appendix figures: `acc` of lm-eval's built-in tasks against step, one panel per
 * task (and number of shots), one line per model coloured by its size. Rows are picked by lm-eval's
 * task names, which only built-in tasks carry unless a task file was named after one.
 */
function paperChart(scores: readonly ScoreRow[], sizes: string[], selector: Selector): Chart {
  const rows = scores
    .filter((r) => r.metric === 'acc' && r.step >= 0 && PAPER_ORDER.includes(r.task))
    .map((r) => ({ ...r, panel: panelLabel({ task: r.task, shots: r.shots }) }));
  const panels = [...new Set(rows.map((r) => r.panel))].sort((a, b) => {
    const [x, y] = [rows.find((r) => r.panel === a)!, rows.find((r) => r.panel === b)!];
    return PAPER_ORDER.indexOf(x.task) - PAPER_ORDER.indexOf(y.task) || x.shots - y.shots;
  });
  return {
    id: 'paper-benchmarks',
    title: "The Pythia paper's benchmarks against step (lm-eval's tasks, acc)",
    caption:
      "As the paper's appendix draws them: one panel per lm-eval task (and number of shots), one line per model coloured by its size (dashed for intervention runs), " +
      'accuracy on the y axis and step + 1 on a log x axis; larger models should rise earlier and end higher.',
    empty: empty("pythia eval 'EleutherAI/pythia-160m@step*' --tasks pythia, or pythia eval <suite> --tasks pythia"),
    spec:
      rows.length === 0
        ? null
        : stepPanels(
            rows,
            panels,
            selector,
            { columns: 4, width: 200 },
            {
              y: { field: 'value', type: 'quantitative', scale: { zero: false }, title: 'accuracy (fraction)' },
              color: sizeColor(sizes),
              strokeDash: runDash(rows),
              detail: { field: 'model' },
              tooltip: scoreTooltip(),
            },
          ),
  };
}

function otherMetricsChart(scores: readonly ScoreRow[], models: string[], selector: Selector): Chart {
  const rows = scores.filter((r) => !ACCURACY_METRICS.includes(r.metric) && r.value > 0 && r.step >= 0);
  return {
    id: 'perplexity',
    title: 'Perplexity against step',
    caption:
      'Perplexity-like metrics (LAMBADA-style perplexity, rolling word and byte perplexity, bits per byte) on log y axes, one panel per task and metric; ' +
      'lower is better, and the x axis is step + 1 on a log scale.',
    empty: empty('pythia eval <suite> with a loglikelihood or loglikelihood_rolling task'),
    spec: rows.length === 0 ? null : metricPanels(rows, models, selector, true, 'value (log scale)'),
  };
}

function finalAccuracyChart(scores: readonly ScoreRow[]): Chart {
  const lastStep = new Map<string, number>();
  for (const r of scores) lastStep.set(r.model, Math.max(lastStep.get(r.model) ?? -1, r.step));
  const rows = scores
    .filter(
      (r) =>
        ACCURACY_METRICS.includes(r.metric) &&
        r.run === 'baseline' &&
        r.parameters !== null &&
        r.step === lastStep.get(r.model),
    )
    .map((r) => ({ ...r, panel: panelLabel(r), low: r.value - (r.stderr ?? 0), high: r.value + (r.stderr ?? 0) }));
  const panels = [...new Set(rows.map((r) => r.panel))];
  const color = { field: 'panel', type: 'nominal', title: 'task · metric', sort: panels, legend: { labelLimit: 320 } };
  return {
    id: 'final-accuracy',
    title: 'Final accuracy against parameter count',
    caption:
      "Each line is one task and metric at every model's last evaluated checkpoint, with ± one standard error bars; " +
      'a rising line means the task improves with scale (x: total parameters, embeddings included, log scale).',
    empty: empty('pythia eval <suite>'),
    spec:
      rows.length === 0
        ? null
        : {
            data: { values: rows },
            width: 560,
            height: 300,
            encoding: {
              x: {
                field: 'parameters',
                type: 'quantitative',
                scale: { type: 'log', nice: false, padding: 20 },
                axis: { format: '~s' },
                title: 'parameters (count, log scale; k = thousand, M = million)',
              },
              color,
            },
            layer: [
              {
                mark: { type: 'rule' },
                encoding: { y: { field: 'low', type: 'quantitative' }, y2: { field: 'high' } },
              },
              {
                mark: { type: 'line', point: { size: 30 } },
                encoding: {
                  y: { field: 'value', type: 'quantitative', title: 'final accuracy (fraction of items)' },
                  tooltip: scoreTooltip(),
                },
              },
            ],
          },
  };
}

function canaryChart(data: ReportData, sizes: string[], selector: Selector): Chart {
  const rows = data.studies.canaries.filter((r) => r.run !== 'intervention');
  return {
    id: 'canaries',
    title: 'Canary memorization against duplication count',
    caption:
      'Each line is one model at its last checkpoint: the fraction of planted canaries it reproduces exactly, by how many times each canary appears in the corpus (log scale); ' +
      'memorization should rise with duplication, and faster for larger models.',
    empty: empty('pythia eval <suite> --canaries, on a suite trained on the synthetic corpus'),
    spec:
      rows.length === 0
        ? null
        : {
            data: { values: rows },
            params: selector.params,
            transform: [selector.filter],
            width: 560,
            height: 280,
            mark: { type: 'line', point: { size: 40 } },
            encoding: {
              x: {
                field: 'duplicates',
                type: 'quantitative',
                scale: { type: 'log', base: 2 },
                title: 'copies of the canary in the corpus (count, log scale)',
              },
              y: {
                field: 'memorized_fraction',
                type: 'quantitative',
                scale: { domain: [0, 1] },
                title: 'canaries memorized (fraction)',
              },
              color: sizeColor(sizes),
              tooltip: [
                { field: 'model' },
                { field: 'step', type: 'quantitative' },
                { field: 'duplicates', type: 'quantitative' },
                { field: 'memorized_fraction', type: 'quantitative', format: '.3f', title: 'memorized' },
                { field: 'mean_score', type: 'quantitative', format: '.3f', title: 'mean score' },
                { field: 'canaries', type: 'quantitative' },
              ],
            },
          },
  };
}

/** Windows per model with λ and the central 95% range of a Poisson of that λ. */
function windowsWithFit(data: ReportData): Record<string, unknown>[] {
  const byModel = new Map<string, Record<string, unknown>[]>();
  for (const r of data.studies.memorizationWindows)
    byModel.set(r.model as string, [...(byModel.get(r.model as string) ?? []), r]);
  const out: Record<string, unknown>[] = [];
  for (const rows of byModel.values()) {
    const lambda = rows.reduce((a, r) => a + (r.memorized as number), 0) / rows.length;
    const low = poissonQuantile(0.025, lambda);
    const high = poissonQuantile(0.975, lambda);
    for (const r of rows) out.push({ ...r, lambda, low, high });
  }
  return out;
}

function windowsChart(data: ReportData, models: string[], sizes: string[], selector: Selector): Chart {
  const rows = windowsWithFit(data);
  return {
    id: 'memorization-windows',
    title: 'Memorized sequences per window of training order',
    caption:
      "Bars count the memorized sequences in each window of consecutive training samples (x: the first sample index of the window) at each model's last scored checkpoint; " +
      'the line is the mean λ and the band the central 95% of a Poisson(λ), so bars scattered inside the band with no trend mean memorization is spread over training like a Poisson process.',
    empty: empty('pythia eval <suite> --memorization 1024'),
    spec:
      rows.length === 0
        ? null
        : {
            data: { values: rows },
            params: selector.params,
            transform: [selector.filter],
            facet: { row: { field: 'model', type: 'nominal', title: null, sort: models } },
            resolve: { scale: { y: 'independent' } },
            spec: {
              width: 560,
              height: 130,
              encoding: {
                x: {
                  field: 'first_index',
                  type: 'quantitative',
                  title: 'training sample index at the window start (samples)',
                },
              },
              layer: [
                {
                  mark: { type: 'area', opacity: 0.15, color: '#4c78a8' },
                  encoding: { y: { field: 'low', type: 'quantitative' }, y2: { field: 'high' } },
                },
                {
                  mark: { type: 'bar', width: { band: 1 } },
                  encoding: {
                    y: { field: 'memorized', type: 'quantitative', title: 'memorized (count)' },
                    color: sizeColor(sizes),
                    tooltip: [
                      { field: 'model' },
                      { field: 'step', type: 'quantitative' },
                      { field: 'window_index', type: 'quantitative', title: 'window' },
                      { field: 'first_index', type: 'quantitative', title: 'first sample' },
                      { field: 'scored', type: 'quantitative', title: 'sequences scored' },
                      { field: 'memorized', type: 'quantitative' },
                      { field: 'lambda', type: 'quantitative', format: '.3f', title: 'λ' },
                    ],
                  },
                },
                {
                  mark: { type: 'line', color: 'black', strokeDash: [4, 2] },
                  encoding: { y: { field: 'lambda', type: 'quantitative' } },
                },
              ],
            },
          },
  };
}

function qqChart(data: ReportData, sizes: string[], selector: Selector): Chart {
  const byModel = new Map<string, number[]>();
  for (const r of data.studies.memorizationWindows)
    byModel.set(r.model as string, [...(byModel.get(r.model as string) ?? []), r.memorized as number]);
  const points: Record<string, unknown>[] = [];
  for (const [model, counts] of byModel) {
    const { lambda, pairs } = poissonQQ(counts);
    const size = data.models.find((m) => m.model === model)?.size ?? model;
    for (const p of pairs) points.push({ model, size, lambda, ...p });
  }
  const top = Math.max(1, ...points.map((p) => Math.max(p.expected as number, p.observed as number)));
  return {
    id: 'memorization-qq',
    title: 'Quantile–quantile plot of memorized counts per window against a Poisson',
    caption:
      "Each point pairs a sorted window count with the same quantile of a Poisson of the windows' mean λ; " +
      'points on the diagonal mean the counts follow a Poisson distribution, and points above it at the top mean more clumping than Poisson.',
    empty: empty('pythia eval <suite> --memorization 1024'),
    spec:
      points.length === 0
        ? null
        : {
            params: selector.params,
            width: 360,
            height: 360,
            layer: [
              {
                data: { values: [{ v: 0 }, { v: top }] },
                mark: { type: 'line', color: 'gray', strokeDash: [4, 2] },
                encoding: { x: { field: 'v', type: 'quantitative' }, y: { field: 'v', type: 'quantitative' } },
              },
              {
                data: { values: points },
                transform: [selector.filter],
                mark: { type: 'point', filled: true, size: 40, opacity: 0.7 },
                encoding: {
                  x: {
                    field: 'expected',
                    type: 'quantitative',
                    title: 'Poisson(λ) quantile (memorized sequences per window)',
                  },
                  y: {
                    field: 'observed',
                    type: 'quantitative',
                    title: 'observed count (memorized sequences per window)',
                  },
                  color: sizeColor(sizes),
                  tooltip: [
                    { field: 'model' },
                    { field: 'expected', type: 'quantitative' },
                    { field: 'observed', type: 'quantitative' },
                    { field: 'lambda', type: 'quantitative', format: '.3f', title: 'λ' },
                  ],
                },
              },
            ],
          },
  };
}

function memorizedFractionChart(data: ReportData, sizes: string[], selector: Selector): Chart {
  const rows = data.studies.memorizedFraction;
  return {
    id: 'memorized-fraction',
    title: 'Memorized fraction against step',
    caption:
      'Each line is one model: the fraction of the sampled training sequences (among those trained on before the checkpoint) that it reproduces exactly; ' +
      'dashed lines are intervention runs. A rising line means the model memorizes more as it trains.',
    empty: empty('pythia eval <suite> --memorization 1024'),
    spec:
      rows.length === 0
        ? null
        : {
            data: { values: rows },
            params: selector.params,
            transform: [selector.filter],
            width: 560,
            height: 280,
            mark: { type: 'line', point: { size: 30, filled: false } },
            encoding: {
              x: { field: 'step', type: 'quantitative', title: STEP },
              y: { field: 'fraction', type: 'quantitative', title: 'memorized (fraction of sequences scored)' },
              color: sizeColor(sizes),
              strokeDash: runDash(rows),
              detail: { field: 'model' },
              tooltip: [
                { field: 'model' },
                { field: 'step', type: 'quantitative' },
                { field: 'fraction', type: 'quantitative', format: '.4f' },
                { field: 'memorized', type: 'quantitative' },
                { field: 'scored', type: 'quantitative' },
              ],
            },
          },
  };
}

function termChart(data: ReportData, selector: Selector): Chart {
  const rows = data.studies.termBins.map((r) => ({ ...r, panel: panelLabel(r as { task: string; shots: number }) }));
  const models = data.models.map((m) => m.model).filter((m) => data.studies.termBins.some((r) => r.model === m));
  return {
    id: 'term-frequency',
    title: 'Accuracy against log term frequency',
    caption:
      'One panel per model (columns) and task (rows): items are binned by how often their key term (the first operand, the QA entity) occurred in the tokens the checkpoint trained on, ' +
      'binned by half a decade, and each line is one checkpoint (darker is later); a line rising to the right means frequent terms are answered better, as Razeghi et al. found.',
    empty: empty('pythia eval <suite> --term-counts, with tasks whose items name a key term'),
    spec:
      rows.length === 0
        ? null
        : {
            data: { values: rows },
            params: selector.params,
            transform: [selector.filter],
            facet: {
              column: { field: 'model', type: 'nominal', title: null, sort: models },
              row: { field: 'panel', type: 'nominal', title: null },
            },
            spec: {
              width: 170,
              height: 140,
              mark: { type: 'line', point: { size: 20 } },
              encoding: {
                x: { field: 'log_count', type: 'quantitative', title: 'log10(1 + term count)' },
                y: { field: 'accuracy', type: 'quantitative', scale: { domain: [0, 1] }, title: 'accuracy (fraction)' },
                color: {
                  field: 'step',
                  type: 'ordinal',
                  title: 'checkpoint step',
                  scale: { scheme: 'viridis', reverse: true },
                },
                tooltip: [
                  { field: 'model' },
                  { field: 'step', type: 'quantitative' },
                  { field: 'task' },
                  { field: 'shots', type: 'quantitative' },
                  { field: 'log_count', type: 'quantitative', title: 'bin centre (log10)' },
                  { field: 'accuracy', type: 'quantitative', format: '.3f' },
                  { field: 'items', type: 'quantitative' },
                ],
              },
            },
          },
  };
}

function deltaChart(data: ReportData, sizes: string[], selector: Selector): Chart {
  const rows = data.studies.termDelta
    .filter((r) => r.delta !== null)
    .map((r) => ({ ...r, panel: panelLabel(r as { task: string; shots: number }) }));
  return {
    id: 'term-delta',
    title: 'Δ, the accuracy gap between frequent and rare terms, against step',
    caption:
      'Δ is the accuracy on items whose term is among the 10% most frequent minus the 10% least frequent, one panel per task and number of shots k; ' +
      'a line above zero that grows with step or with size means the frequency effect strengthens (the table below lists every value).',
    empty: empty('pythia eval <suite> --term-counts, with tasks whose items name a key term'),
    spec:
      rows.length === 0
        ? null
        : {
            data: { values: rows },
            params: selector.params,
            transform: [selector.filter],
            facet: { field: 'panel', type: 'nominal', title: null },
            columns: 3,
            resolve: { axis: { x: 'independent' } },
            spec: {
              width: 220,
              height: 160,
              layer: [
                { mark: { type: 'rule', color: 'gray' }, encoding: { y: { datum: 0 } } },
                {
                  mark: { type: 'line', point: { size: 20 } },
                  encoding: {
                    x: { field: 'step', type: 'quantitative', title: STEP },
                    y: { field: 'delta', type: 'quantitative', title: 'Δ (accuracy difference)' },
                    color: sizeColor(sizes),
                    detail: { field: 'model' },
                    tooltip: [
                      { field: 'model' },
                      { field: 'step', type: 'quantitative' },
                      { field: 'shots', type: 'quantitative' },
                      { field: 'delta', type: 'quantitative', format: '.3f', title: 'Δ' },
                      { field: 'top_accuracy', type: 'quantitative', format: '.3f' },
                      { field: 'bottom_accuracy', type: 'quantitative', format: '.3f' },
                      { field: 'items', type: 'quantitative' },
                    ],
                  },
                },
              ],
            },
          },
  };
}

/**
 * An intervention run continues a baseline checkpoint, so at that step it is the baseline: its line
 * starts from the baseline's row at the last baseline step before the intervention's first, and the
 * dashed line branches off the solid one.
 */
function withBranchPoints(rows: readonly Record<string, unknown>[]): Record<string, unknown>[] {
  const out = [...rows];
  const panel = (r: Record<string, unknown>) => `${r.task as string}\0${r.shots as number}`;
  for (const model of new Set(rows.filter((r) => r.run === 'intervention').map((r) => r.model as string))) {
    const own = rows.filter((r) => r.model === model);
    const baseline = own[0]!.size;
    for (const key of new Set(own.map(panel))) {
      const first = Math.min(...own.filter((r) => panel(r) === key).map((r) => r.step as number));
      const before = rows.filter((r) => r.model === baseline && panel(r) === key && (r.step as number) < first);
      const fork = before.reduce<Record<string, unknown> | undefined>(
        (a, r) => (a === undefined || (r.step as number) > (a.step as number) ? r : a),
        undefined,
      );
      if (fork) out.push({ ...fork, model, run: 'intervention' });
    }
  }
  return out;
}

function biasSpec(
  rows: Record<string, unknown>[],
  sizes: string[],
  selector: Selector,
  field: string,
  yTitle: string,
  reference: number,
  tooltip: unknown[],
): VegaLiteSpec {
  return {
    data: {
      values: withBranchPoints(rows).map((r) => ({
        ...r,
        series: `${r.model as string} ${panelLabel(r as { task: string; shots: number })}`,
      })),
    },
    params: selector.params,
    transform: [selector.filter],
    width: 560,
    height: 280,
    layer: [
      { mark: { type: 'rule', color: 'gray' }, encoding: { y: { datum: reference } } },
      {
        mark: { type: 'line', point: { size: 30, filled: false } },
        encoding: {
          x: { field: 'step', type: 'quantitative', title: STEP },
          y: { field, type: 'quantitative', title: yTitle },
          color: sizeColor(sizes),
          strokeDash: runDash(rows),
          detail: { field: 'series' },
          tooltip,
        },
      },
    ],
  };
}

function winobiasChart(data: ReportData, sizes: string[], selector: Selector): Chart {
  return {
    id: 'winobias',
    title: 'WinoBias bias against step, baseline beside intervention',
    caption:
      'Bias is the accuracy on pro-stereotypical coreference items minus anti-stereotypical ones (0: no bias, gray line); ' +
      'solid lines are the baseline runs and dashed lines the runs trained on from near the end with pronouns swapped, so a dashed line below its solid one is the intervention working.',
    empty: empty('pythia eval <suite> with a WinoBias-style task (items marked "type": "pro" / "anti")'),
    spec:
      data.winobias.length === 0
        ? null
        : biasSpec(data.winobias, sizes, selector, 'bias', 'bias (accuracy, pro − anti)', 0, [
            { field: 'model' },
            { field: 'run' },
            { field: 'task' },
            { field: 'step', type: 'quantitative' },
            { field: 'bias', type: 'quantitative', format: '.3f' },
            { field: 'pro_accuracy', type: 'quantitative', format: '.3f', title: 'pro accuracy' },
            { field: 'anti_accuracy', type: 'quantitative', format: '.3f', title: 'anti accuracy' },
          ]),
  };
}

function crowsChart(data: ReportData, sizes: string[], selector: Selector): Chart {
  return {
    id: 'crows-pairs',
    title: 'CrowS-Pairs % stereotype against step, baseline beside intervention',
    caption:
      'The percentage of sentence pairs where the model finds the more stereotypical sentence more likely (50%: no preference, gray line); ' +
      'solid lines are baseline runs and dashed lines intervention runs.',
    empty: empty('pythia eval <suite> with a CrowS-Pairs-style task (a task named crows*)'),
    spec:
      data.crows.length === 0
        ? null
        : biasSpec(data.crows, sizes, selector, 'pct_stereotype', 'stereotype preferred (% of pairs)', 50, [
            { field: 'model' },
            { field: 'run' },
            { field: 'task' },
            { field: 'step', type: 'quantitative' },
            { field: 'pct_stereotype', type: 'quantitative', format: '.1f', title: '% stereotype' },
            { field: 'pairs', type: 'quantitative' },
          ]),
  };
}
