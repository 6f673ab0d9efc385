/** `pythia results`: merge shard databases, export tables, show aggregates. */
import { type Command, InvalidArgumentError } from 'commander';
import { type ExportFormat, exportTables, mergeDatabases } from '../../results/merge.js';
import { ResultsStore } from '../../results/store.js';
import { formatTable, resultsJson } from './eval.js';

function exportFormat(value: string): ExportFormat {
  if (value !== 'parquet' && value !== 'csv') throw new InvalidArgumentError('expected parquet or csv.');
  return value;
}

/** Every aggregate with the identity of the cell it belongs to. */
const SHOW = `SELECT a.model, a.step, a.task, a.shots, a.metric, a.value, a.stderr, a.n, a.cell,
    c.checkpoint_sha256, c.tokenizer_sha256, c.task_sha256, c.output_type, c.seed, c.fewshot_sha256, c.item_limit,
    c.max_gen_tokens, c.device, c.weights, c.items, c.batch_size, c.threads, c.finished_at
  FROM aggregates a JOIN cells c USING (cell)
  ORDER BY a.model, a.step, a.task, a.shots, c.finished_at NULLS FIRST, a.cell, a.metric`;

const short = (sha: unknown): string => (typeof sha === 'string' ? sha.slice(0, 8) : '-');
const orDash = (v: unknown): string => (v === null || v === undefined ? '-' : String(v));
const fixed = (v: unknown): string => (typeof v === 'number' ? v.toFixed(4) : '-');

/** The aggregates as text, each row with the settings of its cell (hashes shortened to 8 hex digits). */
export function formatShown(rows: readonly Record<string, unknown>[]): string {
  const header = [
    'model',
    'step',
    'task',
    'shots',
    'metric',
    'value',
    'stderr',
    'checkpoint',
    'tokenizer',
    'seed',
    'limit',
    'max_gen',
    'fewshot',
    'device',
    'weights',
  ];
  const cells = rows.map((r) => [
    String(r.model),
    String(r.step),
    String(r.task),
    String(r.shots),
    String(r.metric),
    fixed(r.value),
    fixed(r.stderr),
    short(r.checkpoint_sha256),
    short(r.tokenizer_sha256),
    orDash(r.seed),
    r.item_limit === null ? 'all' : String(r.item_limit),
    orDash(r.max_gen_tokens),
    short(r.fewshot_sha256),
    String(r.device),
    String(r.weights),
  ]);
  return formatTable(header, cells, ['value', 'stderr']);
}

export function registerResults(program: Command): void {
  const results = program
    .command('results')
    .description('work with results databases (DuckDB) written by `pythia eval`');
  results
    .command('merge')
    .description('combine databases (the shards of an array job) into one; refuses rows that conflict')
    .argument('<databases...>', 'results.duckdb files')
    .requiredOption('--out <file>', 'the merged database')
    .option('--force', 'replace --out if it exists')
    .action(async (inputs: string[], flags: { out: string; force?: boolean }) => {
      const { rows } = await mergeDatabases(inputs, flags.out, { force: flags.force });
      process.stderr.write(
        `pythia results merge: ${inputs.length} databases into ${flags.out} (${rows.cells} cells, ${rows.item_results} item rows)\n`,
      );
    });
  results
    .command('export')
    .description('write the tables as Parquet or CSV files, one per table')
    .argument('<database>', 'a results.duckdb file')
    .requiredOption('--out <dir>', 'folder for <table>.parquet or <table>.csv')
    .option('--format <format>', 'parquet or csv', exportFormat, 'parquet' as ExportFormat)
    .option('--tables <names...>', 'only these tables')
    .action(async (db: string, flags: { out: string; format: ExportFormat; tables?: string[] }) => {
      const written = await exportTables(db, flags.out, flags.format, flags.tables);
      for (const path of written) process.stdout.write(`${path}\n`);
    });
  results
    .command('show')
    .description(
      'print the aggregates (metric ± standard error per model, step, task and shots), each with the settings of its cell',
    )
    .argument('<database>', 'a results.duckdb file')
    .option('--json', 'as JSON')
    .action(async (db: string, flags: { json?: boolean }) => {
      const store = await ResultsStore.open(db, { readOnly: true });
      try {
        const rows = await store.rows(SHOW);
        if (flags.json) process.stdout.write(resultsJson(rows));
        else process.stdout.write(formatShown(rows));
      } finally {
        store.close();
      }
    });
}
