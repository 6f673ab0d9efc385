/** `pythia inspect`, `pythia forward`, `pythia generate`: a checkpoint (folder or hub id@revision) in, numbers out. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { loadTokenizer } from '../../data/tokenizer.js';
import { openCheckpointWeights, type TensorToWrite, writeSafetensors } from '../../formats/index.js';
import { parseJsonFile } from '../../formats/strict-json.js';
import { loadCheckpoint, readConfig } from '../../model/checkpoint.js';
import { countParameters, headDim, parameterShapes, rotaryDims, toHfConfig } from '../../model/config.js';
import { Decoder } from '../../model/decoder.js';
import { forward, tokenMatrix } from '../../model/forward.js';
import { generate } from '../../model/generate.js';
import { resolveCheckpoint } from '../../model/hub-cache.js';
import { matchPreset } from '../../model/presets.js';
import { streamedForward } from '../../model/streamed-forward.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import {
  addTokenizerOption,
  collect,
  deviceOption,
  maxMemoryOption,
  nonNegativeInt,
  nonNegativeNumber,
  positiveInt,
  probability,
  refuseMaxMemory,
  seed,
  tokenizerFlag,
} from '../arguments.js';
import { UserError } from '../errors.js';
import { openForCommand } from '../open-model.js';

/** A JSON file holding an array of arrays of token ids. */
export function readTokenRows(path: string, equalLength: boolean): number[][] {
  let json: unknown;
  try {
    json = parseJsonFile(readFileSync(path, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code)
      throw new UserError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code})`);
    throw new UserError(`${path}: not valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(json) || json.length === 0 || !json.every((r) => Array.isArray(r))) {
    throw new UserError(`${path}: expected a non-empty JSON array of arrays of token ids, e.g. [[1, 2, 3]]`);
  }
  const rows = json as unknown[][];
  rows.forEach((row, b) => {
    if (row.length === 0) throw new UserError(`${path}: row ${b} is empty`);
    row.forEach((id, t) => {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
        throw new UserError(
          `${path}: row ${b} position ${t}: expected a non-negative integer token id, got ${JSON.stringify(id)}`,
        );
      }
    });
    if (equalLength && row.length !== rows[0]!.length) {
      throw new UserError(
        `${path}: row ${b} has ${row.length} tokens but row 0 has ${rows[0]!.length}; rows must have equal length`,
      );
    }
  });
  return rows as number[][];
}

function inspect(dir: string, options: { json?: boolean }): void {
  const config = readConfig(dir);
  const source = openCheckpointWeights(dir);
  const tensors = source.list();
  source.close();
  const dtypes = [...new Set(tensors.map((t) => t.dtype))];
  const { total, nonEmbedding } = countParameters(config);
  const preset = matchPreset(config) ?? 'none';
  if (options.json) {
    // The configuration as Hugging Face's config.json spells it.
    const summary = {
      config: toHfConfig(config),
      parameters: total,
      nonEmbeddingParameters: nonEmbedding,
      dtypes,
      preset,
      tensors: tensors.length,
      weights: source.file,
    };
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return;
  }
  const rows: [string, string][] = [
    ['weights', source.file],
    ['preset', preset],
    ['parameters', `${total.toLocaleString('en-US')} (${nonEmbedding.toLocaleString('en-US')} non-embedding)`],
    ['stored dtypes', dtypes.join(', ')],
    ['tensors', `${tensors.length} (${parameterShapes(config).length} parameters)`],
    ['layers × hidden', `${config.numLayers} × ${config.hiddenSize}`],
    [
      'heads',
      `${config.numHeads} × ${headDim(config)} (rotary on ${rotaryDims(config)} dims, base ${config.rotaryBase})`,
    ],
    ['mlp', `${config.intermediateSize}, ${config.hiddenAct}`],
    ['vocabulary', String(config.vocabSize)],
    ['residual', config.parallelResidual ? 'parallel' : 'sequential'],
    ['embeddings', config.tieWordEmbeddings ? 'tied' : 'untied'],
    ['max positions', String(config.maxPositions)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
}

async function runForward(
  dir: string,
  options: {
    tokens: string;
    out: string;
    hiddenStates?: boolean;
    loss?: boolean;
    grads?: boolean;
    threads?: number;
    device: ExecutionProvider;
    maxMemory?: number;
  },
): Promise<void> {
  if (options.grads)
    refuseMaxMemory(options, 'forward --grads cannot stream: the backward pass needs every weight at once');
  const runtime = { threads: options.threads, provider: options.device };
  // Gradients need the checkpoint resident; everything else streams where it does not fit.
  const model = options.grads
    ? ({ kind: 'resident', config: readConfig(dir), checkpoint: loadCheckpoint(dir) } as const)
    : openForCommand('forward', dir, options.maxMemory);
  const { config } = model;
  const rows = readTokenRows(options.tokens, true);
  const ids = tokenMatrix(rows, config.vocabSize, options.tokens);
  const batch = rows.length;
  const seq = rows[0]!.length;
  const r =
    model.kind === 'resident'
      ? await forward(
          config,
          model.checkpoint.params,
          ids,
          batch,
          { hiddenStates: options.hiddenStates, loss: options.loss, grads: options.grads },
          runtime,
        )
      : await streamedForward(
          model.stream,
          ids,
          batch,
          { hiddenStates: options.hiddenStates, loss: options.loss },
          runtime,
        ).finally(() => model.stream.close());
  const tensors: TensorToWrite[] = [
    { name: 'logits', dtype: 'F32', shape: [batch, seq, config.vocabSize], data: r.logits! },
  ];
  // HF's hidden_states[i] for i < L is TransformerLens's blocks.{i}.hook_resid_pre, the name it is written under.
  r.hiddenStates?.slice(0, config.numLayers).forEach((h, i) => {
    tensors.push({ name: `blocks.${i}.hook_resid_pre`, dtype: 'F32', shape: [batch, seq, config.hiddenSize], data: h });
  });
  if (r.loss !== undefined) tensors.push({ name: 'loss', dtype: 'F32', shape: [1], data: Float32Array.of(r.loss) });
  if (r.grads) {
    for (const { name, shape } of parameterShapes(config))
      tensors.push({ name: `grad.${name}`, dtype: 'F32', shape, data: r.grads.get(name)! });
  }
  await writeSafetensors(options.out, tensors);
  process.stderr.write(
    `wrote ${tensors.length} tensors to ${options.out}${r.loss !== undefined ? ` (loss ${r.loss.toFixed(6)})` : ''}\n`,
  );
}

interface GenerateFlags {
  tokens?: string;
  text?: string[];
  tokenizer?: string;
  vocabFile?: string;
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  ignoreEos?: boolean;
  cache: boolean;
  threads?: number;
  device: ExecutionProvider;
}

async function runGenerate(dir: string, options: GenerateFlags): Promise<void> {
  if (!options.tokens === !options.text)
    throw new UserError('give either --tokens <file.json> or --text <prompt> (repeat --text for several prompts)');
  const checkpoint = loadCheckpoint(dir);
  const tokenizerPath = tokenizerFlag(options) ?? checkpoint.tokenizerPath;
  let prompts: number[][];
  const tokenizer = options.text ? (tokenizerPath ? await loadTokenizer(tokenizerPath) : undefined) : undefined;
  if (options.text) {
    if (!tokenizer)
      throw new UserError(`--text needs a tokenizer: ${dir} has no tokenizer.json; pass --tokenizer <tokenizer.json>`);
    prompts = await tokenizer.encodeBatch(options.text);
  } else {
    prompts = readTokenRows(options.tokens!, false);
  }
  const decoder = await Decoder.create(checkpoint.config, checkpoint.params, {
    threads: options.threads,
    provider: options.device,
  });
  const rows = await generate(decoder, prompts, {
    maxNewTokens: options.maxNewTokens,
    noCache: !options.cache,
    temperature: options.temperature,
    topK: options.topK,
    topP: options.topP,
    seed: options.seed,
    eosTokenId: options.ignoreEos ? undefined : checkpoint.config.eosTokenId,
  });
  if (tokenizer) {
    for (const row of rows) process.stdout.write(`${JSON.stringify(tokenizer.decode(row))}\n`);
  } else {
    process.stdout.write(`${JSON.stringify(rows)}\n`);
  }
}

/** Where a checkpoint argument (a folder, or a hub id resolved offline in the HF cache) lives. */
export const CHECKPOINT_ARGUMENT =
  'checkpoint folder, or Hugging Face model id[@revision] from the local hub cache (e.g. EleutherAI/pythia-70m-deduped@step3000)';
export const REVISION_OPTION = [
  '--revision <rev>',
  'hub revision (branch, tag such as step3000, or commit) for an id without @revision (default: main)',
] as const;
export const CACHE_DIR_OPTION = [
  '--cache-dir <dir>',
  'Hugging Face hub cache (default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)',
] as const;
export const checkpointDir = (spec: string, options: { revision?: string; cacheDir?: string }): string =>
  resolveCheckpoint(spec, options).dir;

export function registerModel(program: Command): void {
  program
    .command('inspect')
    .description("show a checkpoint's configuration, parameter count, stored dtypes and matching Pythia preset")
    .argument('<checkpoint>', CHECKPOINT_ARGUMENT)
    .option('--json', 'print JSON instead of a table')
    .option(...REVISION_OPTION)
    .option(...CACHE_DIR_OPTION)
    .action((spec: string, options: { json?: boolean; revision?: string; cacheDir?: string }) =>
      inspect(checkpointDir(spec, options), options),
    );

  program
    .command('forward')
    .description(
      'run the model on token rows and write logits (and optionally hidden states, loss, gradients) to safetensors',
    )
    .argument('<checkpoint>', CHECKPOINT_ARGUMENT)
    .requiredOption('--tokens <file.json>', 'JSON array of equal-length arrays of token ids')
    .requiredOption('--out <file.safetensors>', 'where to write the outputs')
    .option(
      '--hidden-states',
      "also write blocks.N.hook_resid_pre, the residual stream entering each block (HF's hidden_states[N]); shorthand for pythia activations --names 'blocks.*.hook_resid_pre'",
    )
    .option('--loss', 'also write the mean next-token cross-entropy as loss [1]')
    .option(
      '--grads',
      'also write grad.<parameter> for every parameter (implies the loss; needs the checkpoint resident)',
    )
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', positiveInt)
    .addOption(deviceOption())
    .addOption(maxMemoryOption())
    .option(...REVISION_OPTION)
    .option(...CACHE_DIR_OPTION)
    .action((spec: string, options) => runForward(checkpointDir(spec, options), options));

  const gen = program
    .command('generate')
    .description('continue prompts greedily (or by seeded sampling) with a KV cache, up to the end-of-text token')
    .argument('<checkpoint>', CHECKPOINT_ARGUMENT)
    .option('--tokens <file.json>', 'JSON array of prompts (arrays of token ids); prints a JSON array of rows')
    .option(
      '--text <prompt>',
      'a prompt (repeat the flag for several); needs a tokenizer and prints decoded text, one JSON string per line',
      collect,
    );
  addTokenizerOption(gen, "tokenizer.json (default: the checkpoint's)")
    .option('--max-new-tokens <n>', 'most tokens to add to each prompt', positiveInt, 32)
    .option(
      '--ignore-eos',
      'go on past the end-of-text token (config.json eos_token_id) instead of stopping a row there',
    )
    .option('--temperature <t>', 'sampling temperature; 0 is greedy', nonNegativeNumber, 0)
    .option('--top-k <k>', 'sample among the k most likely tokens (0: all)', nonNegativeInt, 0)
    .option(
      '--top-p <p>',
      'sample among the most likely tokens whose probabilities first reach p together (1: all)',
      probability,
      1,
    )
    .option('--seed <n>', 'sampling seed (0 to 4294967295)', seed, 0)
    .option('--no-cache', 'recompute the whole sequence at every step (slow; for checking)')
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', positiveInt)
    .addOption(deviceOption())
    .option(...REVISION_OPTION)
    .option(...CACHE_DIR_OPTION)
    .action((spec: string, options) => runGenerate(checkpointDir(spec, options), options));
}
