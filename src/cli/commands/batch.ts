/** `pythia batch`: the exact batch a model trained on at a step, or a range of steps as .npy. */
import { SingleBar } from 'cli-progress';
import { type Command, Option } from 'commander';
import { openTrainingOrder, PYTHIA_DEFAULTS, parseStepRange, type TrainingOrder } from '../../data/batches.js';
import type { IndexMapsPhase } from '../../data/index-map-cache.js';
import { loadTokenizer } from '../../data/tokenizer.js';
import { writeNpy } from '../../formats/npy.js';
import { ConfigError } from '../../util/errors.js';
import { addTokenizerOption, nonNegativeInt, positiveInt, tokenizerFlag } from '../arguments.js';

interface BatchFlags {
  data: string;
  step?: number;
  steps?: string;
  out?: string;
  trainBatchSize?: number;
  seqLength?: number;
  /** Older spellings, still accepted. */
  batchSize?: number;
  seqLen?: number;
  seed: number;
  trainIters: number;
  split?: string;
  preshuffled?: boolean;
  cacheDir?: string;
  json?: boolean;
  tokenizer?: string;
  vocabFile?: string;
}

interface BatchOptions {
  data: string;
  batchSize: number;
  seqLength: number;
  seed: number;
  trainIters: number;
  split?: string;
  preshuffled?: boolean;
  cacheDir?: string;
  json?: boolean;
  tokenizer?: string;
}

/** One value per setting, whichever spelling gave it. */
function batchOptions(flags: BatchFlags): BatchOptions {
  const one = <T>(name: string, value: T | undefined, old: T | undefined, fallback: T): T => {
    if (value !== undefined && old !== undefined && value !== old)
      throw new ConfigError(`${name} is given twice with different values`);
    return value ?? old ?? fallback;
  };
  return {
    data: flags.data,
    seed: flags.seed,
    trainIters: flags.trainIters,
    split: flags.split,
    preshuffled: flags.preshuffled,
    cacheDir: flags.cacheDir,
    json: flags.json,
    batchSize: one('--train-batch-size', flags.trainBatchSize, flags.batchSize, PYTHIA_DEFAULTS.batchSize),
    seqLength: one('--seq-length', flags.seqLength, flags.seqLen, PYTHIA_DEFAULTS.seqLength),
    tokenizer: tokenizerFlag(flags),
  };
}

const PHASE_TEXT: Record<IndexMapsPhase, string> = {
  doc_idx: 'shuffling documents (doc_idx)',
  sample_idx: 'cutting samples (sample_idx)',
  shuffle_idx: 'shuffling samples (shuffle_idx)',
  save: 'saving index maps',
};

async function open(options: BatchOptions): Promise<TrainingOrder> {
  const order = await openTrainingOrder({
    data: options.data,
    batchSize: options.batchSize,
    seqLength: options.seqLength,
    seed: options.seed,
    trainIters: options.trainIters,
    split: options.split,
    preshuffled: options.preshuffled,
    cacheDir: options.cacheDir,
    onPhase: (phase) => process.stderr.write(`pythia batch: building index maps: ${PHASE_TEXT[phase]}\n`),
  });
  if (order.indexMaps?.built)
    process.stderr.write(
      `pythia batch: index maps saved as ${order.indexMaps.files.shuffleIdx.replace(/_shuffle_idx\.npy$/, '_*_idx.npy')}\n`,
    );
  return order;
}

function rowsOf(tokens: Int32Array, sampleLength: number): number[][] {
  const rows: number[][] = [];
  for (let start = 0; start < tokens.length; start += sampleLength)
    rows.push(Array.from(tokens.subarray(start, start + sampleLength)));
  return rows;
}

async function printStep(options: BatchOptions, step: number): Promise<void> {
  const order = await open(options);
  try {
    const { source } = order;
    const rows = rowsOf(source.batchTokens(step, options.batchSize), source.sampleLength);
    const tokenizer = options.tokenizer ? await loadTokenizer(options.tokenizer) : undefined;
    if (tokenizer && options.json) {
      process.stdout.write(`${JSON.stringify(rows.map((r) => tokenizer.decode(r)))}\n`);
    } else if (tokenizer) {
      rows.forEach((r, j) => {
        process.stdout.write(
          `=== step ${step}, row ${j} (sample ${step * options.batchSize + j}) ===\n${tokenizer.decode(r)}\n`,
        );
      });
    } else if (options.json) {
      process.stdout.write(`[${rows.map((r) => JSON.stringify(r)).join(',\n')}]\n`);
    } else {
      for (const r of rows) process.stdout.write(`${r.join(' ')}\n`);
    }
  } finally {
    order.source.close();
  }
}

async function writeSteps(options: BatchOptions, range: string, out: string): Promise<void> {
  const { start, end } = parseStepRange(range);
  const order = await open(options);
  try {
    const { source } = order;
    const rowsPerStep = options.batchSize;
    // Check the last step before reading anything, so a bad range fails at once.
    source.batchTokens(end - 1, rowsPerStep);
    const data =
      order.dtype === 'uint16'
        ? new Uint16Array((end - start) * rowsPerStep * source.sampleLength)
        : new Int32Array((end - start) * rowsPerStep * source.sampleLength);
    const bar = new SingleBar(
      { format: 'steps {bar} {value}/{total} | {eta_formatted} left', stream: process.stderr, hideCursor: true },
      undefined,
    );
    if (process.stderr.isTTY) bar.start(end - start, 0);
    for (let s = start; s < end; s++) {
      data.set(source.batchTokens(s, rowsPerStep), (s - start) * rowsPerStep * source.sampleLength);
      if (process.stderr.isTTY) bar.increment();
    }
    if (process.stderr.isTTY) bar.stop();
    await writeNpy(out, { shape: [(end - start) * rowsPerStep, source.sampleLength], data });
    process.stderr.write(
      `pythia batch: wrote ${out} (${(end - start) * rowsPerStep} × ${source.sampleLength} ${order.dtype})\n`,
    );
  } finally {
    order.source.close();
  }
}

export function registerBatch(program: Command): void {
  const cmd = program
    .command('batch')
    .description(
      'Show the batch a model trained on at a step, in training order. Without --split the whole dataset is the ' +
        "train set and the order is GPT-NeoX v1.0's index maps (built once, cached beside the data as GPT-NeoX names them); " +
        "with --preshuffled the data is already in training order (Pythia's preshuffled files).",
    )
    .requiredOption(
      '--data <prefix>',
      'dataset prefix: <prefix>.bin and <prefix>.idx (or Pythia shards <prefix>-00000-of-NNNNN.bin)',
    )
    .option('--step <n>', 'the training step to show (0-based)', nonNegativeInt)
    .option(
      '--steps <A:B>',
      'steps A up to but not including B, written to --out as .npy [(B-A)*train-batch-size, seq-length+1]',
    )
    .option('--out <file.npy>', "where --steps writes its array (the dataset's dtype, like Pythia's batch viewer)")
    .option(
      '--train-batch-size <n>',
      `sequences per training step (default: ${PYTHIA_DEFAULTS.batchSize})`,
      positiveInt,
    )
    .option(
      '--seq-length <n>',
      `tokens per sample; samples hold seq-length+1 (default: ${PYTHIA_DEFAULTS.seqLength})`,
      positiveInt,
    )
    .addOption(new Option('--batch-size <n>').argParser(positiveInt).hideHelp())
    .addOption(new Option('--seq-len <n>').argParser(positiveInt).hideHelp())
    .option('--seed <n>', 'GPT-NeoX seed of the index-map shuffles', nonNegativeInt, PYTHIA_DEFAULTS.seed)
    .option(
      '--train-iters <n>',
      'training steps the index maps were sized for',
      positiveInt,
      PYTHIA_DEFAULTS.trainIters,
    )
    .option(
      '--split <weights>',
      'GPT-NeoX train/valid/test weights for a single data path, e.g. 969,30,1 (training uses the first range)',
    )
    .option('--preshuffled', 'the dataset holds one sample per item, already in training order')
    .option('--cache-dir <dir>', 'where to keep the index-map .npy files (default: beside the data)')
    .option(
      '--json',
      'print a JSON array of train-batch-size arrays of seq-length+1 token ids (or of strings with --tokenizer)',
    );
  addTokenizerOption(cmd, 'decode each sample to text')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  pythia batch --data pile_text_document --step 1000 --json\n' +
        '  pythia batch --data preshuffled/document --preshuffled --step 0 --tokenizer 20B_tokenizer.json\n' +
        '  pythia batch --data pile_text_document --steps 0:10 --out first10.npy\n',
    )
    .action(async (flags: BatchFlags) => {
      const options = batchOptions(flags);
      if (flags.steps !== undefined) {
        if (flags.step !== undefined) throw new ConfigError('give --step or --steps, not both');
        if (!flags.out) throw new ConfigError('--steps writes a .npy file: give its path with --out');
        if (options.json || options.tokenizer)
          throw new ConfigError('--steps writes .npy; --json and --tokenizer apply to --step');
        await writeSteps(options, flags.steps, flags.out);
        return;
      }
      if (flags.step === undefined) throw new ConfigError('give --step <n> (or --steps A:B --out file.npy)');
      if (flags.out) throw new ConfigError('--out goes with --steps A:B');
      await printStep(options, flags.step);
    });
}
