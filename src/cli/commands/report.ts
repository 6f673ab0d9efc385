/** `pythia report`: a suite's results database drawn as one self-contained HTML page (and figures for papers). */
import type { Command } from 'commander';
import { writeReport } from '../../report/report.js';

export function registerReport(program: Command): void {
  program
    .command('report')
    .description(
      "draw a suite's results database (loss, benchmarks, memorization, term frequency, bias) as one self-contained HTML page " +
        '(<suite>/report/index.html: opens from disk with no network; static SVG, interactive with JavaScript)',
    )
    .argument(
      '<suite>',
      'suite folder (its suite.json and results.duckdb, written by `pythia suite` and `pythia eval`)',
    )
    .option('--db <file>', 'results database (default: <suite>/results.duckdb)')
    .option('--out <dir>', 'folder for index.html (default: <suite>/report)')
    .option('--figures <dir>', 'also write every chart as <chart>.svg and <chart>.png (for papers)')
    .action(async (suite: string, flags: { db?: string; out?: string; figures?: string }) => {
      const r = await writeReport({ suiteDir: suite, db: flags.db, outDir: flags.out, figuresDir: flags.figures });
      process.stderr.write(
        `pythia report: ${r.drawn.length} charts drawn, ${r.empty.length} waiting for data (${r.empty.join(', ') || 'none'})\n`,
      );
      if (flags.figures) process.stderr.write(`pythia report: ${r.figures.length} figure files in ${flags.figures}\n`);
      process.stdout.write(`${r.html}\n`);
    });
}
