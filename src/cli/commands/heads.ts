/** `pythia heads`: TransformerLens's attention-head detector scores of every head of a checkpoint. */
import type { Command } from 'commander';
import type { NeoXConfig } from '../../model/config.js';
import { type HeadScore, headScores } from '../../model/head-detectors.js';
import { activationRunner, type ModelWeights } from '../../model/model-weights.js';
import { REPEAT_LENGTH } from '../../model/repeated-tokens.js';
import { repeatedSequences, studyContext } from '../../results/heads-study.js';
import { DEFAULT_STUDY_SETTINGS } from '../../results/studies.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import { deviceOption, maxMemoryOption, positiveInt, seed } from '../arguments.js';
import { UserError } from '../errors.js';
import { withModelWeights } from '../open-model.js';
import { CACHE_DIR_OPTION, CHECKPOINT_ARGUMENT, checkpointDir, REVISION_OPTION, readTokenRows } from './model.js';

interface HeadsFlags {
  tokens?: string;
  sequences: number;
  length?: number;
  seed: number;
  json?: boolean;
  threads?: number;
  device: ExecutionProvider;
  maxMemory?: number;
}

/** Rows of a --tokens file, each checked against the model: ids in the vocabulary, lengths from `min` to the context. */
export function checkedTokenRows(path: string, config: NeoXConfig, min: number): number[][] {
  const rows = readTokenRows(path, false);
  rows.forEach((row, r) => {
    if (row.length < min || row.length > config.maxPositions)
      throw new UserError(
        `${path}: row ${r} has ${row.length} tokens; expected ${min} to ${config.maxPositions} (the model's context)`,
      );
    const bad = row.findIndex((id) => id >= config.vocabSize);
    if (bad >= 0)
      throw new UserError(
        `${path}: row ${r} position ${bad}: token id ${row[bad]} is outside the vocabulary [0, ${config.vocabSize})`,
      );
  });
  return rows;
}

/** The repeated sequences of --sequences/--length/--seed; a --length whose two copies do not fit is refused, not cut. */
export function repeatedFromFlags(
  config: NeoXConfig,
  context: number,
  flags: { sequences: number; length?: number; seed: number },
) {
  if (flags.length !== undefined && 2 * flags.length >= context)
    throw new UserError(
      `--length ${flags.length}: two copies are ${2 * flags.length} tokens; they must be shorter than the context of ${context}`,
    );
  return repeatedSequences(config, context, flags);
}

function printTable(scores: readonly HeadScore[]): void {
  const header = ['layer', 'head', 'previous_token', 'duplicate_token', 'induction'];
  const rows = scores.map((s) => [
    String(s.layer),
    String(s.head),
    s.previousToken.toFixed(4),
    s.duplicateToken.toFixed(4),
    s.induction.toFixed(4),
  ]);
  const widths = header.map((h, j) => Math.max(h.length, ...rows.map((row) => row[j]!.length)));
  const line = (cells: string[]) => cells.map((c, j) => c.padStart(widths[j]!)).join('  ');
  process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
}

async function runHeads(dir: string, flags: HeadsFlags): Promise<void> {
  await withModelWeights('heads', dir, flags.maxMemory, (model) => runHeadsWith(dir, model, flags));
}

async function runHeadsWith(dir: string, model: ModelWeights, flags: HeadsFlags): Promise<void> {
  const { config } = model;
  let rows: number[][];
  if (flags.tokens) {
    rows = checkedTokenRows(flags.tokens, config, 2);
    process.stderr.write(`pythia heads: ${rows.length} sequences of ${flags.tokens}\n`);
  } else {
    const sequences = repeatedFromFlags(config, studyContext(dir, config), flags);
    rows = sequences.rows;
    process.stderr.write(
      `pythia heads: ${sequences.count} random sequences of 2 × ${sequences.length} tokens (ids in [${sequences.range.low}, ${sequences.range.high}), seed ${sequences.seed})\n`,
    );
  }
  const runner = activationRunner(model, { threads: flags.threads, provider: flags.device });
  try {
    const scores = await headScores(runner, rows);
    if (flags.json)
      for (const s of scores)
        process.stdout.write(
          `${JSON.stringify({ layer: s.layer, head: s.head, previous_token: s.previousToken, duplicate_token: s.duplicateToken, induction: s.induction })}\n`,
        );
    else printTable(scores);
  } finally {
    await runner.release();
  }
}

export function registerHeads(program: Command): void {
  program
    .command('heads')
    .description(
      'TransformerLens\'s attention-head detectors (detect_head, "mul" measure): per head the share of its attention on the previous token, on earlier copies of the current token, and on the token after an earlier copy (induction), averaged over sequences',
    )
    .argument('<checkpoint>', CHECKPOINT_ARGUMENT)
    .option('--tokens <file.json>', 'JSON array of token rows (2 tokens up to the context each) instead of random ones')
    .option(
      '--sequences <n>',
      'random sequences, each repeated twice',
      positiveInt,
      DEFAULT_STUDY_SETTINGS.repeatedSequences,
    )
    .option(
      '--length <n>',
      `random tokens per copy (default ${REPEAT_LENGTH}, cut so both copies are shorter than the context)`,
      positiveInt,
    )
    .option('--seed <n>', 'seed of the random tokens', seed, DEFAULT_STUDY_SETTINGS.seed)
    .option('--json', 'print one JSON object per head: {layer, head, previous_token, duplicate_token, induction}')
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', positiveInt)
    .addOption(deviceOption())
    .addOption(maxMemoryOption())
    .option(...REVISION_OPTION)
    .option(...CACHE_DIR_OPTION)
    .action((spec: string, options) => runHeads(checkpointDir(spec, options), options));
}
