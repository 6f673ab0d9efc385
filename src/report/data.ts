/**
 * The rows each chart of the report is drawn from, read from a results database (opening it checked
 * that it has every table and view of its schema version). A chart with no rows is drawn as waiting
 * for data. Where one (model, step, task, shots) was evaluated more than once (other
 * settings, another checkpoint under its name), or a case study was run again with other settings,
 * every chart takes the one finished last (the `current_cells` and `current_studies` views), and
 * `notes` says so.
 */
import type { ResultsStore } from '../results/store.js';
import { REPORT_SIZE, STUDIES, STUDY_NAMES, type StudyDataset } from '../results/studies.js';

export interface ModelInfo {
  model: string;
  /** The size a model belongs to: itself, or the baseline an intervention run continues. */
  size: string;
  run: string;
  parameters: number | null;
  nonEmbeddingParameters: number | null;
  layers: number | null;
  hiddenSize: number | null;
  heads: number | null;
}

export interface LossRow {
  model: string;
  step: number;
  series: 'training' | 'validation';
  loss: number;
}

export interface ScoreRow {
  model: string;
  size: string;
  run: string;
  step: number;
  task: string;
  shots: number;
  metric: string;
  value: number;
  stderr: number | null;
  n: number;
  parameters: number | null;
}

export interface TrainingSummary {
  model: string;
  lastStep: number;
  finalLoss: number | null;
  finalValLoss: number | null;
  /** Σ over logged steps of the step's tokens / tokens per second: time in optimizer steps only. */
  trainSeconds: number | null;
  tokens: number | null;
}

export interface ReportData {
  models: ModelInfo[];
  loss: LossRow[];
  scores: ScoreRow[];
  training: TrainingSummary[];
  /** Each case study's report queries (STUDIES in src/results/studies.ts), by name. */
  studies: Record<StudyDataset, Record<string, unknown>[]>;
  winobias: Record<string, unknown>[];
  crows: Record<string, unknown>[];
  /** Sentences for the reader about what the charts leave out. */
  notes: string[];
}

/** Metrics drawn as accuracies (0 to 1); every other metric is drawn on its own log scale. */
export const ACCURACY_METRICS: readonly string[] = ['acc', 'acc_norm', 'exact_match'];

const SIZE = REPORT_SIZE;

/** DuckDB's BIGINT and HUGEINT come back as bigint; charts and JSON want plain numbers. */
function plainNumbers(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) out[k] = typeof v === 'bigint' ? Number(v) : v;
  return out;
}

export async function loadReportData(store: ResultsStore): Promise<ReportData> {
  const query = async (sql: string): Promise<Record<string, unknown>[]> => (await store.rows(sql)).map(plainNumbers);

  const models = (
    await query(`SELECT model, coalesce(baseline, model) AS size, run, parameters::DOUBLE AS parameters,
       non_embedding_parameters::DOUBLE AS non_embedding_parameters, layers, hidden_size, heads
     FROM models ORDER BY parameters, model`)
  ).map((r) => ({
    model: r.model as string,
    size: r.size as string,
    run: r.run as string,
    parameters: r.parameters as number | null,
    nonEmbeddingParameters: r.non_embedding_parameters as number | null,
    layers: r.layers as number | null,
    hiddenSize: r.hidden_size as number | null,
    heads: r.heads as number | null,
  }));

  const loss =
    (await query(`SELECT model, step, 'training' AS series, loss FROM training_log WHERE loss IS NOT NULL AND isfinite(loss)
     UNION ALL
     SELECT model, step, 'validation' AS series, val_loss AS loss FROM training_log WHERE val_loss IS NOT NULL AND isfinite(val_loss)
     ORDER BY model, series, step`)) as unknown as LossRow[];

  const scores =
    (await query(`SELECT x.model, ${SIZE} AS size, coalesce(m.run, 'baseline') AS run, x.step, x.task, x.shots, x.metric, x.value, x.stderr, x.n,
       m.parameters::DOUBLE AS parameters
     FROM aggregates x JOIN current_cells c ON c.cell = x.cell LEFT JOIN models m ON m.model = x.model
     WHERE x.value IS NOT NULL AND isfinite(x.value)
     ORDER BY x.task, x.metric, x.shots, m.parameters, x.model, x.step`)) as unknown as ScoreRow[];

  const training = (
    await query(`WITH last AS (SELECT model, max(step) AS step FROM training_log GROUP BY model),
      per_step AS (SELECT model, (max(tokens)::DOUBLE / nullif(max(step), 0)) AS tokens_per_step FROM checkpoints WHERE step > 0 GROUP BY model)
     SELECT l.model, l.step AS last_step,
       (SELECT loss FROM training_log t WHERE t.model = l.model AND t.loss IS NOT NULL ORDER BY step DESC LIMIT 1) AS final_loss,
       (SELECT val_loss FROM training_log t WHERE t.model = l.model AND t.val_loss IS NOT NULL ORDER BY step DESC LIMIT 1) AS final_val_loss,
       (SELECT sum(p.tokens_per_step / t.tokens_per_s) FROM training_log t WHERE t.model = l.model AND t.tokens_per_s > 0) AS train_seconds,
       p.tokens_per_step * l.step AS tokens
     FROM last l LEFT JOIN per_step p USING (model) ORDER BY l.model`)
  ).map((r) => ({
    model: r.model as string,
    lastStep: r.last_step as number,
    finalLoss: r.final_loss as number | null,
    finalValLoss: r.final_val_loss as number | null,
    trainSeconds: r.train_seconds as number | null,
    tokens: r.tokens as number | null,
  }));

  const studies = {} as ReportData['studies'];
  for (const name of STUDY_NAMES)
    for (const [dataset, { sql }] of Object.entries(STUDIES[name].report.queries))
      studies[dataset as StudyDataset] = await query(sql);

  const winobias =
    await query(`SELECT x.*, ${SIZE} AS size, coalesce(m.run, 'baseline') AS run FROM winobias x LEFT JOIN models m USING (model)
     WHERE x.bias IS NOT NULL ORDER BY m.parameters, x.model, x.task, x.shots, x.step`);
  const crows =
    await query(`SELECT x.*, ${SIZE} AS size, coalesce(m.run, 'baseline') AS run FROM crows_pairs x LEFT JOIN models m USING (model)
     ORDER BY m.parameters, x.model, x.task, x.shots, x.step`);

  const notes: string[] = [];
  const [cells] = await query(`SELECT count(*) FILTER (WHERE n > 1)::INTEGER AS repeated, count(*)::INTEGER AS places
     FROM (SELECT count(*) AS n FROM cells GROUP BY model, step, task, shots)`);
  if (cells && (cells.repeated as number) > 0)
    notes.push(
      `${cells.repeated} of the ${cells.places} (model, step, task, shots) cells were evaluated more than once (other settings or another checkpoint under the same name); every chart shows the evaluation finished last (pythia results show lists them all).`,
    );
  const [rerun] = await query(`SELECT count(*) FILTER (WHERE n > 1)::INTEGER AS repeated
     FROM (SELECT count(*) AS n FROM studies GROUP BY kind, model, step)`);
  if (rerun && (rerun.repeated as number) > 0)
    notes.push(
      `${rerun.repeated} case studies were run more than once at one checkpoint with other settings; every chart shows the run finished last (the current_studies view of the database).`,
    );

  return {
    models,
    loss,
    scores,
    training,
    studies,
    winobias,
    crows,
    notes,
  };
}
