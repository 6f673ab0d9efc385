/** `pythia results`: merge shard databases, export tables, show aggregates. */
import { type Command, InvalidArgumentError } from 'commander';
import type { EvaluateSummary } from '../../results/evaluate.js';
import { type ExportFormat, exportTables, mergeDatabases } from '../../results/merge.js';
import { ResultsStore } from '../../results/store.js';
import { formatSummary, resultsJson } from './eval.js';

function exportFormat(value: string): ExportFormat {
  if (value !== 'parquet' && value !== 'csv') throw new InvalidArgumentError('expected parquet or csv.');
  return value;
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
    .description('print the aggregates (metric ± standard error per model, step, task and shots)')
    .argument('<database>', 'a results.duckdb file')
    .option('--json', 'as JSON')
    .action(async (db: string, flags: { json?: boolean }) => {
      const store = await ResultsStore.open(db, { readOnly: true });
      try {
        const rows = (await store.rows(
          'SELECT model, step, task, shots, metric, value, stderr, n FROM aggregates ORDER BY model, step, task, shots, metric',
        )) as EvaluateSummary['rows'];
        if (flags.json) process.stdout.write(resultsJson(rows));
        else process.stdout.write(formatSummary(rows));
      } finally {
        store.close();
      }
    });
}
