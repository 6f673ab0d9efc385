/**
 * The results database: one DuckDB file (through the official `@duckdb/node-api`) holding models,
 * checkpoints, tasks, per-item results, aggregates and training logs. DuckDB's write-ahead log
 * makes each transaction all-or-nothing across a kill, which is what lets an interrupted
 * evaluation resume cell by cell.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { type DuckDBConnection, DuckDBInstance, type DuckDBValue } from '@duckdb/node-api';
import type { Aggregate, ItemResult } from '../eval/metrics.js';
import type { Task } from '../eval/tasks.js';
import { FormatError } from '../util/errors.js';
import { SCHEMA_VERSION, TABLES, tableSpec, VIEWS } from './schema.js';

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
    await this.connection.run('INSERT OR REPLACE INTO models VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)', [
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
    ]);
  }

  async upsertCheckpoint(c: CheckpointRow): Promise<void> {
    await this.connection.run('INSERT OR REPLACE INTO checkpoints VALUES ($1, $2, $3, $4)', [
      c.model,
      c.step,
      c.tokens,
      c.path,
    ]);
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
      await this.connection.run('INSERT OR REPLACE INTO tasks VALUES ($1, $2, $3, $4, $5)', [
        task.name,
        task.outputType,
        task.items.length,
        task.sha256,
        task.path,
      ]);
      await this.connection.run('DELETE FROM task_items WHERE task = $1', [task.name]);
      await this.insertMany(
        'task_items',
        ['$1', '$2', '$3::JSON'],
        task.items.map((item) => [task.name, item.id, JSON.stringify(item.meta)]),
      );
      await this.connection.run('DELETE FROM item_terms WHERE task = $1', [task.name]);
      await this.insertMany(
        'item_terms',
        ['$1', '$2', '$3'],
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
      await this.insertMany(
        'item_results',
        ['$1', '$2', '$3', '$4', '$5', '$6', '$7', '$8', '$9', '$10', '$11', '$12', '$13', '$14', '$15::DOUBLE[]'],
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
          r.choiceLoglikelihoods ? JSON.stringify(r.choiceLoglikelihoods) : null,
        ]),
      );
      await this.insertMany(
        'aggregates',
        ['$1', '$2', '$3', '$4', '$5', '$6', '$7', '$8'],
        aggregates.map((a) => [...key, a.metric, a.value, a.stderr, a.n]),
      );
      await this.connection.run('INSERT INTO cells VALUES ($1, $2, $3, $4, $5, $6, $7)', [
        ...key,
        seed,
        items.length,
        seconds,
      ]);
    });
  }

  /** Replaces a model's training log (log.jsonl rows). */
  async loadTrainingLog(model: string, rows: readonly TrainingLogRow[]): Promise<void> {
    const byStep = new Map<number, TrainingLogRow>();
    for (const r of rows) byStep.set(r.step, { ...byStep.get(r.step), ...r });
    await this.transaction(async () => {
      await this.connection.run('DELETE FROM training_log WHERE model = $1', [model]);
      await this.insertMany(
        'training_log',
        ['$1', '$2', '$3', '$4', '$5', '$6', '$7'],
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

  /** Inserts rows, each one value per column of the table in schema order. */
  async insertRows(table: string, rows: readonly DuckDBValue[][]): Promise<void> {
    const spec = tableSpec(table);
    await this.insertMany(
      table,
      spec.columns.map((_, i) => `$${i + 1}`),
      rows,
    );
  }

  /** Inserts rows in chunks of one multi-row statement each; `placeholders` are one row's, numbered from $1. */
  private async insertMany(
    table: string,
    placeholders: readonly string[],
    rows: readonly DuckDBValue[][],
  ): Promise<void> {
    const width = placeholders.length;
    const chunk = Math.max(1, Math.floor(2000 / width));
    for (let start = 0; start < rows.length; start += chunk) {
      const part = rows.slice(start, start + chunk);
      const tuples = part.map(
        (_, r) =>
          `(${placeholders.map((p) => p.replace(/\$(\d+)/, (_m, d: string) => `$${r * width + Number(d)}`)).join(', ')})`,
      );
      await this.connection.run(`INSERT INTO ${table} VALUES ${tuples.join(', ')}`, part.flat());
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
