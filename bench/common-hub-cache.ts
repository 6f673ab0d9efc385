/**
 * Writes datasets into a Hugging Face hub cache as `huggingface-cli download` leaves one: parquet
 * files in each repository's real schema (column names, order and types: int64 labels, int32
 * locations, string lists, ARC's struct) written by DuckDB's COPY, each a blob named by its sha256
 * linked from `snapshots/<commit>/<path>`, and `refs/<revision>` naming the commit.
 *
 * Shared by bench:harness and the tests that read hub datasets (test/eval/hub-datasets.test.ts,
 * test/interop/lm-eval.test.ts); it imports only Node and DuckDB.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';

/** Each repository's columns, in its order, with DuckDB's types for its features. */
export const SCHEMAS: Record<string, Record<string, string>> = {
  piqa: { goal: 'VARCHAR', sol1: 'VARCHAR', sol2: 'VARCHAR', label: 'BIGINT' },
  winogrande: { sentence: 'VARCHAR', option1: 'VARCHAR', option2: 'VARCHAR', answer: 'VARCHAR' },
  wsc273: {
    text: 'VARCHAR',
    pronoun: 'VARCHAR',
    pronoun_loc: 'INTEGER',
    quote: 'VARCHAR',
    quote_loc: 'INTEGER',
    options: 'VARCHAR[]',
    label: 'BIGINT',
    source: 'VARCHAR',
  },
  lambada_openai: { text: 'VARCHAR' },
  arc: { id: 'VARCHAR', question: 'VARCHAR', choices: 'STRUCT(text VARCHAR[], label VARCHAR[])', answerKey: 'VARCHAR' },
  sciq: {
    question: 'VARCHAR',
    distractor3: 'VARCHAR',
    distractor1: 'VARCHAR',
    distractor2: 'VARCHAR',
    correct_answer: 'VARCHAR',
    support: 'VARCHAR',
  },
  logiqa: { label: 'VARCHAR', context: 'VARCHAR', question: 'VARCHAR', options: 'VARCHAR[]' },
  wikitext: { page: 'VARCHAR' },
};

/** A made-up commit hash. */
export const commit = (n: number) => n.toString(16).padStart(40, '0');

export class HubCacheWriter {
  private staged = 0;

  private constructor(
    /** The hub cache folder (`HF_HUB_CACHE`). */
    readonly cache: string,
    private readonly staging: string,
    private readonly db: DuckDBInstance,
    private readonly connection: DuckDBConnection,
  ) {}

  /** A writer for the hub cache `cache`, staging files in `staging`. */
  static async open(cache: string, staging: string): Promise<HubCacheWriter> {
    const db = await DuckDBInstance.create(':memory:');
    return new HubCacheWriter(cache, staging, db, await db.connect());
  }

  close(): void {
    this.connection.closeSync();
    this.db.closeSync();
  }

  /** Writes rows as a parquet file of the given schema with DuckDB. */
  async writeParquet(path: string, rows: readonly object[], schema: Record<string, string>): Promise<void> {
    mkdirSync(dirname(path), { recursive: true });
    const staging = `${path}.jsonl`;
    writeFileSync(staging, rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
    const columns = Object.entries(schema)
      .map(([k, t]) => `'${k}': '${t}'`)
      .join(', ');
    await this.connection.run(
      `COPY (SELECT * FROM read_json('${staging}', format = 'newline_delimited', columns = {${columns}})) TO '${path}' (FORMAT parquet)`,
    );
    rmSync(staging);
  }

  /** A parquet file in the staging folder, to be placed by `snapshot`. */
  async stagedParquet(rows: readonly object[], schema: Record<string, string>): Promise<string> {
    const path = join(this.staging, `${this.staged++}.parquet`);
    await this.writeParquet(path, rows, schema);
    return path;
  }

  /** A text file in the staging folder. */
  stagedText(name: string, text: string): string {
    const path = join(this.staging, `${this.staged++}-${name}`);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    return path;
  }

  /**
   * A snapshot as huggingface_hub writes one: each staged file moved to a blob named by its sha256,
   * linked from snapshots/<commit>/<path>, and refs/<revision> naming the commit. Returns the snapshot folder.
   */
  snapshot(
    repo: string,
    revision: string,
    commitHash: string,
    files: Record<string, string>,
    hub: string = this.cache,
  ): string {
    const repoDir = join(hub, `datasets--${repo.split('/').join('--')}`);
    const snap = join(repoDir, 'snapshots', commitHash);
    for (const [path, staged] of Object.entries(files)) {
      const bytes = readFileSync(staged);
      const blob = join(repoDir, 'blobs', createHash('sha256').update(bytes).digest('hex'));
      mkdirSync(dirname(blob), { recursive: true });
      renameSync(staged, blob);
      const link = join(snap, path);
      mkdirSync(dirname(link), { recursive: true });
      symlinkSync(relative(dirname(link), blob), link);
    }
    const ref = join(repoDir, 'refs', ...revision.split('/'));
    mkdirSync(dirname(ref), { recursive: true });
    writeFileSync(ref, commitHash);
    return snap;
  }

  /**
   * The parquet conversion of a config (`<config>/<split>/0000.parquet` under refs/refs/convert/parquet),
   * one file per split. Returns the snapshot folder.
   */
  async conversion(
    repo: string,
    config: string,
    splits: Record<string, readonly object[]>,
    schema: Record<string, string>,
    commitHash: string,
    hub: string = this.cache,
  ): Promise<string> {
    const files: Record<string, string> = {};
    for (const [split, docs] of Object.entries(splits))
      files[`${config}/${split}/0000.parquet`] = await this.stagedParquet(docs, schema);
    return this.snapshot(repo, 'refs/convert/parquet', commitHash, files, hub);
  }
}
