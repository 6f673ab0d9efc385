/**
 * The results database's schema (docs/results.md describes each table). One DuckDB file per
 * suite. A cell is one (model, step, task, shots): its rows in `cells`, `item_results` and
 * `aggregates` are written in one transaction, so a cell is either all there or absent.
 */
export const SCHEMA_VERSION = 1;

export interface TableSpec {
  name: string;
  columns: readonly string[];
  /** Columns that identify a row; merging refuses two rows with one key and other values. */
  key: readonly string[];
  /** Columns that may differ between copies of one row (timings) without a conflict. */
  volatile?: readonly string[];
  ddl: string;
}

function table(name: string, columns: [string, string][], key: string[], volatile?: string[]): TableSpec {
  const body = [...columns.map(([c, t]) => `${c} ${t}`), `PRIMARY KEY (${key.join(', ')})`].join(',\n  ');
  return { name, columns: columns.map(([c]) => c), key, volatile, ddl: `CREATE TABLE IF NOT EXISTS ${name} (\n  ${body}\n)` };
}

const CELL: [string, string][] = [
  ['model', 'VARCHAR NOT NULL'],
  ['step', 'INTEGER NOT NULL'],
  ['task', 'VARCHAR NOT NULL'],
  ['shots', 'INTEGER NOT NULL'],
];
const CELL_KEY = ['model', 'step', 'task', 'shots'];

export const TABLES: readonly TableSpec[] = [
  table('meta', [['key', 'VARCHAR NOT NULL'], ['value', 'VARCHAR']], ['key']),
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
  table('checkpoints', [['model', 'VARCHAR NOT NULL'], ['step', 'INTEGER NOT NULL'], ['tokens', 'BIGINT'], ['path', 'VARCHAR']], ['model', 'step'], ['path']),
  table('tasks', [['task', 'VARCHAR NOT NULL'], ['output_type', 'VARCHAR NOT NULL'], ['items', 'INTEGER NOT NULL'], ['sha256', 'VARCHAR NOT NULL'], ['path', 'VARCHAR']], ['task'], ['path']),
  table('task_items', [['task', 'VARCHAR NOT NULL'], ['item_id', 'VARCHAR NOT NULL'], ['meta', 'JSON']], ['task', 'item_id']),
  table('cells', [...CELL, ['seed', 'INTEGER NOT NULL'], ['items', 'INTEGER NOT NULL'], ['seconds', 'DOUBLE']], CELL_KEY, ['seconds']),
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
  table('aggregates', [...CELL, ['metric', 'VARCHAR NOT NULL'], ['value', 'DOUBLE'], ['stderr', 'DOUBLE'], ['n', 'INTEGER NOT NULL']], [...CELL_KEY, 'metric']),
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
];

export function tableSpec(name: string): TableSpec {
  const t = TABLES.find((s) => s.name === name);
  if (!t) throw new Error(`no table ${name}`);
  return t;
}
