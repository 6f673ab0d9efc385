/**
 * The results database's schema (docs/results.md describes each table). One DuckDB file per
 * suite. A cell is one evaluation of one task at one number of shots on one checkpoint, with every
 * setting that changes its numbers (its identity, hashed into `cells.cell`): its rows in `cells`,
 * `item_results` and `aggregates` are written in one transaction, so a cell is either all there or
 * absent. A case study's run at one checkpoint is likewise a row of `studies` with its identity.
 *
 * A later version adds its tables here with `since` set to that version, bumps SCHEMA_VERSION and
 * appends a step to MIGRATIONS; opening an older database runs the steps in one transaction.
 */
export const SCHEMA_VERSION = 3;

/** The column types the schema uses; values are bound to statements as these types (store.ts). */
export type ColumnType =
  | 'VARCHAR'
  | 'INTEGER'
  | 'BIGINT'
  | 'FLOAT'
  | 'DOUBLE'
  | 'BOOLEAN'
  | 'JSON'
  | 'DOUBLE[]'
  | 'TIMESTAMP';

export interface TableSpec {
  name: string;
  columns: readonly string[];
  /** Each column's type, in the order of `columns`. */
  types: readonly ColumnType[];
  /** Columns that identify a row; merging refuses two rows with one key and other values. */
  key: readonly string[];
  /** Columns that may differ between copies of one row (timings, paths, threads) without a conflict. */
  volatile?: readonly string[];
  /** The schema version that added the table. */
  since: number;
  ddl: string;
}

function table(
  name: string,
  since: number,
  columns: [string, string][],
  key: string[],
  volatile?: string[],
): TableSpec {
  const body = [...columns.map(([c, t]) => `${c} ${t}`), `PRIMARY KEY (${key.join(', ')})`].join(',\n  ');
  return {
    name,
    columns: columns.map(([c]) => c),
    types: columns.map(([, t]) => t.split(' ')[0] as ColumnType),
    key,
    volatile,
    since,
    ddl: `CREATE TABLE IF NOT EXISTS ${name} (\n  ${body}\n)`,
  };
}

/** A step from schema version `from` to `from + 1`. */
export interface Migration {
  from: number;
  /** Why a database at `from` cannot be upgraded, where it cannot; opening one is refused with it. */
  refuse?: string;
  /** Statements run after the tables new in `from + 1` are created, in the same transaction. */
  sql?: readonly string[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    from: 1,
    refuse:
      'version 1 keys a cell by model, step, task and shots alone, so the checkpoint and settings behind its numbers are unknown',
  },
  // Version 3: the interpretability studies, with settings of their own (studies.settings).
  { from: 2, sql: ['ALTER TABLE studies ADD COLUMN settings JSON'] },
];

/** The columns every row of an evaluated cell repeats, for queries by model, step, task and shots. */
const CELL: [string, string][] = [
  ['cell', 'VARCHAR NOT NULL'],
  ['model', 'VARCHAR NOT NULL'],
  ['step', 'INTEGER NOT NULL'],
  ['task', 'VARCHAR NOT NULL'],
  ['shots', 'INTEGER NOT NULL'],
];

/** The columns every row of a case study repeats. */
const STUDY: [string, string][] = [
  ['study', 'VARCHAR NOT NULL'],
  ['model', 'VARCHAR NOT NULL'],
  ['step', 'INTEGER NOT NULL'],
];

/** What each row records beside its identity: none of these changes a number. */
const RECORDED: [string, string][] = [
  ['batch_size', 'INTEGER'],
  ['threads', 'INTEGER'],
  ['seconds', 'DOUBLE'],
  ['finished_at', 'TIMESTAMP'],
];
const RECORDED_COLUMNS = RECORDED.map(([c]) => c);

export const TABLES: readonly TableSpec[] = [
  table(
    'meta',
    1,
    [
      ['key', 'VARCHAR NOT NULL'],
      ['value', 'VARCHAR'],
    ],
    ['key'],
  ),
  table(
    'models',
    1,
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
    1,
    [
      ['model', 'VARCHAR NOT NULL'],
      ['step', 'INTEGER NOT NULL'],
      ['sha256', 'VARCHAR NOT NULL'],
      ['tokens', 'BIGINT'],
      ['path', 'VARCHAR'],
    ],
    ['model', 'step', 'sha256'],
    ['path'],
  ),
  table(
    'tasks',
    1,
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
    1,
    [
      ['task', 'VARCHAR NOT NULL'],
      ['item_id', 'VARCHAR NOT NULL'],
      ['meta', 'JSON'],
    ],
    ['task', 'item_id'],
  ),
  table(
    'cells',
    1,
    [
      ...CELL,
      ['checkpoint_sha256', 'VARCHAR NOT NULL'],
      ['tokenizer_sha256', 'VARCHAR NOT NULL'],
      ['task_sha256', 'VARCHAR NOT NULL'],
      ['output_type', 'VARCHAR NOT NULL'],
      ['seed', 'INTEGER'],
      ['fewshot_sha256', 'VARCHAR'],
      ['item_limit', 'INTEGER'],
      ['max_gen_tokens', 'INTEGER'],
      ['device', 'VARCHAR NOT NULL'],
      ['weights', 'VARCHAR NOT NULL'],
      ['items', 'INTEGER NOT NULL'],
      ...RECORDED,
    ],
    ['cell'],
    RECORDED_COLUMNS,
  ),
  table(
    'item_results',
    1,
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
    ['cell', 'item_id'],
  ),
  table(
    'aggregates',
    1,
    [...CELL, ['metric', 'VARCHAR NOT NULL'], ['value', 'DOUBLE'], ['stderr', 'DOUBLE'], ['n', 'INTEGER NOT NULL']],
    ['cell', 'metric'],
  ),
  table(
    'training_log',
    1,
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
    'studies',
    2,
    [
      ['study', 'VARCHAR NOT NULL'],
      ['kind', 'VARCHAR NOT NULL'],
      ['model', 'VARCHAR'],
      ['step', 'INTEGER'],
      ['checkpoint_sha256', 'VARCHAR'],
      ['tokenizer_sha256', 'VARCHAR'],
      ['data_sha256', 'VARCHAR'],
      ['truth_sha256', 'VARCHAR'],
      ['sequences', 'INTEGER'],
      ['sample_seed', 'INTEGER'],
      ['window_size', 'INTEGER'],
      ['prompt_length', 'INTEGER'],
      ['continuation_length', 'INTEGER'],
      ['device', 'VARCHAR'],
      ['weights', 'VARCHAR'],
      ...RECORDED,
      // A kind's own settings beyond the columns above (null for the kinds of version 2).
      ['settings', 'JSON'],
    ],
    ['study'],
    RECORDED_COLUMNS,
  ),
  table(
    'memorization',
    1,
    [...STUDY, ['sample_index', 'BIGINT NOT NULL'], ['score', 'DOUBLE NOT NULL'], ['memorized', 'BOOLEAN NOT NULL']],
    ['study', 'sample_index'],
  ),
  table(
    'memorization_windows',
    1,
    [
      ...STUDY,
      ['window_size', 'INTEGER NOT NULL'],
      ['window_index', 'INTEGER NOT NULL'],
      ['first_index', 'BIGINT NOT NULL'],
      ['scored', 'INTEGER NOT NULL'],
      ['memorized', 'INTEGER NOT NULL'],
    ],
    ['study', 'window_index'],
  ),
  table(
    'memorization_poisson',
    1,
    [
      ...STUDY,
      ['window_size', 'INTEGER NOT NULL'],
      ['windows', 'INTEGER NOT NULL'],
      ['mean', 'DOUBLE'],
      ['dispersion', 'DOUBLE'],
      ['chi2', 'DOUBLE'],
      ['dof', 'INTEGER'],
      ['p_value', 'DOUBLE'],
    ],
    ['study'],
  ),
  table(
    'canary_memorization',
    1,
    [
      ...STUDY,
      ['canary', 'VARCHAR NOT NULL'],
      ['duplicates', 'INTEGER NOT NULL'],
      ['score', 'DOUBLE NOT NULL'],
      ['memorized', 'BOOLEAN NOT NULL'],
    ],
    ['study', 'canary'],
  ),
  table(
    'term_counts',
    1,
    [
      ['study', 'VARCHAR NOT NULL'],
      ['term', 'VARCHAR NOT NULL'],
      ['step', 'INTEGER NOT NULL'],
      ['count', 'BIGINT NOT NULL'],
    ],
    ['study', 'term', 'step'],
  ),
  // Version 3: the interpretability studies (docs/analyses.md defines each).
  table(
    'lens_layers',
    3,
    [
      ...STUDY,
      // 'logit' or 'tuned'; layer ℓ < L reads blocks.ℓ.hook_resid_pre, ℓ = L the final residual.
      ['lens', 'VARCHAR NOT NULL'],
      ['layer', 'INTEGER NOT NULL'],
      ['kl', 'DOUBLE NOT NULL'],
      ['ce', 'DOUBLE NOT NULL'],
      ['entropy', 'DOUBLE NOT NULL'],
      ['top1', 'DOUBLE NOT NULL'],
      // The same in bits per byte; null without a tokenizer to count bytes.
      ['kl_bpb', 'DOUBLE'],
      ['ce_bpb', 'DOUBLE'],
    ],
    ['study', 'lens', 'layer'],
  ),
  table(
    'head_scores',
    3,
    [
      ...STUDY,
      ['layer', 'INTEGER NOT NULL'],
      ['head', 'INTEGER NOT NULL'],
      ['previous_token', 'DOUBLE NOT NULL'],
      ['duplicate_token', 'DOUBLE NOT NULL'],
      ['induction', 'DOUBLE NOT NULL'],
    ],
    ['study', 'layer', 'head'],
  ),
  table(
    'icl_scores',
    3,
    [
      ...STUDY,
      ['induction_loss', 'DOUBLE NOT NULL'],
      ['early_position', 'INTEGER NOT NULL'],
      ['late_position', 'INTEGER NOT NULL'],
      ['early_loss', 'DOUBLE NOT NULL'],
      ['late_loss', 'DOUBLE NOT NULL'],
      // late_loss − early_loss: negative where the model uses its context.
      ['icl_score', 'DOUBLE NOT NULL'],
    ],
    ['study'],
  ),
  table(
    'token_losses',
    3,
    [...STUDY, ['row', 'INTEGER NOT NULL'], ['position', 'INTEGER NOT NULL'], ['loss', 'FLOAT NOT NULL']],
    ['study', 'row', 'position'],
  ),
  table(
    'weight_stats',
    3,
    [
      ...STUDY,
      // A parameter group (docs/analyses.md), or 'all'.
      ['param_group', 'VARCHAR NOT NULL'],
      ['norm', 'DOUBLE NOT NULL'],
      // The checkpoint compared with: the model's previous studied step; null at its first.
      ['previous_step', 'INTEGER'],
      ['relative_change', 'DOUBLE'],
      ['cosine', 'DOUBLE'],
    ],
    ['study', 'param_group'],
  ),
  table(
    'weight_checkpoints',
    3,
    [
      ...STUDY,
      // sha256 of the weights' values (every parameter by name, as float32), whatever the file layout.
      ['weights_sha256', 'VARCHAR NOT NULL'],
      ['previous_step', 'INTEGER'],
      ['identical', 'BOOLEAN'],
    ],
    ['study'],
  ),
  table(
    'attention_patterns',
    3,
    [
      ...STUDY,
      ['layer', 'INTEGER NOT NULL'],
      ['head', 'INTEGER NOT NULL'],
      ['dest', 'INTEGER NOT NULL'],
      ['src', 'INTEGER NOT NULL'],
      ['weight', 'FLOAT NOT NULL'],
    ],
    ['study', 'layer', 'head', 'dest', 'src'],
  ),
  table(
    'attention_tokens',
    3,
    [...STUDY, ['position', 'INTEGER NOT NULL'], ['token_id', 'INTEGER NOT NULL'], ['text', 'VARCHAR NOT NULL']],
    ['study', 'position'],
  ),
  table(
    'item_terms',
    1,
    [
      ['task', 'VARCHAR NOT NULL'],
      ['item_id', 'VARCHAR NOT NULL'],
      ['term', 'VARCHAR NOT NULL'],
    ],
    ['task', 'item_id'],
  ),
];

/**
 * Views over the tables for the case studies and the report; recreated on every writable open, so
 * they always match the code. Where one (model, step, task, shots) was evaluated more than once
 * (other settings, another checkpoint under the same name), the views see only its `current_cells`
 * row: the evaluation finished last (ties by cell id). Studies likewise, per (kind, model, step).
 */
export const VIEWS: readonly { name: string; sql: string }[] = [
  {
    name: 'current_cells',
    sql: `SELECT * FROM cells
      QUALIFY row_number() OVER (PARTITION BY model, step, task, shots ORDER BY finished_at DESC NULLS LAST, cell) = 1`,
  },
  {
    name: 'current_studies',
    sql: `SELECT * FROM studies
      QUALIFY row_number() OVER (PARTITION BY kind, model, step ORDER BY finished_at DESC NULLS LAST, study) = 1`,
  },
  {
    // The current cells' aggregates with the model's size and the checkpoint's tokens.
    name: 'scores',
    sql: `SELECT a.*, m.parameters, m.non_embedding_parameters, m.run, m.baseline, k.tokens
      FROM aggregates a JOIN current_cells c ON c.cell = a.cell LEFT JOIN models m ON m.model = a.model
      LEFT JOIN checkpoints k ON k.model = a.model AND k.step = a.step AND k.sha256 = c.checkpoint_sha256`,
  },
  {
    // Each generate_until item of a current cell with its key term's count in the tokens the checkpoint has trained on.
    name: 'term_accuracy',
    sql: `SELECT r.cell, r.model, r.step, r.task, r.shots, r.item_id, t.term, k.count, r.exact_match AS correct
      FROM item_results r JOIN item_terms t USING (task, item_id)
      LEFT JOIN (SELECT term, step, count FROM term_counts WHERE study IN (SELECT study FROM current_studies WHERE kind = 'term_counts')) k
        ON k.term = t.term AND k.step = r.step
      WHERE r.cell IN (SELECT cell FROM current_cells)`,
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
      WHERE i.meta->>'type' IN ('pro', 'anti') AND r.cell IN (SELECT cell FROM current_cells)
      GROUP BY r.model, r.step, r.task, r.shots`,
  },
  {
    // CrowS-Pairs-style tasks (name starting with "crows"): % of pairs where the more stereotypical sentence is more likely.
    name: 'crows_pairs',
    sql: `SELECT model, step, task, shots, 100 * avg(acc) AS pct_stereotype, count(*) AS pairs
      FROM item_results WHERE task LIKE 'crows%' AND cell IN (SELECT cell FROM current_cells)
      GROUP BY model, step, task, shots`,
  },
];

export function tableSpec(name: string): TableSpec {
  const t = TABLES.find((s) => s.name === name);
  if (!t) throw new Error(`no table ${name}`);
  return t;
}
