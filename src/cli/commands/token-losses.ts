/**
 * `pythia token-losses`: the loss of every held-out token at one checkpoint (the token-curves
 * study's numbers): a suite checkpoint's own validation batches, or the first tokens of `--data`.
 */
import type { Command } from 'commander';
import { heldOutTokens } from '../../analysis/held-out.js';
import { lossBatchRows, scorableLength, tokenLosses } from '../../analysis/token-curves.js';
import { readTrainingRecord } from '../../analysis/training-record.js';
import { type ModelWeights, scorerFor } from '../../model/model-weights.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import { deviceOption, maxMemoryOption, positiveInt } from '../arguments.js';
import { UserError } from '../errors.js';
import { withModelWeights } from '../open-model.js';
import { CACHE_DIR_OPTION, CHECKPOINT_ARGUMENT, checkpointDir, REVISION_OPTION } from './model.js';

interface TokenLossesFlags {
  data?: string;
  rows: number;
  length?: number;
  batchSize: number;
  json?: boolean;
  threads?: number;
  device: ExecutionProvider;
  maxMemory?: number;
}

const DEFAULT_LENGTH = 1024;

function quantile(sorted: Float32Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function runTokenLosses(dir: string, flags: TokenLossesFlags): Promise<void> {
  await withModelWeights('token-losses', dir, flags.maxMemory, (model) => runTokenLossesWith(dir, model, flags));
}

async function runTokenLossesWith(dir: string, model: ModelWeights, flags: TokenLossesFlags): Promise<void> {
  const { config } = model;
  if (flags.length !== undefined && flags.length < 2)
    throw new UserError('--length: at least 2 tokens per row (the first is only context)');
  if (flags.length !== undefined && flags.length > config.maxPositions + 1)
    throw new UserError(
      `--length: ${flags.length} tokens is more than this model reads (max_position_embeddings ${config.maxPositions}, plus the token predicted last)`,
    );
  const seqLength = flags.data === undefined ? readTrainingRecord(dir).seqLength : undefined;
  const length = flags.length ?? scorableLength(DEFAULT_LENGTH, config.maxPositions, seqLength);
  const held = await heldOutTokens(dir, { rows: flags.rows, length, data: flags.data });
  process.stderr.write(
    `pythia token-losses: ${held.description}: ${held.rows} × ${held.length} tokens (${held.rows * (held.length - 1)} predicted)\n`,
  );
  const batchRows = lossBatchRows(held.length, config.vocabSize, flags.batchSize);
  const scorer = await scorerFor(model, { threads: flags.threads, provider: flags.device });
  let losses: Float32Array;
  try {
    losses = await tokenLosses(scorer, held, batchRows);
  } finally {
    scorer.release();
  }
  const per = held.length - 1;
  if (flags.json) {
    const out: string[] = [];
    for (let i = 0; i < losses.length; i++) {
      const row = Math.floor(i / per);
      const position = (i % per) + 1;
      const token = held.tokens[row * held.length + position]!;
      out.push(JSON.stringify({ row, position, token, loss: losses[i] }));
    }
    process.stdout.write(`${out.join('\n')}\n`);
    return;
  }
  const sorted = Float32Array.from(losses).sort();
  let sum = 0;
  for (const l of losses) sum += l;
  process.stdout.write(
    `${[
      `tokens   ${losses.length}`,
      `mean     ${(sum / losses.length).toFixed(4)} nats`,
      `p10      ${quantile(sorted, 0.1).toFixed(4)}`,
      `median   ${quantile(sorted, 0.5).toFixed(4)}`,
      `p90      ${quantile(sorted, 0.9).toFixed(4)}`,
      `sha256   ${held.sha256} (held-out tokens)`,
    ].join('\n')}\n`,
  );
}

export function registerTokenLosses(program: Command): void {
  program
    .command('token-losses')
    .description(
      "the loss (nats) of every held-out token at a checkpoint, the token-curves study's numbers: a summary, or with --json one line per token",
    )
    .argument('<checkpoint>', CHECKPOINT_ARGUMENT)
    .option(
      '--data <prefix>',
      "held-out text as a tokenized dataset (.bin/.idx prefix), read from its start (default: a suite checkpoint's own validation batches; required for other checkpoints)",
    )
    .option('--rows <n>', 'rows of held-out tokens', positiveInt, 16)
    .option(
      '--length <n>',
      `tokens per row (default: ${DEFAULT_LENGTH}, at most the model's context + 1 and a training sample)`,
      positiveInt,
    )
    .option(
      '--batch-size <n>',
      'most rows scored at once (fewer where their logits would pass 256 MiB)',
      positiveInt,
      64,
    )
    .option('--json', 'print one JSON object per predicted token: {row, position, token, loss}')
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', positiveInt)
    .addOption(deviceOption())
    .addOption(maxMemoryOption())
    .option(...REVISION_OPTION)
    .option(...CACHE_DIR_OPTION)
    .action((spec: string, options: TokenLossesFlags & { revision?: string; cacheDir?: string }) =>
      runTokenLosses(checkpointDir(spec, options), options),
    );
}
