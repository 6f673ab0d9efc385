/**
 * `pythia lens`: the logit lens of a checkpoint, per layer KL, cross-entropy, entropy, top-1, on
 * token rows (`--tokens`) or held-out text (its own validation batches, or `--data`), and in bits
 * per byte where a tokenizer counts the text's bytes.
 */
import type { Command } from 'commander';
import { bitsPerByteFactor, heldOutTokens, longestHeldOutRow } from '../../analysis/held-out.js';
import { loadTokenizer } from '../../data/tokenizer.js';
import { tokenMatrix } from '../../model/forward.js';
import { type LensLayer, logitLens } from '../../model/logit-lens.js';
import { activationRunner, headParams, type ModelWeights, modelTokenizerPath } from '../../model/model-weights.js';
import { DEFAULT_STUDY_SETTINGS } from '../../results/studies.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import {
  addTokenizerOption,
  deviceOption,
  maxMemoryOption,
  positiveInt,
  type TokenizerFlags,
  tokenizerFlag,
} from '../arguments.js';
import { UserError } from '../errors.js';
import { withModelWeights } from '../open-model.js';
import { CACHE_DIR_OPTION, CHECKPOINT_ARGUMENT, checkpointDir, REVISION_OPTION, readTokenRows } from './model.js';

interface LensFlags extends TokenizerFlags {
  tokens?: string;
  data?: string;
  rows: number;
  length?: number;
  json?: boolean;
  threads?: number;
  device: ExecutionProvider;
  maxMemory?: number;
}

/** A layer's metrics, with KL and cross-entropy in bits per byte where the text's bytes are known. */
type LensRow = LensLayer & { kl_bpb?: number; ce_bpb?: number };

function printTable(layers: readonly LensRow[]): void {
  const bpb = layers[0]?.kl_bpb !== undefined;
  const header = ['layer', 'kl', 'ce', 'entropy', 'top1', ...(bpb ? ['kl_bpb', 'ce_bpb'] : [])];
  const rows = layers.map((r) => [
    String(r.layer),
    ...[r.kl, r.ce, r.entropy, r.top1, ...(bpb ? [r.kl_bpb!, r.ce_bpb!] : [])].map((x) => x.toFixed(4)),
  ]);
  const widths = header.map((h, j) => Math.max(h.length, ...rows.map((row) => row[j]!.length)));
  const line = (cells: string[]) => cells.map((c, j) => c.padStart(widths[j]!)).join('  ');
  process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
}

/** The rows to read: `--tokens`, else held-out text, said on stderr. */
async function lensRows(dir: string, maxPositions: number, flags: LensFlags): Promise<number[][]> {
  if (flags.tokens) {
    if (flags.data !== undefined) throw new UserError('give either --tokens <file.json> or --data <prefix>, not both');
    const rows = readTokenRows(flags.tokens, true);
    if (rows[0]!.length < 2)
      throw new UserError(
        `${flags.tokens}: rows of ${rows[0]!.length} token; the lens needs at least 2 (a next token)`,
      );
    return rows;
  }
  const longest = longestHeldOutRow(dir, maxPositions, flags.data);
  const length = flags.length ?? Math.min(DEFAULT_STUDY_SETTINGS.heldOutLength, longest);
  if (length > longest)
    throw new UserError(
      `--length: ${length} tokens is longer than ${flags.data === undefined ? 'a training sample of this checkpoint, or its context + 1' : "the model's context + 1"} (${longest})`,
    );
  if (length < 2) throw new UserError('--length: the lens needs rows of at least 2 tokens (a next token)');
  const held = await heldOutTokens(dir, { rows: flags.rows, length, data: flags.data });
  process.stderr.write(`pythia lens: reading ${held.description} (sha256 ${held.sha256.slice(0, 12)})\n`);
  return Array.from({ length: held.rows }, (_, r) => Array.from(held.tokens.subarray(r * length, (r + 1) * length)));
}

async function runLens(dir: string, flags: LensFlags): Promise<void> {
  await withModelWeights('lens', dir, flags.maxMemory, (model) => lensWith(dir, model, flags));
}

async function lensWith(dir: string, model: ModelWeights, flags: LensFlags): Promise<void> {
  const { config } = model;
  const rows = await lensRows(dir, config.maxPositions, flags);
  const source = flags.tokens ?? 'held-out text';
  const ids = tokenMatrix(rows, config.vocabSize, source);
  const tokenizerPath = tokenizerFlag(flags) ?? modelTokenizerPath(model);
  const factor = tokenizerPath
    ? bitsPerByteFactor(await loadTokenizer(tokenizerPath), Int32Array.from(rows.flat()), rows.length)
    : undefined;
  if (!tokenizerPath)
    process.stderr.write(
      `pythia lens: ${dir} has no tokenizer.json and no --tokenizer was given: nats only, no bits per byte\n`,
    );
  const runtime = { threads: flags.threads, provider: flags.device };
  const runner = activationRunner(model, runtime);
  process.stderr.write(
    `pythia lens: ${config.numLayers + 1} layers over ${rows.length} × ${rows[0]!.length} tokens (${rows.length * (rows[0]!.length - 1)} predicted positions)\n`,
  );
  try {
    const layers: LensRow[] = (await logitLens(runner, headParams(model), ids, rows.length, { runtime })).map((l) =>
      factor === undefined ? l : { ...l, kl_bpb: l.kl * factor, ce_bpb: l.ce * factor },
    );
    if (flags.json) for (const layer of layers) process.stdout.write(`${JSON.stringify(layer)}\n`);
    else {
      process.stdout.write(
        `logit lens (nats${factor === undefined ? '' : '; _bpb: bits per byte'}): layer ℓ < ${config.numLayers} reads blocks.ℓ.hook_resid_pre, layer ${config.numLayers} the final residual\n`,
      );
      printTable(layers);
    }
  } finally {
    await runner.release();
  }
}

export function registerLens(program: Command): void {
  const cmd = program
    .command('lens')
    .description(
      "the logit lens: each block's input residual (and the final one) through the final LayerNorm and the unembedding; per layer the mean KL(final ‖ lens), cross-entropy against the next token, entropy (nats; KL and cross-entropy also in bits per byte) and top-1 agreement with the model's prediction",
    )
    .argument('<checkpoint>', CHECKPOINT_ARGUMENT)
    .option(
      '--tokens <file.json>',
      "JSON array of equal-length arrays of token ids (at least 2 per row); default: held-out text (the checkpoint's own validation batches, or --data)",
    )
    .option(
      '--data <prefix>',
      "held-out text as a tokenized dataset (.bin/.idx prefix), read from its start (needed for checkpoints that pythia train did not write, e.g. the hub's)",
    )
    .option('--rows <n>', 'rows of held-out text', positiveInt, DEFAULT_STUDY_SETTINGS.heldOutRows)
    .option(
      '--length <n>',
      `tokens per row of held-out text (default ${DEFAULT_STUDY_SETTINGS.heldOutLength}, or a training sample's seq-length + 1, or the context + 1, if shorter)`,
      positiveInt,
    )
    .option(
      '--json',
      'print one JSON object per layer: {layer, kl, ce, entropy, top1}, and kl_bpb, ce_bpb with a tokenizer',
    );
  addTokenizerOption(cmd, "tokenizer.json that counts the text's bytes for bits per byte (default: the checkpoint's)")
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', positiveInt)
    .addOption(deviceOption())
    .addOption(maxMemoryOption())
    .option(...REVISION_OPTION)
    .option(...CACHE_DIR_OPTION)
    .action((spec: string, options) => runLens(checkpointDir(spec, options), options));
}
