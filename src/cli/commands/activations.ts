/**
 * `pythia activations`: TransformerLens's named activations of a checkpoint on texts or token rows,
 * written to safetensors under their names (loadable with Python's safetensors). `pythia patch`:
 * TransformerLens's activation patching grids over resid_pre or per-head outputs.
 */
import { type Command, Option } from 'commander';
import { loadTokenizer } from '../../data/tokenizer.js';
import { type TensorToWrite, writeSafetensors } from '../../formats/index.js';
import { readConfig } from '../../model/checkpoint.js';
import type { NeoXConfig } from '../../model/config.js';
import { tokenMatrix } from '../../model/forward.js';
import { activationNames, activationShape, DECOMPOSED_ONLY, resolveActivationNames } from '../../model/hooks.js';
import { activationRunner, type ModelWeights, modelTokenizerPath } from '../../model/model-weights.js';
import { PATCH_OVER, type PatchingGrid, type PatchOver, patchingGrid } from '../../model/patching.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import {
  addTokenizerOption,
  collect,
  deviceOption,
  maxMemoryOption,
  positiveInt,
  tokenizerFlag,
} from '../arguments.js';
import { UserError } from '../errors.js';
import { withModelWeights } from '../open-model.js';
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
  maxMemory?: number;
  out?: string;
  list?: boolean;
  threads?: number;
  device: ExecutionProvider;
}

async function runActivations(dir: string, flags: ActivationsFlags): Promise<void> {
  if (flags.list) {
    listNames(readConfig(dir));
    return;
  }
  await withModelWeights('activations', dir, flags.maxMemory, (model) => writeActivations(dir, model, flags));
}

async function writeActivations(dir: string, model: ModelWeights, flags: ActivationsFlags): Promise<void> {
  const { config } = model;
  if (!flags.out) throw new UserError('--out <file.safetensors> is required (or --list to see the names)');
  const names = resolveActivationNames(config, flags.names ?? ['*']);
  const rows = await textOrTokenRows(dir, modelTokenizerPath(model), flags);
  const source = flags.tokens ?? '--text';
  const ids = tokenMatrix(rows, config.vocabSize, source);
  const [batch, seq] = [rows.length, rows[0]!.length];
  const attention = names.some((n) => DECOMPOSED_ONLY.test(n)) ? 'decomposed' : 'fused';
  process.stderr.write(
    `pythia activations: ${names.length} names over ${batch} × ${seq} tokens (${attention} attention)\n`,
  );
  const runner = activationRunner(model, { threads: flags.threads, provider: flags.device });
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

interface PatchFlags {
  clean: string;
  corrupt: string;
  answer: string;
  wrong: string;
  over: PatchOver;
  json?: boolean;
  batchSize: number;
  tokenizer?: string;
  vocabFile?: string;
  threads?: number;
  device: ExecutionProvider;
  maxMemory?: number;
}

function printGrid(result: PatchingGrid, columns: string[]): void {
  const cells = result.grid.map((row) => row.map((v) => (Math.abs(v) < 5e-4 ? 0 : v).toFixed(3)));
  const widths = columns.map((c, j) => Math.max(c.length, ...cells.map((row) => row[j]!.length)));
  const label = `layer \\ ${result.over === 'resid_pre' ? 'position' : 'head'}`;
  const out = [[label.padEnd(8), ...columns.map((c, j) => c.padStart(widths[j]!))].join('  ')];
  cells.forEach((row, l) => {
    out.push([String(l).padEnd(label.length), ...row.map((v, j) => v.padStart(widths[j]!))].join('  '));
  });
  process.stdout.write(`${out.join('\n')}\n`);
}

async function runPatch(dir: string, flags: PatchFlags): Promise<void> {
  await withModelWeights('patch', dir, flags.maxMemory, (model) => patchWith(dir, model, flags));
}

async function patchWith(dir: string, model: ModelWeights, flags: PatchFlags): Promise<void> {
  const { config } = model;
  const path = tokenizerFlag(flags) ?? modelTokenizerPath(model);
  if (!path)
    throw new UserError(
      `pythia patch needs a tokenizer: ${dir} has no tokenizer.json; pass --tokenizer <tokenizer.json>`,
    );
  const tokenizer = await loadTokenizer(path);
  const [clean, corrupt, answer, wrong] = await tokenizer.encodeBatch([
    flags.clean,
    flags.corrupt,
    flags.answer,
    flags.wrong,
  ]);
  for (const [flag, ids] of [
    ['--answer', answer!],
    ['--wrong', wrong!],
  ] as const)
    if (ids.length !== 1)
      throw new UserError(
        `${flag} ${JSON.stringify(flag === '--answer' ? flags.answer : flags.wrong)} is ${ids.length} tokens (${JSON.stringify(ids.map((id) => tokenizer.decode([id])))}): give a text of one token, with its leading space if it follows a word`,
      );
  if (clean!.length !== corrupt!.length)
    throw new UserError(
      `--clean is ${clean!.length} tokens and --corrupt ${corrupt!.length}: patching needs inputs of equal token length`,
    );
  const runner = activationRunner(model, {
    threads: flags.threads,
    provider: flags.device,
  });
  const columns = flags.over === 'resid_pre' ? clean!.length : config.numHeads;
  const total = config.numLayers * columns;
  process.stderr.write(
    `pythia patch: ${total} patched runs (${config.numLayers} layers × ${columns} ${flags.over === 'resid_pre' ? 'positions' : 'heads'})\n`,
  );
  let lastLine = performance.now();
  const result = await patchingGrid(runner, clean!, corrupt!, answer![0]!, wrong![0]!, flags.over, {
    batchSize: flags.batchSize,
    onProgress: (done, all) => {
      if (done < all && performance.now() - lastLine < 5000) return;
      lastLine = performance.now();
      process.stderr.write(`pythia patch: ${done}/${all} patched runs (${Math.floor((100 * done) / all)}%)\n`);
    },
  });
  await runner.release();
  const tokens = clean!.map((id) => tokenizer.decode([id]));
  if (flags.json) {
    const summary = {
      over: flags.over,
      rows: 'layer',
      columns: flags.over === 'resid_pre' ? 'position' : 'head',
      metric: 'logit difference (answer − wrong) at the last position, (patched − corrupt) / (clean − corrupt)',
      tokens,
      answer: { text: flags.answer, id: answer![0] },
      wrong: { text: flags.wrong, id: wrong![0] },
      cleanLogitDiff: result.cleanLogitDiff,
      corruptLogitDiff: result.corruptLogitDiff,
      grid: result.grid,
    };
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    `logit difference ${JSON.stringify(flags.answer)} − ${JSON.stringify(flags.wrong)}: clean ${result.cleanLogitDiff.toFixed(4)}, corrupt ${result.corruptLogitDiff.toFixed(4)}; each cell (patched − corrupt) / (clean − corrupt)\n`,
  );
  printGrid(
    result,
    flags.over === 'resid_pre'
      ? tokens.map((t, p) => `${p}:${JSON.stringify(t)}`)
      : Array.from({ length: columns }, (_, h) => `${h}`),
  );
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
    .addOption(maxMemoryOption())
    .option(...REVISION_OPTION)
    .option(...CACHE_DIR_OPTION)
    .action((spec: string, options) => runActivations(checkpointDir(spec, options), options));

  const patch = program
    .command('patch')
    .description(
      "activation patching as TransformerLens's get_act_patch_resid_pre ([layer, position]) and get_act_patch_attn_head_out_all_pos ([layer, head]): how much of the clean run's logit difference each patched activation restores",
    )
    .argument('<checkpoint>', CHECKPOINT_ARGUMENT)
    .requiredOption('--clean <text>', 'the clean input')
    .requiredOption('--corrupt <text>', 'the corrupted input, of the same token length')
    .requiredOption('--answer <text>', "the right next token after the clean input, e.g. ' Mary' (one token)")
    .requiredOption('--wrong <text>', "the wrong one, e.g. ' John' (one token)")
    .addOption(
      new Option('--over <what>', 'resid_pre: each layer × position; head_out: each layer × head (z at all positions)')
        .choices([...PATCH_OVER])
        .default('resid_pre'),
    )
    .option('--json', 'print the grid and its labels as JSON')
    .option('--batch-size <n>', 'patched runs per batch', positiveInt, 32);
  addTokenizerOption(patch, "tokenizer.json (default: the checkpoint's)")
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', positiveInt)
    .addOption(deviceOption())
    .addOption(maxMemoryOption())
    .option(...REVISION_OPTION)
    .option(...CACHE_DIR_OPTION)
    .action((spec: string, options) => runPatch(checkpointDir(spec, options), options));
}
