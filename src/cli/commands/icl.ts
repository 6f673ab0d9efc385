/** `pythia icl`: a checkpoint's induction loss and in-context-learning score. */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { iclPositions, iclScore, inductionLoss } from '../../model/icl.js';
import { type ModelWeights, scorerFor } from '../../model/model-weights.js';
import { REPEAT_LENGTH } from '../../model/repeated-tokens.js';
import { type IclText, iclText, studyContext } from '../../results/heads-study.js';
import { DEFAULT_STUDY_SETTINGS } from '../../results/studies.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import { deviceOption, maxMemoryOption, positiveInt, seed } from '../arguments.js';
import { withModelWeights } from '../open-model.js';
import { checkedTokenRows, repeatedFromFlags } from './heads.js';
import { CACHE_DIR_OPTION, CHECKPOINT_ARGUMENT, checkpointDir, REVISION_OPTION } from './model.js';

interface IclFlags {
  tokens?: string;
  data?: string;
  rows: number;
  sequences: number;
  length?: number;
  seed: number;
  json?: boolean;
  threads?: number;
  device: ExecutionProvider;
  maxMemory?: number;
}

async function runIcl(dir: string, flags: IclFlags): Promise<void> {
  await withModelWeights('icl', dir, flags.maxMemory, (model) => runIclWith(dir, model, flags));
}

async function runIclWith(dir: string, model: ModelWeights, flags: IclFlags): Promise<void> {
  const { config } = model;
  const context = studyContext(dir, config);
  const sequences = repeatedFromFlags(config, context, flags);
  const positions = iclPositions(context);
  const text: IclText | { rows: number[][]; source: 'tokens'; description: string } = flags.tokens
    ? {
        rows: checkedTokenRows(flags.tokens, config, positions.late + 1),
        source: 'tokens',
        description: flags.tokens,
      }
    : await iclText(
        dir,
        positions,
        { rows: flags.rows, data: flags.data === undefined ? undefined : resolve(flags.data) },
        sequences,
      );
  process.stderr.write(
    `pythia icl: induction loss on ${sequences.count} random sequences of 2 × ${sequences.length} tokens (seed ${sequences.seed}); ` +
      `in-context-learning score at positions ${positions.early} and ${positions.late} (50 and 500 of 2048, scaled to a context of ${context}) on ${text.rows.length} rows: ${text.description}\n`,
  );
  const scorer = await scorerFor(model, { threads: flags.threads, provider: flags.device });
  try {
    const induction = await inductionLoss(scorer, sequences.rows);
    const icl = await iclScore(scorer, text.rows, positions);
    const result = {
      induction_loss: induction,
      early_position: icl.early,
      late_position: icl.late,
      early_loss: icl.earlyLoss,
      late_loss: icl.lateLoss,
      icl_score: icl.score,
      text: text.source,
      rows: text.rows.length,
      sequences: sequences.count,
      length: sequences.length,
    };
    if (flags.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      const lines: [string, number, string][] = [
        ['induction loss', induction, `second copy of ${sequences.count} × 2 × ${sequences.length} random tokens`],
        [`loss at position ${icl.early}`, icl.earlyLoss, `${text.rows.length} rows of ${text.source} text`],
        [`loss at position ${icl.late}`, icl.lateLoss, `${text.rows.length} rows of ${text.source} text`],
        ['icl score', icl.score, 'late − early'],
      ];
      const width = Math.max(...lines.map(([label]) => label.length));
      for (const [label, value, what] of lines)
        process.stdout.write(`${label.padEnd(width)}  ${value.toFixed(4).padStart(8)} nats  (${what})\n`);
    }
  } finally {
    scorer.release();
  }
}

export function registerIcl(program: Command): void {
  program
    .command('icl')
    .description(
      "in-context learning: TransformerLens's induction loss (mean loss on the second copy of random tokens repeated twice) and Olsson et al.'s score, the loss at a late position minus at an early one (500 and 50 of 2048, scaled to the model's context), on held-out text",
    )
    .argument('<checkpoint>', CHECKPOINT_ARGUMENT)
    .option('--tokens <file.json>', 'JSON array of token rows for the score, each longer than the late position')
    .option(
      '--data <prefix>',
      "held-out text as a tokenized dataset (.bin/.idx prefix), read from its start (default: the checkpoint's own validation batches; without either, the random sequences)",
    )
    .option('--rows <n>', 'held-out rows for the score', positiveInt, DEFAULT_STUDY_SETTINGS.heldOutRows)
    .option(
      '--sequences <n>',
      'random sequences, each repeated twice, for the induction loss',
      positiveInt,
      DEFAULT_STUDY_SETTINGS.repeatedSequences,
    )
    .option(
      '--length <n>',
      `random tokens per copy (default ${REPEAT_LENGTH}, cut so both copies are shorter than the context)`,
      positiveInt,
    )
    .option('--seed <n>', 'seed of the random tokens', seed, DEFAULT_STUDY_SETTINGS.seed)
    .option(
      '--json',
      'print one JSON object: {induction_loss, early_position, late_position, early_loss, late_loss, icl_score, text, rows, sequences, length}',
    )
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', positiveInt)
    .addOption(deviceOption())
    .addOption(maxMemoryOption())
    .option(...REVISION_OPTION)
    .option(...CACHE_DIR_OPTION)
    .action((spec: string, options) => runIcl(checkpointDir(spec, options), options));
}
