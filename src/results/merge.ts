/**
 * Combining and exporting results databases. Merging takes the union of every table; a row whose
 * key is already present must be identical (timings aside), else the merge is refused, so shards
 * of one grid merge cleanly and two disagreeing runs never silently mix.
 */
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tempPathFor } from '../util/atomic.js';
import { ConfigError, FormatError, isSystemError } from '../util/errors.js';
import { TABLES, type TableSpec } from './schema.js';
import { ResultsStore } from './store.js';

const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** Where a row sits: its model, step, task and shots where it has them, then the rest of its key (hashes shortened). */
function describeRow(t: TableSpec, row: Record<string, unknown>): string {
  const hashes = ['cell', 'study'];
  const where = ['model', 'step', 'task', 'shots'].filter((c) => t.columns.includes(c));
  const rest = t.key.filter((k) => !where.includes(k) && !hashes.includes(k));
  const fields = [...where, ...rest].map((c) => `${c}=${String(row[c])}`);
  const ids = t.key.filter((k) => hashes.includes(k)).map((k) => `${k} ${String(row[k]).slice(0, 12)}…`);
  return fields.join(', ') + (ids.length > 0 ? ` (${ids.join(', ')})` : '');
}

export async function mergeDatabases(
  inputs: readonly string[],
  out: string,
  options: { force?: boolean } = {},
): Promise<{ rows: Record<string, number> }> {
  if (inputs.length === 0) throw new ConfigError('results merge: name at least one database to merge');
  if (existsSync(out) && !options.force) throw new ConfigError(`--out: ${out} exists (pass --force to replace it)`);
  for (const input of inputs) {
    if (!existsSync(input)) throw new FormatError(input, 'no such results database');
    // Opening read-only checks each input's schema version before anything is written.
    (await ResultsStore.open(input, { readOnly: true })).close();
  }
  if (existsSync(out) && statSync(out).isDirectory())
    throw new ConfigError(`--out: ${out} is a directory, expected a results database file`);
  // Merged into a temporary file beside --out, renamed over it only when whole.
  const tmp = tempPathFor(out);
  try {
    const rows = await mergeInto(tmp, inputs);
    renameSync(tmp, out);
    return { rows };
  } catch (e) {
    rmSync(tmp, { force: true });
    rmSync(`${tmp}.wal`, { force: true });
    throw namedAsOut(e, tmp, out);
  }
}

/** An error about the temporary file, told about --out: the file the user named. */
function namedAsOut(e: unknown, tmp: string, out: string): unknown {
  if (isSystemError(e) && e.path?.startsWith(tmp)) e.path = out + e.path.slice(tmp.length);
  if (e instanceof FormatError && e.file === tmp) return new FormatError(out, e.message.slice(tmp.length + 2));
  return e;
}

async function mergeInto(tmp: string, inputs: readonly string[]): Promise<Record<string, number>> {
  const store = await ResultsStore.open(tmp);
  try {
    for (const [n, input] of inputs.entries()) {
      const alias = `src${n}`;
      await store.connection.run(`ATTACH ${quote(input)} AS ${alias} (READ_ONLY)`);
      for (const t of TABLES) {
        if (t.name === 'meta') continue;
        const compared = t.columns.filter((c) => !t.key.includes(c) && !(t.volatile ?? []).includes(c));
        if (compared.length > 0) {
          const differs = compared.map((c) => `s.${c} IS DISTINCT FROM m.${c}`).join(' OR ');
          const conflict = await store.rows(
            `SELECT s.* FROM ${alias}.${t.name} s JOIN main.${t.name} m USING (${t.key.join(', ')}) WHERE ${differs} LIMIT 1`,
          );
          if (conflict.length > 0) {
            throw new FormatError(
              input,
              `conflicts with an earlier input in table ${t.name} at ${describeRow(t, conflict[0]!)}: the same key with other values; refusing to merge`,
            );
          }
        }
        await store.connection.run(
          `INSERT OR IGNORE INTO main.${t.name} SELECT ${t.columns.join(', ')} FROM ${alias}.${t.name}`,
        );
      }
      await store.connection.run(`DETACH ${alias}`);
    }
    const rows: Record<string, number> = {};
    for (const t of TABLES)
      rows[t.name] = (await store.rows(`SELECT count(*)::INTEGER AS n FROM ${t.name}`))[0]!.n as number;
    return rows;
  } finally {
    store.close();
  }
}

export type ExportFormat = 'parquet' | 'csv';

/** Writes every table (or the named ones) as `<out>/<table>.<format>`, each file atomically. */
export async function exportTables(
  db: string,
  out: string,
  format: ExportFormat,
  tables?: readonly string[],
): Promise<string[]> {
  const names = tables && tables.length > 0 ? tables : TABLES.map((t) => t.name);
  for (const name of names) {
    if (!TABLES.some((t) => t.name === name))
      throw new ConfigError(`--tables: unknown table ${name} (tables: ${TABLES.map((t) => t.name).join(', ')})`);
  }
  mkdirSync(out, { recursive: true });
  const store = await ResultsStore.open(db, { readOnly: true });
  const written: string[] = [];
  try {
    for (const name of names) {
      const path = join(out, `${name}.${format}`);
      const tmp = tempPathFor(path);
      const options = format === 'parquet' ? '(FORMAT parquet)' : '(FORMAT csv, HEADER)';
      await store.connection.run(`COPY (SELECT * FROM ${name}) TO ${quote(tmp)} ${options}`);
      renameSync(tmp, path);
      written.push(path);
    }
  } finally {
    store.close();
  }
  return written;
}
