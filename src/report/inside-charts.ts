/**
 * The charts of the report's "Inside the model" section, one builder per interpretability study,
 * each over the rows of that study's report queries (their columns are the queries' columns,
 * docs/results.md) and returning its charts as Vega-Lite specs with the rows inline. Rows are drawn
 * as given: what a chart derives from them (the step axis, the checkpoint a slider picks, the
 * strongest head) it derives in the spec's own transforms.
 */
import {
  type Chart,
  type ChartContext,
  empty,
  panelLabel,
  runDash,
  STEP,
  STEP_LOG,
  sizeColor,
  type VegaLiteSpec,
} from './charts.js';
import type { ScoreRow } from './data.js';

/** `lensLayers` (lens = 'logit') and `tunedLensLayers` (lens = 'tuned'): one layer at one checkpoint. */
export interface LensLayerRow {
  model: string;
  size: string;
  run: string;
  step: number;
  layer: number;
  kl: number;
  ce: number;
  entropy: number;
  top1: number;
  kl_bpb: number | null;
  ce_bpb: number | null;
}

/** `headScores`: one attention head's detector scores at one checkpoint. */
export interface HeadScoreRow {
  model: string;
  size: string;
  run: string;
  step: number;
  layer: number;
  head: number;
  previous_token: number;
  duplicate_token: number;
  induction: number;
}

/** `iclScores`: the induction loss and the in-context-learning score at one checkpoint. */
export interface IclScoreRow {
  model: string;
  size: string;
  run: string;
  step: number;
  induction_loss: number;
  early_position: number;
  late_position: number;
  early_loss: number;
  late_loss: number;
  icl_score: number;
}

export type TokenCategory = 'learned' | 'forgotten' | 'never';

/** `tokenLearning`: one model's share of the sampled held-out tokens in one category. */
export interface TokenLearningRow {
  model: string;
  size: string;
  run: string;
  category: TokenCategory;
  tokens: number;
  share: number;
  /** The study's --learned-ratio for this model's runs. */
  learned_ratio: number;
}

/** `tokenLossByStep`: the sampled tokens' mean loss at one checkpoint and the share learned by then. */
export interface TokenLossRow {
  model: string;
  size: string;
  run: string;
  step: number;
  mean_loss: number;
  learned_share: number;
}

/**
 * The token-curves study's thresholds, each a fraction of a token's step-0 loss: learned once its
 * loss falls below `learned` × and stays there at every later checkpoint; forgotten when, once
 * below, it rises back above `forgotten` × at a later one.
 */
export interface TokenThresholds {
  learned: number;
  forgotten: number;
}

/** `weightChanges`: one parameter group's norm and its change from the model's previous studied checkpoint. */
export interface WeightChangeRow {
  model: string;
  size: string;
  run: string;
  step: number;
  param_group: string;
  norm: number;
  previous_step: number | null;
  relative_change: number | null;
  cosine: number | null;
}

/** `identicalCheckpoints`: a checkpoint's weights hash, and whether it equals the previous checkpoint's. */
export interface IdenticalCheckpointRow {
  model: string;
  size: string;
  step: number;
  previous_step: number | null;
  weights_sha256: string;
  identical: boolean;
}

const HEAD_SCORES = ['previous_token', 'duplicate_token', 'induction'] as const;
const TOKEN_CATEGORIES: readonly TokenCategory[] = ['learned', 'forgotten', 'never'];
const CHECKPOINT_SELECT = 'checkpoint_select';
const GROUP_SELECT = 'param_group_select';

/**
 * The x axis of a chart against step: step + 1 on a log scale where the checkpoints span a decade
 * or more (as the report's other step charts), else the step itself; the transform computes `at`.
 */
interface StepAxis {
  log: boolean;
  at: unknown;
  x: Record<string, unknown>;
}

function stepAxis(steps: readonly number[]): StepAxis {
  const log = steps.length > 0 && Math.max(...steps) + 1 >= 10 * (Math.min(...steps) + 1);
  return {
    log,
    at: { calculate: log ? 'datum.step + 1' : 'datum.step', as: 'at' },
    x: {
      field: 'at',
      type: 'quantitative',
      scale: log ? { type: 'log', nice: false } : { nice: false },
      ...(log ? {} : { axis: { tickMinStep: 1 } }),
      title: log ? STEP_LOG : STEP,
    },
  };
}

/** Checkpoints outside a suite (a lone folder, a hub snapshot) are step −1: they have no place on a step axis. */
function onStepAxis<T extends { step: number }>(rows: readonly T[]): T[] {
  return rows.filter((r) => r.step >= 0);
}

function sortedSteps(rows: readonly { step: number }[]): number[] {
  return [...new Set(rows.map((r) => r.step))].sort((a, b) => a - b);
}

/**
 * A heatmap cell per checkpoint spans from halfway to the previous checkpoint to halfway to the next
 * (geometric halves on a log axis); the first and last mirror their one neighbour.
 */
function cellEdges(axis: StepAxis, steps: readonly number[], groupby: string[]): unknown[] {
  // A checkpoint alone in its row is as wide as the closest two checkpoints of the chart are apart.
  const at = steps.map((s) => (axis.log ? s + 1 : s));
  const gaps = at.slice(1).map((x, i) => (axis.log ? x / at[i]! : x - at[i]!));
  const alone =
    gaps.length === 0 ? (axis.log ? 1.5 : 0.5) : axis.log ? Math.sqrt(Math.min(...gaps)) : Math.min(...gaps) / 2;
  const [mid, beyond] = axis.log
    ? [(a: string, b: string) => `sqrt(${a} * ${b})`, (a: string, b: string) => `${a} * sqrt(${a} / ${b})`]
    : [(a: string, b: string) => `(${a} + ${b}) / 2`, (a: string, b: string) => `${a} + (${a} - ${b}) / 2`];
  const edge = (near: string, far: string, single: string) =>
    `isValid(datum.${near}) ? ${mid('datum.at', `datum.${near}`)} : isValid(datum.${far}) ? ${beyond('datum.at', `datum.${far}`)} : ${single}`;
  const [low, high] = axis.log
    ? [`datum.at / ${alone}`, `datum.at * ${alone}`]
    : [`datum.at - ${alone}`, `datum.at + ${alone}`];
  return [
    {
      window: [
        { op: 'lag', field: 'at', as: 'at_previous' },
        { op: 'lead', field: 'at', as: 'at_next' },
      ],
      groupby,
      sort: [{ field: 'step', order: 'ascending' }],
    },
    { calculate: edge('at_previous', 'at_next', low), as: 'at_low' },
    { calculate: edge('at_next', 'at_previous', high), as: 'at_high' },
  ];
}

function lensTooltip(): unknown[] {
  return [
    { field: 'model' },
    { field: 'step', type: 'quantitative' },
    { field: 'layer', type: 'quantitative' },
    { field: 'kl', type: 'quantitative', format: '.4f', title: 'KL (nats)' },
    { field: 'ce', type: 'quantitative', format: '.4f', title: 'cross-entropy (nats)' },
    { field: 'entropy', type: 'quantitative', format: '.4f', title: 'entropy (nats)' },
    { field: 'top1', type: 'quantitative', format: '.3f', title: 'top-1 agreement' },
    { field: 'kl_bpb', type: 'quantitative', format: '.4f', title: 'KL (bits per byte)' },
    { field: 'ce_bpb', type: 'quantitative', format: '.4f', title: 'cross-entropy (bits per byte)' },
  ];
}

/** KL(final ‖ lens) of each layer (y) at each checkpoint (x), one heatmap per model. */
function lensHeatmap(rows: readonly LensLayerRow[], c: ChartContext): VegaLiteSpec {
  const steps = sortedSteps(rows);
  const axis = stepAxis(steps);
  return {
    data: { values: rows },
    params: c.selector.params,
    transform: [c.selector.filter, axis.at, ...cellEdges(axis, steps, ['model', 'layer'])],
    facet: {
      row: {
        field: 'model',
        type: 'nominal',
        title: null,
        sort: c.models,
        header: { labelAngle: 0, labelAlign: 'left', labelFontWeight: 'bold' },
      },
    },
    resolve: { scale: { y: 'independent' }, axis: { x: 'independent' } },
    spec: {
      width: 520,
      height: 140,
      mark: { type: 'rect' },
      encoding: {
        x: { ...axis.x, field: 'at_low' },
        x2: { field: 'at_high' },
        y: { field: 'layer', type: 'ordinal', sort: 'descending', title: 'layer (residual before block ℓ; L = final)' },
        color: {
          field: 'kl',
          type: 'quantitative',
          scale: { scheme: 'viridis', zero: true },
          title: 'KL (nats)',
        },
        tooltip: lensTooltip(),
      },
    },
  };
}

export function logitLensCharts(lensLayers: readonly LensLayerRow[], c: ChartContext): Chart[] {
  const rows = onStepAxis(lensLayers);
  return [
    {
      id: 'logit-lens',
      title: 'Logit lens: KL to the final prediction by layer against step',
      caption:
        "One heatmap per model: each cell is one layer's residual read through the final LayerNorm and unembedding at one checkpoint, coloured by KL(final ‖ lens) in nats averaged over held-out positions; " +
        'dark cells mean that layer already predicts what the model finally does, and a dark region growing down from the top layer over training is the prediction forming in earlier layers.',
      empty: empty('pythia eval <suite> --studies logit-lens'),
      spec: rows.length === 0 ? null : lensHeatmap(rows, c),
    },
  ];
}

/** The tuned lens's rows at each model's last step with a tuned lens, and the logit lens's at the same checkpoints. */
function lastStepLenses(
  tuned: readonly LensLayerRow[],
  logit: readonly LensLayerRow[],
): { tuned: LensLayerRow[]; logit: LensLayerRow[] } {
  const last = new Map<string, number>();
  for (const r of tuned) last.set(r.model, Math.max(last.get(r.model) ?? r.step, r.step));
  return {
    tuned: tuned.filter((r) => r.step === last.get(r.model)),
    logit: logit.filter((r) => r.step === last.get(r.model)),
  };
}

function lensComparison(tuned: readonly LensLayerRow[], logit: readonly LensLayerRow[], c: ChartContext): VegaLiteSpec {
  const lens = (label: string, rows: readonly LensLayerRow[]) => ({
    data: { values: rows },
    transform: [c.selector.filter],
    mark: { type: 'line', point: { size: 30, filled: false } },
    encoding: {
      x: {
        field: 'layer',
        type: 'quantitative',
        axis: { tickMinStep: 1 },
        title: 'layer (residual before block ℓ; L = final)',
      },
      y: { field: 'kl', type: 'quantitative', title: 'KL(final ‖ lens) (nats)' },
      color: sizeColor(c.sizes),
      strokeDash: {
        datum: label,
        type: 'nominal',
        title: 'lens',
        scale: {
          domain: ['tuned lens', 'logit lens'],
          range: [
            [1, 0],
            [5, 3],
          ],
        },
      },
      detail: { field: 'model' },
      tooltip: [{ field: 'model' }, { datum: label, title: 'lens' }, ...lensTooltip()],
    },
  });
  return {
    params: c.selector.params,
    width: 560,
    height: 280,
    layer: [lens('tuned lens', tuned), lens('logit lens', logit)],
  };
}

export function tunedLensCharts(
  tuned: readonly LensLayerRow[],
  logit: readonly LensLayerRow[],
  c: ChartContext,
): Chart[] {
  const last = lastStepLenses(tuned, logit);
  const heatmap = onStepAxis(tuned);
  return [
    {
      id: 'tuned-lens',
      title: 'Tuned lens: KL to the final prediction by layer against step',
      caption:
        "As the logit lens above, with each layer's learned affine translator applied before the final LayerNorm: " +
        'cells darker than the logit lens at the same layer and step are what the translator recovers, so a layer that stays bright here carries little of the final prediction yet.',
      empty: empty('pythia eval <suite> --studies tuned-lens'),
      spec: heatmap.length === 0 ? null : lensHeatmap(heatmap, c),
    },
    {
      id: 'tuned-vs-logit-lens',
      title: 'Tuned against logit lens: KL by layer at the last step',
      caption:
        'Each model at its last checkpoint with a tuned lens: KL(final ‖ lens) in nats by layer, solid for the tuned lens and dashed for the logit lens at the same checkpoint (drawn where the logit-lens study ran there too); ' +
        'the gap between a solid and its dashed line is how much a trained translator reads out of that layer beyond the unembedding alone, and both reach 0 at the final layer.',
      empty: empty('pythia eval <suite> --studies tuned-lens,logit-lens'),
      spec: last.tuned.length === 0 ? null : lensComparison(last.tuned, last.logit, c),
    },
  ];
}

function headHeatmaps(rows: readonly HeadScoreRow[], c: ChartContext): VegaLiteSpec {
  const steps = sortedSteps(rows);
  return {
    data: { values: rows },
    params: [
      ...c.selector.params,
      {
        name: CHECKPOINT_SELECT,
        value: steps.length - 1,
        bind: {
          input: 'range',
          min: 0,
          max: steps.length - 1,
          step: 1,
          name: 'checkpoint (0 = first; panels name the step) ',
        },
      },
    ],
    transform: [
      c.selector.filter,
      { calculate: `indexof(${JSON.stringify(steps)}, datum.step)`, as: 'checkpoint' },
      { filter: `datum.checkpoint <= ${CHECKPOINT_SELECT}` },
      { joinaggregate: [{ op: 'max', field: 'step', as: 'shown_step' }], groupby: ['model'] },
      { filter: 'datum.step == datum.shown_step' },
      { calculate: `indexof(${JSON.stringify(c.models)}, datum.model)`, as: 'model_order' },
      { calculate: "datum.model + ' · step ' + datum.step", as: 'panel' },
      { fold: [...HEAD_SCORES], as: ['score', 'value'] },
    ],
    facet: {
      row: {
        field: 'panel',
        type: 'nominal',
        title: null,
        sort: { field: 'model_order', op: 'min' },
        header: { labelAngle: 0, labelAlign: 'left', labelFontWeight: 'bold' },
      },
      column: {
        field: 'score',
        type: 'nominal',
        title: null,
        sort: [...HEAD_SCORES],
        header: { labelFontWeight: 'bold', labelExpr: "replace(datum.value, '_', ' ')" },
      },
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
    spec: {
      width: 170,
      height: 130,
      mark: { type: 'rect' },
      encoding: {
        x: { field: 'head', type: 'ordinal', axis: { labelAngle: 0 }, title: 'head' },
        y: { field: 'layer', type: 'ordinal', sort: 'descending', title: 'layer' },
        color: {
          field: 'value',
          type: 'quantitative',
          scale: { domain: [0, 1], scheme: 'viridis' },
          title: 'score (0 to 1)',
        },
        tooltip: [
          { field: 'model' },
          { field: 'step', type: 'quantitative' },
          { field: 'layer', type: 'quantitative' },
          { field: 'head', type: 'quantitative' },
          { field: 'previous_token', type: 'quantitative', format: '.3f', title: 'previous token' },
          { field: 'duplicate_token', type: 'quantitative', format: '.3f', title: 'duplicate token' },
          { field: 'induction', type: 'quantitative', format: '.3f' },
        ],
      },
    },
  };
}

export function headCharts(rows: readonly HeadScoreRow[], c: ChartContext): Chart[] {
  return [
    {
      id: 'head-scores',
      title: 'Attention-head scores by layer and head, with a checkpoint slider',
      caption:
        "One row per model and one column per detector (previous token, duplicate token, induction: TransformerLens's detect_head, the attention each head puts where the pattern says, 0 to 1); " +
        "each cell is one head at the checkpoint the slider picks (each model's latest at or before it, named in the row), so a bright cell appearing as the slider moves is a head of that kind forming.",
      empty: empty('pythia eval <suite> --studies heads'),
      spec: rows.length === 0 ? null : headHeatmaps(rows, c),
    },
  ];
}

/** Benchmark rows of the LAMBADA-style tasks (their name says lambada): accuracy at each checkpoint of a suite. */
export function lambadaRows(scores: readonly ScoreRow[]): ScoreRow[] {
  return scores.filter((r) => r.task.toLowerCase().includes('lambada') && r.metric === 'acc' && r.step >= 0);
}

function iclPanels(
  icl: readonly IclScoreRow[],
  heads: readonly HeadScoreRow[],
  lambada: readonly ScoreRow[],
  c: ChartContext,
): VegaLiteSpec {
  const axis = stepAxis(sortedSteps([...icl, ...heads, ...lambada]));
  const dash = runDash([...icl, ...heads, ...lambada] as unknown as Record<string, unknown>[]);
  const panel = (
    title: string,
    values: readonly unknown[],
    transform: unknown[],
    y: Record<string, unknown>,
    tooltip: unknown[],
  ) => ({
    title: { text: title, fontSize: 12, fontWeight: 'bold' },
    data: { values },
    transform: [c.selector.filter, ...transform, axis.at],
    width: 560,
    height: 130,
    mark: { type: 'line', point: { size: 25, filled: false } },
    encoding: {
      x: axis.x,
      y: { type: 'quantitative', ...y },
      color: sizeColor(c.sizes),
      strokeDash: dash,
      detail: { field: 'model' },
      tooltip: [{ field: 'model' }, { field: 'step', type: 'quantitative' }, ...tooltip],
    },
  });
  const panels = [];
  if (heads.length > 0)
    panels.push(
      panel(
        'strongest induction head',
        heads,
        [
          {
            aggregate: [{ op: 'max', field: 'induction', as: 'induction' }],
            groupby: ['model', 'size', 'run', 'step'],
          },
        ],
        { field: 'induction', scale: { domain: [0, 1] }, title: 'induction score (max over heads)' },
        [{ field: 'induction', type: 'quantitative', format: '.3f', title: 'strongest induction score' }],
      ),
    );
  if (icl.length > 0) {
    const iclTooltip = [
      { field: 'induction_loss', type: 'quantitative', format: '.4f', title: 'induction loss (nats)' },
      { field: 'icl_score', type: 'quantitative', format: '.4f', title: 'in-context-learning score (nats)' },
      { field: 'early_position', type: 'quantitative', title: 'early position' },
      { field: 'early_loss', type: 'quantitative', format: '.4f', title: 'early loss (nats)' },
      { field: 'late_position', type: 'quantitative', title: 'late position' },
      { field: 'late_loss', type: 'quantitative', format: '.4f', title: 'late loss (nats)' },
    ];
    panels.push(
      panel(
        'induction loss',
        icl,
        [],
        { field: 'induction_loss', scale: { zero: false }, title: 'loss on repeated tokens (nats)' },
        iclTooltip,
      ),
      panel(
        'in-context-learning score',
        icl,
        [],
        { field: 'icl_score', title: 'late − early loss (nats)' },
        iclTooltip,
      ),
    );
  }
  const label = (r: ScoreRow) => panelLabel({ task: r.task, shots: r.shots });
  const tasks = [...new Set(lambada.map(label))];
  for (const task of tasks)
    panels.push(
      panel(
        `${task} accuracy`,
        lambada.filter((r) => label(r) === task),
        [],
        { field: 'value', scale: { domain: [0, 1] }, title: 'accuracy (fraction)' },
        [
          { field: 'value', type: 'quantitative', format: '.3f', title: 'accuracy' },
          { field: 'n', type: 'quantitative', title: 'items' },
        ],
      ),
    );
  return { params: c.selector.params, vconcat: panels, resolve: { scale: { x: 'shared' } } };
}

export function iclCharts(
  icl: readonly IclScoreRow[],
  heads: readonly HeadScoreRow[],
  scores: readonly ScoreRow[],
  c: ChartContext,
): Chart[] {
  const [checkpoints, scored, lambada] = [onStepAxis(icl), onStepAxis(heads), lambadaRows(scores)];
  return [
    {
      id: 'induction',
      title: 'Induction heads, in-context learning and LAMBADA against step',
      caption:
        'Stacked panels on one step axis, one line per model: the strongest induction score of any head, the loss on the second copy of repeated random tokens, the in-context-learning score (loss late in the context minus early; more negative is more in-context learning) and LAMBADA-style accuracy; ' +
        'an induction head forming shows as the first panel jumping while the induction loss and the score drop at the same step, and LAMBADA rising with them ties it to the benchmark.',
      empty: empty('pythia eval <suite> --studies icl,heads'),
      spec: checkpoints.length === 0 && scored.length === 0 ? null : iclPanels(checkpoints, scored, lambada, c),
    },
  ];
}

function times(x: number): string {
  return `${x}×`;
}

/** How the token-curves thresholds read in a caption. */
export function thresholdsSentence(t: TokenThresholds): string {
  const learned = `learned: its loss falls below ${times(t.learned)} its step-0 loss and stays there at every later checkpoint`;
  const forgotten =
    t.forgotten === t.learned
      ? 'forgotten: it fell below, then rose back above at a later checkpoint'
      : `forgotten: it fell below, then rose back above ${times(t.forgotten)} its step-0 loss at a later checkpoint`;
  return `A token is ${learned}; ${forgotten}; never: neither.`;
}

function tokenShares(rows: readonly TokenLearningRow[], c: ChartContext): VegaLiteSpec {
  return {
    data: { values: rows },
    params: c.selector.params,
    transform: [
      c.selector.filter,
      { calculate: `indexof(${JSON.stringify(TOKEN_CATEGORIES)}, datum.category)`, as: 'category_order' },
    ],
    width: 520,
    height: { step: 22 },
    mark: { type: 'bar' },
    encoding: {
      y: { field: 'model', type: 'nominal', sort: c.models, title: null },
      x: {
        field: 'share',
        type: 'quantitative',
        stack: 'zero',
        scale: { domain: [0, 1] },
        title: 'share of the sampled held-out tokens (fraction)',
      },
      color: {
        field: 'category',
        type: 'nominal',
        title: 'token',
        sort: TOKEN_CATEGORIES,
        scale: { domain: TOKEN_CATEGORIES, range: ['#4c78a8', '#f58518', '#bab0ac'] },
      },
      order: { field: 'category_order', type: 'quantitative' },
      tooltip: [
        { field: 'model' },
        { field: 'category' },
        { field: 'tokens', type: 'quantitative' },
        { field: 'share', type: 'quantitative', format: '.3f' },
      ],
    },
  };
}

function tokenCurves(rows: readonly TokenLossRow[], c: ChartContext): VegaLiteSpec {
  const axis = stepAxis(sortedSteps(rows));
  const curve = (field: string, y: Record<string, unknown>) => ({
    width: 300,
    height: 200,
    transform: [c.selector.filter, axis.at],
    mark: { type: 'line', point: { size: 25, filled: false } },
    encoding: {
      x: axis.x,
      y: { field, type: 'quantitative', ...y },
      color: sizeColor(c.sizes),
      strokeDash: runDash(rows as unknown as Record<string, unknown>[]),
      detail: { field: 'model' },
      tooltip: [
        { field: 'model' },
        { field: 'step', type: 'quantitative' },
        { field: 'learned_share', type: 'quantitative', format: '.3f', title: 'learned share' },
        { field: 'mean_loss', type: 'quantitative', format: '.4f', title: 'mean loss (nats)' },
      ],
    },
  });
  return {
    data: { values: rows },
    params: c.selector.params,
    hconcat: [
      curve('learned_share', { scale: { domain: [0, 1] }, title: 'learned by then (fraction of tokens)' }),
      curve('mean_loss', { scale: { zero: false }, title: 'mean loss of the sampled tokens (nats)' }),
    ],
  };
}

export function tokenCurveCharts(
  learning: readonly TokenLearningRow[],
  byStep: readonly TokenLossRow[],
  thresholds: TokenThresholds,
  c: ChartContext,
): Chart[] {
  const rule = thresholdsSentence(thresholds);
  const curves = onStepAxis(byStep);
  return [
    {
      id: 'token-shares',
      title: 'Learned, forgotten and never-learned held-out tokens',
      caption: `One bar per model over the same sample of held-out tokens, split by what their loss did across its checkpoints. ${rule} A longer blue part is more tokens learned for good; orange is learning that did not last.`,
      empty: empty('pythia eval <suite> --studies token-curves'),
      spec: learning.length === 0 ? null : tokenShares(learning, c),
    },
    {
      id: 'token-curves',
      title: 'Share of tokens learned and their mean loss against step',
      caption: `One line per model: left, the share of the sampled held-out tokens learned by each checkpoint; right, their mean loss in nats. ${rule} A curve that rises early and steeply is a model that learns most tokens early.`,
      empty: empty('pythia eval <suite> --studies token-curves'),
      spec: curves.length === 0 ? null : tokenCurves(curves, c),
    },
  ];
}

function weightChanges(
  changes: readonly WeightChangeRow[],
  identical: readonly IdenticalCheckpointRow[],
  c: ChartContext,
): VegaLiteSpec {
  const axis = stepAxis(sortedSteps([...changes, ...identical]));
  const groups = [...new Set(changes.map((r) => r.param_group))];
  // 'all' is the whole model where the study records it as a group, else every group at once.
  const whole = groups.includes('all');
  const options = ['all', ...groups.filter((g) => g !== 'all')];
  const groupFilter = whole
    ? `datum.param_group == ${GROUP_SELECT}`
    : `${GROUP_SELECT} == 'all' || datum.param_group == ${GROUP_SELECT}`;
  return {
    params: [
      ...c.selector.params,
      { name: GROUP_SELECT, value: 'all', bind: { input: 'select', options, name: 'parameter group ' } },
    ],
    width: 560,
    height: 280,
    layer: [
      {
        data: { values: changes },
        transform: [
          c.selector.filter,
          { filter: groupFilter },
          { filter: 'isValid(datum.relative_change) && datum.relative_change > 0' },
          { calculate: "datum.model + ' · ' + datum.param_group", as: 'series' },
          axis.at,
        ],
        mark: { type: 'line', point: { size: 25, filled: false } },
        encoding: {
          x: axis.x,
          y: {
            field: 'relative_change',
            type: 'quantitative',
            scale: { type: 'log' },
            title: '‖θ − θ previous‖ / ‖θ previous‖ (log scale)',
          },
          color: sizeColor(c.sizes),
          strokeDash: runDash(changes as unknown as Record<string, unknown>[]),
          detail: { field: 'series' },
          tooltip: [
            { field: 'model' },
            { field: 'param_group', title: 'parameter group' },
            { field: 'previous_step', type: 'quantitative', title: 'from step' },
            { field: 'step', type: 'quantitative', title: 'to step' },
            { field: 'relative_change', type: 'quantitative', format: '.3e', title: 'relative change' },
            { field: 'cosine', type: 'quantitative', format: '.6f' },
            { field: 'norm', type: 'quantitative', format: '.4g' },
          ],
        },
      },
      {
        data: { values: identical },
        transform: [c.selector.filter, { filter: 'datum.identical' }, axis.at],
        mark: { type: 'rule', strokeDash: [2, 2], strokeWidth: 1.5 },
        encoding: {
          x: axis.x,
          color: sizeColor(c.sizes),
          tooltip: [
            { field: 'model' },
            { field: 'step', type: 'quantitative', title: 'identical at step' },
            { field: 'previous_step', type: 'quantitative', title: 'to step' },
            { field: 'weights_sha256', title: 'weights sha256' },
          ],
        },
      },
    ],
  };
}

export function weightCharts(
  changes: readonly WeightChangeRow[],
  identical: readonly IdenticalCheckpointRow[],
  c: ChartContext,
): Chart[] {
  const [changed, hashed] = [onStepAxis(changes), onStepAxis(identical)];
  const all = changes.some((r) => r.param_group === 'all') ? "'all' is the whole model" : "'all' draws every group";
  return [
    {
      id: 'weight-changes',
      title: 'Weight change between consecutive checkpoints against step',
      caption:
        `One line per model and parameter group (picked in the selector; ${all}): the norm of the change since the previous checkpoint relative to that checkpoint's norm, on a log y axis; ` +
        'lines usually fall as the learning rate decays, and a dotted vertical rule marks a checkpoint whose weights are byte-identical to the previous one (no change to draw).',
      empty: empty('pythia eval <suite> --studies weights'),
      spec: changed.length === 0 && hashed.length === 0 ? null : weightChanges(changed, hashed, c),
    },
  ];
}
