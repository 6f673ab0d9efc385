/** `pythia lens`: the logit lens of a checkpoint on token rows, per layer KL, cross-entropy, entropy, top-1. */
import type { Command } from 'commander';
import { ActivationRunner } from '../../model/activations.js';
import { loadCheckpoint } from '../../model/checkpoint.js';
import { tokenMatrix } from '../../model/forward.js';
import { type LensLayer, logitLens } from '../../model/logit-lens.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import { deviceOption, positiveInt } from '../arguments.js';
import { UserError } from '../errors.js';
import { CACHE_DIR_OPTION, CHECKPOINT_ARGUMENT, checkpointDir, REVISION_OPTION, readTokenRows } from './model.js';

interface LensFlags {
  tokens?: string;
  json?: boolean;
  threads?: number;
  device: ExecutionProvider;
}

function printTable(layers: readonly LensLayer[]): void {
  const header = ['layer', 'kl', 'ce', 'entropy', 'top1'];
  const rows = layers.map((r) => [
    String(r.layer),
    r.kl.toFixed(4),
    r.ce.toFixed(4),
    r.entropy.toFixed(4),
    r.top1.toFixed(4),
  ]);
  const widths = header.map((h, j) => Math.max(h.length, ...rows.map((row) => row[j]!.length)));
  const line = (cells: string[]) => cells.map((c, j) => c.padStart(widths[j]!)).join('  ');
  process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
}

async function runLens(dir: string, flags: LensFlags): Promise<void> {
  if (!flags.tokens) throw new UserError('--tokens <file.json> is required (a JSON array of equal-length token rows)');
  const rows = readTokenRows(flags.tokens, true);
  if (rows[0]!.length < 2)
    throw new UserError(`${flags.tokens}: rows of ${rows[0]!.length} token; the lens needs at least 2 (a next token)`);
  const checkpoint = loadCheckpoint(dir);
  const { config } = checkpoint;
  const ids = tokenMatrix(rows, config.vocabSize, flags.tokens);
  const runtime = { threads: flags.threads, provider: flags.device };
  const runner = new ActivationRunner(config, checkpoint.params, runtime);
  process.stderr.write(
    `pythia lens: ${config.numLayers + 1} layers over ${rows.length} × ${rows[0]!.length} tokens (${rows.length * (rows[0]!.length - 1)} predicted positions)\n`,
  );
  try {
    const layers = await logitLens(runner, checkpoint.params, ids, rows.length, { runtime });
    if (flags.json) for (const layer of layers) process.stdout.write(`${JSON.stringify(layer)}\n`);
    else {
      process.stdout.write(
        `logit lens (nats): layer ℓ < ${config.numLayers} reads blocks.ℓ.hook_resid_pre, layer ${config.numLayers} the final residual\n`,
      );
      printTable(layers);
    }
  } finally {
    await runner.release();
  }
}

export function registerLens(program: Command): void {
  program
    .command('lens')
    .description(
      "the logit lens: each block's input residual (and the final one) through the final LayerNorm and the unembedding; per layer the mean KL(final ‖ lens), cross-entropy against the next token, entropy (nats) and top-1 agreement with the model's prediction",
    )
    .argument('<checkpoint>', CHECKPOINT_ARGUMENT)
    .option('--tokens <file.json>', 'JSON array of equal-length arrays of token ids (at least 2 per row)')
    .option('--json', 'print one JSON object per layer: {layer, kl, ce, entropy, top1}')
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', positiveInt)
    .addOption(deviceOption())
    .option(...REVISION_OPTION)
    .option(...CACHE_DIR_OPTION)
    .action((spec: string, options) => runLens(checkpointDir(spec, options), options));
}
