/**
 * The results database: one DuckDB file (through the official `@duckdb/node-api`) holding models,
 * checkpoints, tasks, per-item results, aggregates and training logs. DuckDB's write-ahead log
 * makes each transaction all-or-nothing across a kill, which is what lets an interrupted
 * evaluation resume cell by cell.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  BIGINT,
  BOOLEAN,
  DOUBLE,
  type DuckDBConnection,
  DuckDBInstance,
  type DuckDBType,
  type DuckDBValue,
  INTEGER,
  LIST,
  listValue,
  VARCHAR,
} from '@duckdb/node-api';
import type { Aggregate, ItemResult } from '../eval/metrics.js';
import type { Task } from '../eval/tasks.js';
import { FormatError } from '../util/errors.js';
import { type ColumnType, SCHEMA_VERSION, TABLES, tableSpec, VIEWS } from './schema.js';

export interface CellKey {
  model: string;
  step: number;
  task: string;
  shots: number;
}

export function cellId(c: CellKey): string {
  return `${c.model}\0${c.step}\0${c.task}\0${c.shots}`;
}

export interface ModelRow {
  model: string;
  run?: 'baseline' | 'intervention';
  baseline?: string | null;
  parameters: number;
  nonEmbeddingParameters: number;
  layers: number;
  hiddenSize: number;
  heads: number;
  vocabSize: number;
  maxPositions: number;
}

export interface CheckpointRow {
  model: string;
  step: number;
  tokens: number | null;
  path: string | null;
}

export interface TrainingLogRow {
  step: number;
  loss?: number | null;
  val_loss?: number | null;
  lr?: number | null;
  grad_norm?: number | null;
  tokens_per_s?: number | null;
}

export type Row = Record<string, unknown>;

/** A value for one column: numbers for INTEGER, BIGINT and DOUBLE, a list of numbers for DOUBLE[], text for JSON. */
export type CellValue = string | number | boolean | null | readonly number[];

/**
 * The type each column's values are bound as. Left to itself the client picks a type from the
 * JavaScript value, and a whole-valued double above 2^63 (a perplexity) fails as an out-of-range
 * BIGINT; bound as the column's own type, every value is stored as it is.
 */
const BIND_AS: Record<ColumnType, DuckDBType> = {
  VARCHAR,
  INTEGER,
  BIGINT,
  DOUBLE,
  BOOLEAN,
  JSON: VARCHAR,
  'DOUBLE[]': LIST(DOUBLE),
};

function bindable(value: CellValue, type: ColumnType, where: string): DuckDBValue {
  if (value === null) return null;
  if (type === 'DOUBLE[]') return listValue(value as readonly number[]);
  if ((type === 'INTEGER' || type === 'BIGINT') && !Number.isSafeInteger(value))
    throw new Error(`${where}: ${String(value)} is not an integer`);
  return value as DuckDBValue;
}

/** Opening options: no extension is ever downloaded (everything we use is statically linked). */
const OFFLINE = { autoinstall_known_extensions: 'false', autoload_known_extensions: 'false' };

export class ResultsStore {
  private constructor(
    readonly path: string,
    private readonly instance: DuckDBInstance,
    readonly connection: DuckDBConnection,
  ) {}

  static async open(path: string, options: { readOnly?: boolean } = {}): Promise<ResultsStore> {
    if (!options.readOnly) mkdirSync(dirname(path), { recursive: true });
    let instance: DuckDBInstance;
    try {
      instance = await DuckDBInstance.create(path, {
        ...OFFLINE,
        ...(options.readOnly ? { access_mode: 'READ_ONLY' } : {}),
      });
    } catch (e) {
      throw new FormatError(path, `cannot open as a DuckDB results database (${firstLine(e)})`);
    }
    const store = new ResultsStore(path, instance, await instance.connect());
    try {
      await store.checkSchema(options.readOnly ?? false);
    } catch (e) {
      store.close();
      throw e;
    }
    return store;
  }

  private async checkSchema(readOnly: boolean): Promise<void> {
    const tables = new Set(
      (await this.rows("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")).map(
        (r) => r.table_name as string,
      ),
    );
    if (tables.has('meta')) {
      const version = (await this.rows("SELECT value FROM meta WHERE key = 'schema_version'"))[0]?.value;
      const n = Number(version);
      if (!Number.isInteger(n))
        throw new FormatError(
          this.path,
          `meta.schema_version: expected an integer, got ${JSON.stringify(version ?? null)}`,
        );
      if (n > SCHEMA_VERSION) {
        throw new FormatError(
          this.path,
          `meta.schema_version: ${n} is newer than this pythia-ts understands (${SCHEMA_VERSION}); upgrade pythia-ts to read it`,
        );
      }
    } else if (tables.size > 0) {
      throw new FormatError(this.path, 'not a pythia-ts results database (no meta table)');
    } else if (readOnly) {
      throw new FormatError(this.path, 'not a pythia-ts results database (empty)');
    }
    if (readOnly) return;
    for (const t of TABLES) await this.connection.run(t.ddl);
    for (const v of VIEWS) await this.connection.run(`CREATE OR REPLACE VIEW ${v.name} AS ${v.sql}`);
    await this.connection.run('INSERT OR REPLACE INTO meta VALUES ($1, $2)', [
      'schema_version',
      String(SCHEMA_VERSION),
    ]);
  }

  close(): void {
    this.connection.closeSync();
    this.instance.closeSync();
  }

  async rows(sql: string, values: DuckDBValue[] = []): Promise<Row[]> {
    const reader = await this.connection.runAndReadAll(sql, values);
    // BIGINT columns (counts, tokens) come back as numbers: every value we store fits in 2^53.
    return (reader.getRowObjectsJS() as Row[]).map((row) => {
      for (const [k, v] of Object.entries(row)) if (typeof v === 'bigint') row[k] = Number(v);
      return row;
    });
  }

  async transaction<T>(body: () => Promise<T>): Promise<T> {
    await this.connection.run('BEGIN TRANSACTION');
    try {
      const out = await body();
      await this.connection.run('COMMIT');
      return out;
    } catch (e) {
      await this.connection.run('ROLLBACK');
      throw e;
    }
  }

  async upsertModel(m: ModelRow): Promise<void> {
    await this.insertRows(
      'models',
      [
        [
          m.model,
          m.run ?? 'baseline',
          m.baseline ?? null,
          m.parameters,
          m.nonEmbeddingParameters,
          m.layers,
          m.hiddenSize,
          m.heads,
          m.vocabSize,
          m.maxPositions,
        ],
      ],
      'INSERT OR REPLACE',
    );
  }

  async upsertCheckpoint(c: CheckpointRow): Promise<void> {
    await this.insertRows('checkpoints', [[c.model, c.step, c.tokens, c.path]], 'INSERT OR REPLACE');
  }

  /** Records a task and its items' metadata; a task whose file changed since it was scored is refused. */
  async registerTask(task: Task): Promise<void> {
    const known = (await this.rows('SELECT sha256 FROM tasks WHERE task = $1', [task.name]))[0];
    if (known && known.sha256 !== task.sha256) {
      const scored = (await this.rows('SELECT count(*)::INTEGER AS n FROM cells WHERE task = $1', [task.name]))[0]!
        .n as number;
      if (scored > 0) {
        throw new FormatError(
          task.path,
          `differs from the task "${task.name}" already scored in ${this.path} (sha256 ${String(known.sha256).slice(0, 12)}…); rename the file or use another --db`,
        );
      }
    }
    await this.transaction(async () => {
      await this.insertRows(
        'tasks',
        [[task.name, task.outputType, task.items.length, task.sha256, task.path]],
        'INSERT OR REPLACE',
      );
      await this.connection.run('DELETE FROM task_items WHERE task = $1', [task.name]);
      await this.insertRows(
        'task_items',
        task.items.map((item) => [task.name, item.id, JSON.stringify(item.meta)]),
      );
      await this.connection.run('DELETE FROM item_terms WHERE task = $1', [task.name]);
      await this.insertRows(
        'item_terms',
        task.items.flatMap((item) =>
          keyTerm(item.meta) === undefined ? [] : [[task.name, item.id, keyTerm(item.meta)!]],
        ),
      );
    });
  }

  async finishedCells(): Promise<Set<string>> {
    const rows = await this.rows('SELECT model, step, task, shots FROM cells');
    return new Set(rows.map((r) => cellId(r as unknown as CellKey)));
  }

  /** Writes one evaluated cell (its items, aggregates and the cell row) in one transaction. */
  async writeCell(
    cell: CellKey,
    seed: number,
    items: readonly ItemResult[],
    aggregates: readonly Aggregate[],
    seconds: number,
  ): Promise<void> {
    const key = [cell.model, cell.step, cell.task, cell.shots];
    await this.transaction(async () => {
      for (const table of ['item_results', 'aggregates', 'cells']) {
        await this.connection.run(
          `DELETE FROM ${table} WHERE model = $1 AND step = $2 AND task = $3 AND shots = $4`,
          key,
        );
      }
      await this.insertRows(
        'item_results',
        items.map((r) => [
          ...key,
          r.itemId,
          r.acc ?? null,
          r.accNorm ?? null,
          r.exactMatch ?? null,
          r.loglikelihood ?? null,
          r.isGreedy ?? null,
          r.tokens ?? null,
          r.words ?? null,
          r.bytes ?? null,
          r.prediction ?? null,
          r.choiceLoglikelihoods ?? null,
        ]),
      );
      await this.insertRows(
        'aggregates',
        aggregates.map((a) => [...key, a.metric, a.value, a.stderr, a.n]),
      );
      await this.insertRows('cells', [[...key, seed, items.length, seconds]]);
    });
  }

  /** Replaces a model's training log (log.jsonl rows). */
  async loadTrainingLog(model: string, rows: readonly TrainingLogRow[]): Promise<void> {
    const byStep = new Map<number, TrainingLogRow>();
    for (const r of rows) byStep.set(r.step, { ...byStep.get(r.step), ...r });
    await this.transaction(async () => {
      await this.connection.run('DELETE FROM training_log WHERE model = $1', [model]);
      await this.insertRows(
        'training_log',
        [...byStep.values()].map((r) => [
          model,
          r.step,
          r.loss ?? null,
          r.val_loss ?? null,
          r.lr ?? null,
          r.grad_norm ?? null,
          r.tokens_per_s ?? null,
        ]),
      );
    });
  }

  /** Inserts rows, each one value per column of the table in schema order, bound as the columns' types. */
  async insertRows(table: string, rows: readonly (readonly CellValue[])[], verb = 'INSERT'): Promise<void> {
    const spec = tableSpec(table);
    const width = spec.columns.length;
    const chunk = Math.max(1, Math.floor(2000 / width));
    for (let start = 0; start < rows.length; start += chunk) {
      const part = rows.slice(start, start + chunk);
      const values: DuckDBValue[] = [];
      const types: DuckDBType[] = [];
      for (const row of part) {
        if (row.length !== width) throw new Error(`${table}: a row of ${row.length} values for ${width} columns`);
        row.forEach((v, i) => {
          values.push(bindable(v, spec.types[i]!, `${table}.${spec.columns[i]}`));
          types.push(BIND_AS[spec.types[i]!]);
        });
      }
      const tuples = part.map((_, r) => `(${spec.columns.map((_c, i) => `$${r * width + i + 1}`).join(', ')})`);
      await this.connection.run(`${verb} INTO ${table} VALUES ${tuples.join(', ')}`, values, types);
    }
  }
}

/** An item's key term for the term-frequency study: its `term` field (a string or number). */
function keyTerm(meta: Record<string, unknown>): string | undefined {
  const term = meta.term;
  return typeof term === 'string' || typeof term === 'number' ? String(term) : undefined;
}

export function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
}
