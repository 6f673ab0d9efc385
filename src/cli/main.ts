#!/usr/bin/env node
import { readFileSync } from 'node:fs';
/** The `pythia` command line: one subcommand module per area, registered here. */
import { Command, CommanderError } from 'commander';
import { registerActivations } from './commands/activations.js';
import { registerAnalysis } from './commands/analysis.js';
import { registerBatch } from './commands/batch.js';
import { registerData } from './commands/data.js';
import { registerEval } from './commands/eval.js';
import { registerExport } from './commands/export.js';
import { registerHeads } from './commands/heads.js';
import { registerIcl } from './commands/icl.js';
import { registerLens } from './commands/lens.js';
import { registerModel } from './commands/model.js';
import { registerReport } from './commands/report.js';
import { registerResults } from './commands/results.js';
import { registerRun } from './commands/run.js';
import { registerSuite } from './commands/suite.js';
import { registerSynth } from './commands/synth.js';
import { registerTokenLosses } from './commands/token-losses.js';
import { registerTokenizer } from './commands/tokenizer.js';
import { registerTrain } from './commands/train.js';
import { registerTunedLens } from './commands/tuned-lens.js';
import { registerWeights } from './commands/weights.js';
import { handleClosedOutput, reportError } from './errors.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command('pythia')
    .description(
      'Pythia in TypeScript: train GPT-NeoX suites on one data order, replay the data, study every checkpoint',
    )
    .version(pkg.version, '-V, --version')
    .showHelpAfterError('(run with --help for usage)');
  registerModel(program);
  registerActivations(program);
  registerLens(program);
  registerTokenLosses(program);
  registerWeights(program);
  registerHeads(program);
  registerIcl(program);
  registerTunedLens(program);
  registerTokenizer(program);
  registerData(program);
  registerBatch(program);
  registerSynth(program);
  registerTrain(program);
  registerSuite(program);
  registerRun(program);
  registerEval(program);
  registerResults(program);
  registerReport(program);
  registerExport(program);
  registerAnalysis(program);
  return program;
}

async function main(): Promise<void> {
  handleClosedOutput();
  const program = buildProgram().exitOverride();
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) process.exit(e.exitCode);
    reportError(e);
    process.exit(1);
  }
}

await main();
