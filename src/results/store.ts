/**
 * The results database: one DuckDB file (through the official `@duckdb/node-api`) holding models,
 * checkpoints, tasks, per-item results, aggregates, case studies and training logs. DuckDB's
 * write-ahead log makes each transaction all-or-nothing across a kill, which is what lets an
 * interrupted evaluation resume cell by cell. Opening checks the file first (prepareDatabase).
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
  FLOAT,
  INTEGER,
  LIST,
  listValue,
  TIMESTAMP,
  timestampValue,
  VARCHAR,
} from '@duckdb/node-api';
import type { Aggregate, ItemResult } from '../eval/metrics.js';
import type { Task } from '../eval/tasks.js';
import { FormatError, isPythiaError } from '../util/errors.js';
import type { CellIdentity, StudyIdentity } from './identity.js';
import { prepareDatabase } from './prepare.js';
import { type ColumnType, tableSpec } from './schema.js';

/** Where a cell sits in the grid: several cells (other settings, another checkpoint) may share one. */
export interface CellKey {
  model: string;
  step: number;
  task: string;
  shots: number;
}

/** A cell as written: its identity, its key (`identityKey`), and what was recorded beside it. */
export interface CellRecord extends CellIdentity {
  cell: string;
  items: number;
  batchSize: number;
  threads: number | null;
  seconds: number;
}

export interface StudyRecord extends StudyIdentity {
  study: string;
  batchSize: number | null;
  threads: number | null;
  seconds: number;
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
  sha256: string;
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
export type CellValue = string | number | boolean | null | readonly number[] | Date;

/**
 * The type each column's values are bound as. Left to itself the client picks a type from the
 * JavaScript value, and a whole-valued double above 2^63 (a perplexity) fails as an out-of-range
 * BIGINT; bound as the column's own type, every value is stored as it is.
 */
const BIND_AS: Record<ColumnType, DuckDBType> = {
  VARCHAR,
  INTEGER,
  BIGINT,
  FLOAT,
  DOUBLE,
  BOOLEAN,
  JSON: VARCHAR,
  'DOUBLE[]': LIST(DOUBLE),
  TIMESTAMP,
};

function bindable(value: CellValue, type: ColumnType, where: string): DuckDBValue {
  if (value === null) return null;
  if (type === 'DOUBLE[]') return listValue(value as readonly number[]);
  if (type === 'TIMESTAMP') return timestampValue(BigInt((value as Date).getTime()) * 1000n);
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

  /**
   * Opens (or, writable, creates) a results database. A file that is not one, is damaged, holds
   * tables other than its schema version's, or cannot be brought to this version is refused with
   * one line naming it, before anything is written.
   */
  static async open(path: string, options: { readOnly?: boolean } = {}): Promise<ResultsStore> {
    const readOnly = options.readOnly ?? false;
    if (!readOnly) mkdirSync(dirname(path), { recursive: true });
    let instance: DuckDBInstance;
    try {
      instance = await DuckDBInstance.create(path, { ...OFFLINE, ...(readOnly ? { access_mode: 'READ_ONLY' } : {}) });
    } catch (e) {
      throw new FormatError(path, `cannot open as a DuckDB results database (${firstLine(e)})`);
    }
    const store = new ResultsStore(path, instance, await instance.connect());
    try {
      await prepareDatabase(store, readOnly);
    } catch (e) {
      store.close();
      if (isPythiaError(e)) throw e;
      throw new FormatError(path, `damaged or unreadable as a results database (${firstLine(e)})`);
    }
    return store;
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
    await this.insertRows('checkpoints', [[c.model, c.step, c.sha256, c.tokens, c.path]], 'INSERT OR REPLACE');
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

  /** The keys of every cell in the database. */
  async finishedCells(): Promise<Set<string>> {
    return new Set((await this.rows('SELECT cell FROM cells')).map((r) => r.cell as string));
  }

  /** Writes one evaluated cell (its items, aggregates and the cell row) in one transaction. */
  async writeCell(cell: CellRecord, items: readonly ItemResult[], aggregates: readonly Aggregate[]): Promise<void> {
    const key = [cell.cell, cell.model, cell.step, cell.task, cell.shots];
    await this.transaction(async () => {
      for (const table of ['item_results', 'aggregates', 'cells'])
        await this.connection.run(`DELETE FROM ${table} WHERE cell = $1`, [cell.cell]);
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
      await this.insertRows('cells', [
        [
          ...key,
          cell.checkpointSha256,
          cell.tokenizerSha256,
          cell.taskSha256,
          cell.outputType,
          cell.seed,
          cell.fewshotSha256,
          cell.limit,
          cell.maxGenTokens,
          cell.device,
          cell.weights,
          cell.items,
          cell.batchSize,
          cell.threads,
          cell.seconds,
          new Date(),
        ],
      ]);
    });
  }

  async hasStudy(study: string): Promise<boolean> {
    return (await this.rows('SELECT 1 FROM studies WHERE study = $1', [study])).length > 0;
  }

  /** Writes a case study's row and, through `rows`, its measurements, in one transaction. */
  async writeStudy(s: StudyRecord, rows: () => Promise<void>): Promise<void> {
    await this.transaction(async () => {
      await this.insertRows(
        'studies',
        [
          [
            s.study,
            s.kind,
            s.model,
            s.step,
            s.checkpointSha256,
            s.tokenizerSha256,
            s.dataSha256,
            s.truthSha256,
            s.sequences,
            s.sampleSeed,
            s.windowSize,
            s.promptLength,
            s.continuationLength,
            s.device,
            s.weights,
            s.batchSize,
            s.threads,
            s.seconds,
            new Date(),
            s.settings === undefined ? null : JSON.stringify(s.settings),
          ],
        ],
        'INSERT OR REPLACE',
      );
      await rows();
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

  /**
   * Inserts rows given by column name, bound as the columns' types: every column of the table must
   * be named (null where a value is absent) and no other, so a row cannot shift into the wrong column.
   */
  async insertObjects(
    table: string,
    rows: readonly Readonly<Record<string, CellValue>>[],
    verb = 'INSERT',
  ): Promise<void> {
    const spec = tableSpec(table);
    const columns = new Set(spec.columns);
    const ordered = rows.map((row) => {
      for (const name of Object.keys(row))
        if (!columns.has(name)) throw new Error(`${table}: no column ${name} (columns: ${spec.columns.join(', ')})`);
      return spec.columns.map((c) => {
        const v = row[c];
        if (v === undefined) throw new Error(`${table}: a row without a value for ${c}`);
        return v;
      });
    });
    await this.insertRows(table, ordered, verb);
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
