/**
 * The results database's schema (docs/results.md describes each table). One DuckDB file per
 * suite. A cell is one (model, step, task, shots): its rows in `cells`, `item_results` and
 * `aggregates` are written in one transaction, so a cell is either all there or absent.
 */
export const SCHEMA_VERSION = 1;

/** The column types the schema uses; values are bound to statements as these types (store.ts). */
export type ColumnType = 'VARCHAR' | 'INTEGER' | 'BIGINT' | 'DOUBLE' | 'BOOLEAN' | 'JSON' | 'DOUBLE[]';

export interface TableSpec {
  name: string;
  columns: readonly string[];
  /** Each column's type, in the order of `columns`. */
  types: readonly ColumnType[];
  /** Columns that identify a row; merging refuses two rows with one key and other values. */
  key: readonly string[];
  /** Columns that may differ between copies of one row (timings) without a conflict. */
  volatile?: readonly string[];
  ddl: string;
}

function table(name: string, columns: [string, string][], key: string[], volatile?: string[]): TableSpec {
  const body = [...columns.map(([c, t]) => `${c} ${t}`), `PRIMARY KEY (${key.join(', ')})`].join(',\n  ');
  return {
    name,
    columns: columns.map(([c]) => c),
    types: columns.map(([, t]) => t.split(' ')[0] as ColumnType),
    key,
    volatile,
    ddl: `CREATE TABLE IF NOT EXISTS ${name} (\n  ${body}\n)`,
  };
}

const CELL: [string, string][] = [
  ['model', 'VARCHAR NOT NULL'],
  ['step', 'INTEGER NOT NULL'],
  ['task', 'VARCHAR NOT NULL'],
  ['shots', 'INTEGER NOT NULL'],
];
const CELL_KEY = ['model', 'step', 'task', 'shots'];

export const TABLES: readonly TableSpec[] = [
  table(
    'meta',
    [
      ['key', 'VARCHAR NOT NULL'],
      ['value', 'VARCHAR'],
    ],
    ['key'],
  ),
  table(
    'models',
    [
      ['model', 'VARCHAR NOT NULL'],
      ['run', "VARCHAR NOT NULL DEFAULT 'baseline'"],
      ['baseline', 'VARCHAR'],
      ['parameters', 'BIGINT'],
      ['non_embedding_parameters', 'BIGINT'],
      ['layers', 'INTEGER'],
      ['hidden_size', 'INTEGER'],
      ['heads', 'INTEGER'],
      ['vocab_size', 'INTEGER'],
      ['max_positions', 'INTEGER'],
    ],
    ['model'],
  ),
  table(
    'checkpoints',
    [
      ['model', 'VARCHAR NOT NULL'],
      ['step', 'INTEGER NOT NULL'],
      ['tokens', 'BIGINT'],
      ['path', 'VARCHAR'],
    ],
    ['model', 'step'],
    ['path'],
  ),
  table(
    'tasks',
    [
      ['task', 'VARCHAR NOT NULL'],
      ['output_type', 'VARCHAR NOT NULL'],
      ['items', 'INTEGER NOT NULL'],
      ['sha256', 'VARCHAR NOT NULL'],
      ['path', 'VARCHAR'],
    ],
    ['task'],
    ['path'],
  ),
  table(
    'task_items',
    [
      ['task', 'VARCHAR NOT NULL'],
      ['item_id', 'VARCHAR NOT NULL'],
      ['meta', 'JSON'],
    ],
    ['task', 'item_id'],
  ),
  table(
    'cells',
    [...CELL, ['seed', 'INTEGER NOT NULL'], ['items', 'INTEGER NOT NULL'], ['seconds', 'DOUBLE']],
    CELL_KEY,
    ['seconds'],
  ),
  table(
    'item_results',
    [
      ...CELL,
      ['item_id', 'VARCHAR NOT NULL'],
      ['acc', 'DOUBLE'],
      ['acc_norm', 'DOUBLE'],
      ['exact_match', 'DOUBLE'],
      ['loglikelihood', 'DOUBLE'],
      ['is_greedy', 'BOOLEAN'],
      ['tokens', 'INTEGER'],
      ['words', 'INTEGER'],
      ['bytes', 'INTEGER'],
      ['prediction', 'VARCHAR'],
      ['choice_loglikelihoods', 'DOUBLE[]'],
    ],
    [...CELL_KEY, 'item_id'],
  ),
  table(
    'aggregates',
    [...CELL, ['metric', 'VARCHAR NOT NULL'], ['value', 'DOUBLE'], ['stderr', 'DOUBLE'], ['n', 'INTEGER NOT NULL']],
    [...CELL_KEY, 'metric'],
  ),
  table(
    'training_log',
    [
      ['model', 'VARCHAR NOT NULL'],
      ['step', 'INTEGER NOT NULL'],
      ['loss', 'DOUBLE'],
      ['val_loss', 'DOUBLE'],
      ['lr', 'DOUBLE'],
      ['grad_norm', 'DOUBLE'],
      ['tokens_per_s', 'DOUBLE'],
    ],
    ['model', 'step'],
    ['tokens_per_s'],
  ),
  table(
    'memorization',
    [
      ['model', 'VARCHAR NOT NULL'],
      ['step', 'INTEGER NOT NULL'],
      ['sample_index', 'BIGINT NOT NULL'],
      ['score', 'DOUBLE NOT NULL'],
      ['memorized', 'BOOLEAN NOT NULL'],
    ],
    ['model', 'step', 'sample_index'],
  ),
  table(
    'memorization_windows',
    [
      ['model', 'VARCHAR NOT NULL'],
      ['step', 'INTEGER NOT NULL'],
      ['window_size', 'INTEGER NOT NULL'],
      ['window_index', 'INTEGER NOT NULL'],
      ['first_index', 'BIGINT NOT NULL'],
      ['scored', 'INTEGER NOT NULL'],
      ['memorized', 'INTEGER NOT NULL'],
    ],
    ['model', 'step', 'window_size', 'window_index'],
  ),
  table(
    'memorization_poisson',
    [
      ['model', 'VARCHAR NOT NULL'],
      ['step', 'INTEGER NOT NULL'],
      ['window_size', 'INTEGER NOT NULL'],
      ['windows', 'INTEGER NOT NULL'],
      ['mean', 'DOUBLE'],
      ['dispersion', 'DOUBLE'],
      ['chi2', 'DOUBLE'],
      ['dof', 'INTEGER'],
      ['p_value', 'DOUBLE'],
    ],
    ['model', 'step', 'window_size'],
  ),
  table(
    'canary_memorization',
    [
      ['model', 'VARCHAR NOT NULL'],
      ['step', 'INTEGER NOT NULL'],
      ['canary', 'VARCHAR NOT NULL'],
      ['duplicates', 'INTEGER NOT NULL'],
      ['score', 'DOUBLE NOT NULL'],
      ['memorized', 'BOOLEAN NOT NULL'],
    ],
    ['model', 'step', 'canary'],
  ),
  table(
    'term_counts',
    [
      ['term', 'VARCHAR NOT NULL'],
      ['step', 'INTEGER NOT NULL'],
      ['count', 'BIGINT NOT NULL'],
    ],
    ['term', 'step'],
  ),
  table(
    'item_terms',
    [
      ['task', 'VARCHAR NOT NULL'],
      ['item_id', 'VARCHAR NOT NULL'],
      ['term', 'VARCHAR NOT NULL'],
    ],
    ['task', 'item_id'],
  ),
];

/**
 * Views over the tables for the case studies and the report; recreated on every open, so they
 * always match the code.
 */
export const VIEWS: readonly { name: string; sql: string }[] = [
  {
    // Accuracy-like aggregates with the model's size and the checkpoint's tokens.
    name: 'scores',
    sql: `SELECT a.*, m.parameters, m.non_embedding_parameters, m.run, m.baseline, c.tokens
      FROM aggregates a LEFT JOIN models m USING (model) LEFT JOIN checkpoints c USING (model, step)`,
  },
  {
    // Each generate_until item with its key term's count in the tokens the checkpoint has trained on.
    name: 'term_accuracy',
    sql: `SELECT r.model, r.step, r.task, r.shots, r.item_id, t.term, k.count, r.exact_match AS correct
      FROM item_results r JOIN item_terms t USING (task, item_id) LEFT JOIN term_counts k ON k.term = t.term AND k.step = r.step`,
  },
  {
    // Δ: accuracy of the items whose term is among the 10% most frequent minus the 10% least frequent.
    name: 'term_delta',
    sql: `WITH ranked AS (
        SELECT *, ntile(10) OVER (PARTITION BY model, step, task, shots ORDER BY count, item_id) AS decile FROM term_accuracy WHERE count IS NOT NULL)
      SELECT model, step, task, shots,
        avg(correct) FILTER (WHERE decile = 10) AS top_accuracy,
        avg(correct) FILTER (WHERE decile = 1) AS bottom_accuracy,
        avg(correct) FILTER (WHERE decile = 10) - avg(correct) FILTER (WHERE decile = 1) AS delta,
        count(*) AS items
      FROM ranked GROUP BY model, step, task, shots`,
  },
  {
    // WinoBias-style tasks: items whose metadata marks them "pro" or "anti" stereotypical.
    name: 'winobias',
    sql: `SELECT r.model, r.step, r.task, r.shots,
        avg(r.acc) FILTER (WHERE i.meta->>'type' = 'pro') AS pro_accuracy,
        avg(r.acc) FILTER (WHERE i.meta->>'type' = 'anti') AS anti_accuracy,
        avg(r.acc) FILTER (WHERE i.meta->>'type' = 'pro') - avg(r.acc) FILTER (WHERE i.meta->>'type' = 'anti') AS bias
      FROM item_results r JOIN task_items i USING (task, item_id)
      WHERE i.meta->>'type' IN ('pro', 'anti') GROUP BY r.model, r.step, r.task, r.shots`,
  },
  {
    // CrowS-Pairs-style tasks (name starting with "crows"): % of pairs where the more stereotypical sentence is more likely.
    name: 'crows_pairs',
    sql: `SELECT model, step, task, shots, 100 * avg(acc) AS pct_stereotype, count(*) AS pairs
      FROM item_results WHERE task LIKE 'crows%' GROUP BY model, step, task, shots`,
  },
];

export function tableSpec(name: string): TableSpec {
  const t = TABLES.find((s) => s.name === name);
  if (!t) throw new Error(`no table ${name}`);
  return t;
}
