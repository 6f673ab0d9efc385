/**
 * `pythia activations`: TransformerLens's named activations of a checkpoint on texts or token rows,
 * written to safetensors under their names (loadable with Python's safetensors).
 */
import type { Command } from 'commander';
import { loadTokenizer } from '../../data/tokenizer.js';
import { type TensorToWrite, writeSafetensors } from '../../formats/index.js';
import { ActivationRunner } from '../../model/activations.js';
import { loadCheckpoint } from '../../model/checkpoint.js';
import type { NeoXConfig } from '../../model/config.js';
import { tokenMatrix } from '../../model/forward.js';
import { activationNames, activationShape, DECOMPOSED_ONLY, resolveActivationNames } from '../../model/hooks.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import { addTokenizerOption, collect, deviceOption, positiveInt, tokenizerFlag } from '../arguments.js';
import { UserError } from '../errors.js';
import { CACHE_DIR_OPTION, CHECKPOINT_ARGUMENT, checkpointDir, REVISION_OPTION, readTokenRows } from './model.js';

export interface TextOrTokenFlags {
  text?: string[];
  tokens?: string;
  tokenizer?: string;
  vocabFile?: string;
}

/** The rows `--text` (tokenized with the checkpoint's tokenizer, no BOS added) or `--tokens` give, all of one length. */
export async function textOrTokenRows(
  dir: string,
  tokenizerPath: string | undefined,
  flags: TextOrTokenFlags,
): Promise<number[][]> {
  if (!flags.tokens === !flags.text)
    throw new UserError('give either --tokens <file.json> or --text <text> (repeat --text for several rows)');
  if (flags.tokens) return readTokenRows(flags.tokens, true);
  const path = tokenizerFlag(flags) ?? tokenizerPath;
  if (!path)
    throw new UserError(`--text needs a tokenizer: ${dir} has no tokenizer.json; pass --tokenizer <tokenizer.json>`);
  const rows = await (await loadTokenizer(path)).encodeBatch(flags.text!);
  rows.forEach((row, i) => {
    if (row.length === 0) throw new UserError(`--text ${i + 1}: no tokens`);
    if (row.length !== rows[0]!.length)
      throw new UserError(
        `--text ${i + 1} is ${row.length} tokens and --text 1 is ${rows[0]!.length}: rows must have equal token lengths`,
      );
  });
  return rows;
}

function listNames(config: NeoXConfig): void {
  const names = activationNames(config);
  const width = Math.max(...names.map((n) => n.length));
  for (const name of names) {
    const shape = activationShape(config, name, 1, 1).map((d, i) => {
      if (i === 0) return 'batch';
      if (name.endsWith('hook_attn_scores') || name.endsWith('hook_pattern'))
        return i === 2 ? 'dest' : i === 3 ? 'src' : d;
      return i === 1 ? 'pos' : d;
    });
    process.stdout.write(`${name.padEnd(width)}  [${shape.join(', ')}]\n`);
  }
}

interface ActivationsFlags extends TextOrTokenFlags {
  names?: string[];
  out?: string;
  list?: boolean;
  threads?: number;
  device: ExecutionProvider;
}

async function runActivations(dir: string, flags: ActivationsFlags): Promise<void> {
  const checkpoint = loadCheckpoint(dir);
  const { config } = checkpoint;
  if (flags.list) {
    listNames(config);
    return;
  }
  if (!flags.out) throw new UserError('--out <file.safetensors> is required (or --list to see the names)');
  const names = resolveActivationNames(config, flags.names ?? ['*']);
  const rows = await textOrTokenRows(dir, checkpoint.tokenizerPath, flags);
  const source = flags.tokens ?? '--text';
  const ids = tokenMatrix(rows, config.vocabSize, source);
  const [batch, seq] = [rows.length, rows[0]!.length];
  const attention = names.some((n) => DECOMPOSED_ONLY.test(n)) ? 'decomposed' : 'fused';
  process.stderr.write(
    `pythia activations: ${names.length} names over ${batch} × ${seq} tokens (${attention} attention)\n`,
  );
  const runner = new ActivationRunner(config, checkpoint.params, { threads: flags.threads, provider: flags.device });
  const { cache } = await runner.run(ids, batch, { names });
  await runner.release();
  const tensors: TensorToWrite[] = [...cache].map(([name, a]) => ({
    name,
    dtype: 'F32',
    shape: a.dims,
    data: a.data,
  }));
  await writeSafetensors(flags.out, tensors);
  const bytes = tensors.reduce((s, t) => s + t.data.byteLength, 0);
  process.stderr.write(`wrote ${tensors.length} tensors (${(bytes / 2 ** 20).toFixed(1)} MiB) to ${flags.out}\n`);
}

export function registerActivations(program: Command): void {
  const cmd = program
    .command('activations')
    .description(
      "write a checkpoint's named activations (TransformerLens's hook names and shapes) on texts or token rows to safetensors",
    )
    .argument('<checkpoint>', CHECKPOINT_ARGUMENT)
    .option('--text <text>', 'a row of text (repeat for several; all must have the same token length)', collect)
    .option('--tokens <file.json>', 'JSON array of equal-length arrays of token ids')
    .option(
      '--names <pattern>',
      "names or globs to write, e.g. 'blocks.*.attn.hook_pattern' (repeat the flag; default: every name)",
      collect,
    )
    .option('--out <file.safetensors>', 'where to write them, each under its name')
    .option('--list', 'print every name with its shape and stop');
  addTokenizerOption(cmd, "tokenizer.json for --text (default: the checkpoint's)")
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', positiveInt)
    .addOption(deviceOption())
    .option(...REVISION_OPTION)
    .option(...CACHE_DIR_OPTION)
    .action((spec: string, options) => runActivations(checkpointDir(spec, options), options));
}
