/**
 * What opening a results database checks and does before anything else touches it: the file is a
 * pythia-ts database of a version this code reads, every block of its tables reads back (DuckDB
 * checks each block's checksum as it reads it), and its tables and columns are its version's. A
 * writable open of an empty file creates the schema; of an older version, brings it up to date in
 * one transaction (schema.ts's MIGRATIONS) or refuses with the command that rebuilds it.
 */
import { FormatError } from '../util/errors.js';
import { MIGRATIONS, SCHEMA_VERSION, TABLES, VIEWS } from './schema.js';
import type { ResultsStore } from './store.js';

async function baseTables(store: ResultsStore): Promise<Set<string>> {
  const rows = await store.rows(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' AND table_type = 'BASE TABLE'",
  );
  return new Set(rows.map((r) => r.table_name as string));
}

async function schemaVersion(store: ResultsStore): Promise<number> {
  const value = (await store.rows("SELECT value FROM meta WHERE key = 'schema_version'"))[0]?.value;
  const version = Number(value);
  if (typeof value !== 'string' || !Number.isInteger(version) || version < 1)
    throw new FormatError(store.path, `meta.schema_version: expected an integer, got ${JSON.stringify(value ?? null)}`);
  return version;
}

/** Reads every row of every table of ours that is there: a damaged block fails here, not halfway through a run. */
async function readEveryBlock(store: ResultsStore, present: ReadonlySet<string>): Promise<void> {
  for (const t of TABLES)
    if (present.has(t.name)) await store.rows(`SELECT count(*) AS n, bit_xor(hash(t)) AS h FROM ${t.name} AS t`);
}

/** Refuses a database whose tables or columns (names, order, types) are not schema version SCHEMA_VERSION's. */
async function checkTables(store: ResultsStore): Promise<void> {
  const rows = await store.rows(
    `SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c
     JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
     WHERE c.table_schema = 'main' AND t.table_type = 'BASE TABLE' ORDER BY c.table_name, c.ordinal_position`,
  );
  const actual = new Map<string, string[]>();
  for (const r of rows) {
    const name = r.table_name as string;
    actual.set(name, [...(actual.get(name) ?? []), `${r.column_name as string} ${r.data_type as string}`]);
  }
  for (const t of TABLES) {
    const have = actual.get(t.name);
    if (!have)
      throw new FormatError(store.path, `table ${t.name} is missing (schema version ${SCHEMA_VERSION} has it)`);
    const want = t.columns.map((c, i) => `${c} ${t.types[i]}`);
    const at = want.findIndex((w, i) => have[i] !== w);
    if (at >= 0 || have.length !== want.length) {
      const i = at >= 0 ? at : want.length;
      throw new FormatError(
        store.path,
        `table ${t.name}: column ${i + 1} is ${have[i] ?? 'missing'}, schema version ${SCHEMA_VERSION} has ${want[i] ?? 'no more columns'}`,
      );
    }
  }
}

/** Refuses an older version that no migration step brings up to date. */
function checkUpgradable(path: string, version: number): void {
  for (let v = version; v < SCHEMA_VERSION; v++) {
    const step = MIGRATIONS.find((m) => m.from === v);
    if (!step || step.refuse !== undefined)
      throw new FormatError(
        path,
        `schema version ${version} cannot be upgraded to ${SCHEMA_VERSION}: ${step?.refuse ?? 'no migration'}; ` +
          `move it aside and rebuild it with \`pythia eval <suite or checkpoints> --db ${path}\``,
      );
  }
}

export async function prepareDatabase(store: ResultsStore, readOnly: boolean): Promise<void> {
  const present = await baseTables(store);
  if (present.size === 0) {
    if (readOnly) throw new FormatError(store.path, 'not a pythia-ts results database (empty)');
    await store.transaction(async () => {
      for (const t of TABLES) await store.connection.run(t.ddl);
      await finish(store);
    });
    return;
  }
  if (!present.has('meta')) throw new FormatError(store.path, 'not a pythia-ts results database (no meta table)');
  const version = await schemaVersion(store);
  if (version > SCHEMA_VERSION)
    throw new FormatError(
      store.path,
      `meta.schema_version: ${version} is newer than this pythia-ts understands (${SCHEMA_VERSION}); upgrade pythia-ts to read it`,
    );
  checkUpgradable(store.path, version);
  await readEveryBlock(store, present);
  if (version < SCHEMA_VERSION && readOnly)
    throw new FormatError(
      store.path,
      `schema version ${version} is older than this pythia-ts's (${SCHEMA_VERSION}); any writing command upgrades it (\`pythia eval … --db ${store.path}\`)`,
    );
  if (readOnly) return checkTables(store);
  await store.transaction(async () => {
    for (let v = version; v < SCHEMA_VERSION; v++) {
      for (const t of TABLES.filter((x) => x.since === v + 1)) await store.connection.run(t.ddl);
      for (const sql of MIGRATIONS.find((m) => m.from === v)?.sql ?? []) await store.connection.run(sql);
    }
    await checkTables(store);
    await finish(store);
  });
}

/** Recreates the views (so they match this code) and records the schema version. */
async function finish(store: ResultsStore): Promise<void> {
  for (const v of VIEWS) await store.connection.run(`CREATE OR REPLACE VIEW ${v.name} AS ${v.sql}`);
  await store.connection.run('INSERT OR REPLACE INTO meta VALUES ($1, $2)', ['schema_version', String(SCHEMA_VERSION)]);
}
