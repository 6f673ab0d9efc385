/**
 * A results database that is damaged (a block whose bytes changed) or whose tables are not its
 * schema version's is refused when it is opened: one line naming the file, before `pythia eval`
 * loads or scores a checkpoint, and nothing left behind (no `.wal`, the file as it was).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { SCHEMA_VERSION, TABLES } from '../../src/results/schema.js';
import { makeWorld, writeCheckpoint, writeTasks } from '../eval/support.js';
import { repoRoot } from '../support/paths.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'pythia-database-'));
let checkpoint: string;
let tasks: Record<string, string>;
/** A database holding the choice task's cell of `checkpoint`; evaluating lambada into it is new work. */
let whole: string;

function pythia(...args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
}

const literal = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `pythia eval` (work to do: the lambada cell) and `pythia results show` on `db` each fail with one line about it. */
function assertRefused(db: string, why: RegExp): void {
  const before = readFileSync(db);
  const runs = [
    pythia('eval', checkpoint, '--tasks', tasks.choice!, tasks.lambada!, '--db', db, '--threads', '1'),
    pythia('results', 'show', db),
  ];
  for (const r of runs) {
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^pythia: ${literal(db)}: ${why.source}`));
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line, no plan or progress: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /internal error/);
  }
  assert.ok(!existsSync(`${db}.wal`), 'no write-ahead log left behind');
  assert.deepEqual(readFileSync(db), before, 'the file as it was');
}

/** Runs statements on a database with DuckDB itself. */
async function duckdb(path: string, ...sql: string[]): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(path);
  const connection = await instance.connect();
  try {
    let rows: Record<string, unknown>[] = [];
    for (const s of sql) rows = (await connection.runAndReadAll(s)).getRowObjectsJS() as Record<string, unknown>[];
    return rows;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

before(async () => {
  const world = await makeWorld(dir);
  tasks = writeTasks(dir);
  checkpoint = join(dir, 'tiny', 'step1');
  await writeCheckpoint(world, checkpoint, 1);
  whole = join(dir, 'whole.duckdb');
  const r = pythia('eval', checkpoint, '--tasks', tasks.choice!, '--db', whole, '--threads', '1');
  assert.equal(r.status, 0, r.stderr);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('a damaged block of any table is refused on open, naming the file, before any checkpoint is loaded', async () => {
  // Where DuckDB keeps each table's data: blocks of 256 KiB after a 12 KiB file header.
  const blocks = new Set<number>();
  for (const t of TABLES) {
    const rows = await duckdb(
      whole,
      `SELECT DISTINCT block_id FROM pragma_storage_info('${t.name}') WHERE block_id >= 0 ORDER BY block_id`,
    );
    for (const r of rows) blocks.add(Number(r.block_id));
  }
  assert.ok(blocks.size > 0, 'the tables hold data blocks');
  for (const block of blocks) {
    const db = join(dir, `damaged-${block}.duckdb`);
    copyFileSync(whole, db);
    const bytes = readFileSync(db);
    // Changed bytes that differ from each other: DuckDB's block checksum XORs a hash of each 8-byte
    // word, so the same change to an even number of equal words (zeros, past a table's rows) cancels.
    const at = 12288 + block * 262144 + 64;
    for (let i = at; i < at + 256; i++) bytes[i] = (bytes[i]! + 1 + (i % 251)) & 0xff;
    writeFileSync(db, bytes);
    assertRefused(db, /damaged or unreadable as a results database \(.*(checksum|Corrupt)/);
  }
});

test('tables that are not the schema version’s are refused on open, naming the table and the column', async () => {
  const dropped = join(dir, 'dropped-column.duckdb');
  copyFileSync(whole, dropped);
  await duckdb(dropped, 'ALTER TABLE cells DROP COLUMN device', 'CHECKPOINT');
  assertRefused(
    dropped,
    new RegExp(`table cells: column 14 is weights VARCHAR, schema version ${SCHEMA_VERSION} has device VARCHAR`),
  );

  const retyped = join(dir, 'retyped-column.duckdb');
  copyFileSync(whole, retyped);
  await duckdb(retyped, 'ALTER TABLE aggregates ALTER value TYPE VARCHAR', 'CHECKPOINT');
  assertRefused(
    retyped,
    new RegExp(`table aggregates: column 7 is value VARCHAR, schema version ${SCHEMA_VERSION} has value DOUBLE`),
  );

  const missing = join(dir, 'missing-table.duckdb');
  copyFileSync(whole, missing);
  await duckdb(missing, 'DROP TABLE studies', 'CHECKPOINT');
  assertRefused(missing, new RegExp(`table studies is missing \\(schema version ${SCHEMA_VERSION} has it\\)`));
});
