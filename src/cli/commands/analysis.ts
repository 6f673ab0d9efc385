/** `pythia memorize`, `pythia poisson`, `pythia count`: the memorization and term-frequency analyses. */
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { canaryMemorization, readCanaries, summarizeByCount } from '../../analysis/canaries.js';
import {
  memorizationBatches,
  PYTHIA_CONTINUATION_LENGTH,
  PYTHIA_PROMPT_LENGTH,
  parseIndexRange,
  type SampleIndices,
  sampleIndices,
} from '../../analysis/memorization.js';
import { poissonTest, readScoresIntoWindows } from '../../analysis/poisson.js';
import { countTerms, parseShard, parseSteps, readTerms, termPatterns, wordEdges } from '../../analysis/term-count.js';
import { readTrainingRecord } from '../../analysis/training-record.js';
import { openTrainingOrder, PYTHIA_DEFAULTS } from '../../data/batches.js';
import { loadTokenizer } from '../../data/tokenizer.js';
import { loadCheckpoint } from '../../model/checkpoint.js';
import { Decoder } from '../../model/decoder.js';
import { resolveCheckpoint } from '../../model/hub-cache.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import { AtomicFileWriter } from '../../util/atomic.js';
import { ConfigError } from '../../util/errors.js';
import { deviceOption, nonNegativeInt, positiveInt } from '../arguments.js';

/** A progress bar on a terminal; elsewhere a plain line every few seconds and at the end. */
function progress(label: string, unit: string): { update(done: number, total: number): void; stop(): void } {
  if (process.stderr.isTTY) {
    const bar = new SingleBar(
      {
        format: `${label} {bar} {value}/{total} ${unit} | {eta_formatted} left`,
        stream: process.stderr,
        hideCursor: true,
      },
      undefined,
    );
    let started = false;
    return {
      update(done, total) {
        if (!started) bar.start(total, 0);
        started = true;
        bar.update(done);
      },
      stop: () => started && bar.stop(),
    };
  }
  let last = Date.now();
  return {
    update(done, total) {
      if (done < total && Date.now() - last < 5000) return;
      last = Date.now();
      process.stderr.write(`${label}: ${done}/${total} ${unit} (${total ? Math.floor((100 * done) / total) : 100}%)\n`);
    },
    stop() {},
  };
}

interface MemorizeFlags {
  data?: string;
  preshuffled?: boolean;
  split?: string;
  cacheDir?: string;
  sequences?: string;
  sample?: number;
  seed: number;
  step?: number;
  promptLen: number;
  contLen: number;
  out?: string;
  batchSize: number;
  threads?: number;
  device: ExecutionProvider;
  trainBatchSize?: number;
  seqLength?: number;
  trainIters?: number;
  orderSeed?: number;
  canaries?: string;
  tokenizer?: string;
}

/** JSON lines to a file written atomically at the end (`commit`), or to stdout. */
function lineSink(path: string | undefined): { write(lines: string): void; commit(): void; abort(): void } {
  const file = path ? new AtomicFileWriter(path) : undefined;
  const encoder = new TextEncoder();
  return {
    write: (lines) => (file ? file.write(encoder.encode(lines)) : process.stdout.write(lines)),
    commit: () => file?.commit(),
    abort: () => file?.abort(),
  };
}

async function runCanaries(dir: string, flags: MemorizeFlags): Promise<void> {
  for (const [flag, given] of [
    ['--sequences', flags.sequences],
    ['--sample', flags.sample],
    ['--data', flags.data],
  ] as const) {
    if (given !== undefined)
      throw new ConfigError(`--canaries scores the canaries of truth.json; ${flag} does not apply`);
  }
  const canaries = readCanaries(flags.canaries!);
  const checkpoint = loadCheckpoint(dir);
  const tokenizerPath = flags.tokenizer ?? checkpoint.tokenizerPath;
  if (!tokenizerPath)
    throw new ConfigError(`${dir} has no tokenizer.json: give --tokenizer <tokenizer.json> (the corpus's)`);
  const tokenizer = await loadTokenizer(tokenizerPath);
  const decoder = await Decoder.create(checkpoint.config, checkpoint.params, {
    threads: flags.threads,
    provider: flags.device,
  });
  const step = flags.step ?? readTrainingRecord(dir).step ?? null;
  const bar = progress('pythia memorize', 'canaries');
  let scores: Awaited<ReturnType<typeof canaryMemorization>>;
  try {
    scores = await canaryMemorization(decoder, tokenizer, canaries, {
      promptLength: flags.promptLen,
      continuationLength: flags.contLen,
      batchSize: flags.batchSize,
      onProgress: (done, total) => bar.update(done, total),
    });
  } finally {
    bar.stop();
    await decoder.release();
  }
  const sink = lineSink(flags.out);
  try {
    sink.write(
      `${scores
        .map((c) => JSON.stringify({ canary: c.id, count: c.count, score: c.score, memorized: c.memorized, step }))
        .join('\n')}\n`,
    );
    sink.commit();
  } catch (e) {
    sink.abort();
    throw e;
  }
  process.stderr.write('copies  canaries  memorized  mean score\n');
  for (const g of summarizeByCount(scores)) {
    process.stderr.write(
      `${String(g.count).padStart(6)}  ${String(g.canaries).padStart(8)}  ${String(g.memorized).padStart(9)}  ${g.meanScore.toFixed(4).padStart(10)}\n`,
    );
  }
}

async function runMemorize(dir: string, flags: MemorizeFlags): Promise<void> {
  if (flags.canaries !== undefined) return runCanaries(dir, flags);
  if (flags.sequences !== undefined && flags.sample !== undefined)
    throw new ConfigError('give --sequences A:B or --sample N, not both');
  const record = readTrainingRecord(dir);
  const data = flags.data ?? record.data?.prefix;
  if (!data) throw new ConfigError(`${dir} records no training data (no trainer_state.json): give --data <prefix>`);
  const fromRecord = flags.data === undefined ? record.data : undefined;
  const batchSize = flags.trainBatchSize ?? record.trainBatchSize ?? PYTHIA_DEFAULTS.batchSize;
  const step = flags.step ?? record.step;
  const order = await openTrainingOrder({
    data,
    preshuffled: flags.preshuffled ?? fromRecord?.preshuffled,
    split: flags.split ?? fromRecord?.split,
    batchSize,
    seqLength: flags.seqLength ?? record.seqLength ?? PYTHIA_DEFAULTS.seqLength,
    trainIters: flags.trainIters ?? record.trainIters ?? PYTHIA_DEFAULTS.trainIters,
    seed: flags.orderSeed ?? record.seed ?? PYTHIA_DEFAULTS.seed,
    cacheDir: flags.cacheDir,
    onPhase: (phase) => process.stderr.write(`pythia memorize: building index maps (${phase})\n`),
  });
  const { source } = order;
  let sink: ReturnType<typeof lineSink> | undefined;
  try {
    let indices: SampleIndices;
    if (flags.sequences !== undefined) {
      const range = parseIndexRange(flags.sequences);
      indices = range;
      const trained = step === undefined ? undefined : step * batchSize;
      if (trained !== undefined && range.end > trained) {
        process.stderr.write(
          `pythia memorize: warning: the checkpoint (step ${step}) has trained on samples 0 to ${trained - 1} only; later ones are scored too\n`,
        );
      }
    } else {
      if (step === undefined)
        throw new ConfigError(
          `cannot tell which sequences ${dir} has trained on (no trainer_state.json, not a step<N> folder): give --step N or --sequences A:B`,
        );
      const trained = Math.min(step * batchSize, source.length);
      if (trained === 0)
        throw new ConfigError(`the checkpoint at step ${step} has trained on no sequences: give --sequences A:B`);
      indices = sampleIndices(trained, flags.sample ?? 1024, flags.seed);
    }
    const checkpoint = loadCheckpoint(dir);
    const decoder = await Decoder.create(checkpoint.config, checkpoint.params, {
      threads: flags.threads,
      provider: flags.device,
    });
    sink = lineSink(flags.out);
    const bar = progress('pythia memorize', 'sequences');
    let scored = 0;
    let memorized = 0;
    let scoreSum = 0;
    const started = performance.now();
    try {
      for await (const batch of memorizationBatches(decoder, source, indices, {
        promptLength: flags.promptLen,
        continuationLength: flags.contLen,
        batchSize: flags.batchSize,
        onProgress: (done, total) => bar.update(done, total),
      })) {
        const lines = `${batch
          .map((s) =>
            JSON.stringify({
              index: s.index,
              score: s.score,
              memorized: s.memorized,
              step: step ?? null,
              trained_at: Math.floor(s.index / batchSize),
            }),
          )
          .join('\n')}\n`;
        sink.write(lines);
        for (const s of batch) {
          scored++;
          scoreSum += s.score;
          if (s.memorized) memorized++;
        }
      }
    } finally {
      bar.stop();
      await decoder.release();
    }
    sink.commit();
    sink = undefined;
    const seconds = (performance.now() - started) / 1000;
    process.stderr.write(
      `pythia memorize: ${scored} sequences, ${memorized} memorized (${scored ? ((100 * memorized) / scored).toFixed(2) : '0'}%), mean score ${scored ? (scoreSum / scored).toFixed(4) : 'n/a'}; ` +
        `${(scored / seconds).toFixed(1)} sequences/s${flags.out ? `; wrote ${flags.out}` : ''}\n`,
    );
  } finally {
    sink?.abort();
    source.close();
  }
}

function ranges(list: [number, number][]): string {
  const shown = list.slice(0, 10).map(([a, b]) => (a === b ? String(a) : `${a}-${b}`));
  return shown.join(', ') + (list.length > 10 ? `, … (${list.length} ranges)` : '');
}

async function runPoisson(flags: { scores: string; window: number; json?: boolean }): Promise<void> {
  const r = poissonTest(await readScoresIntoWindows(flags.scores, flags.window));
  if (flags.json) {
    process.stdout.write(
      `${JSON.stringify({
        window: r.window,
        windows: r.windows,
        lambda: r.lambda,
        variance: r.variance,
        dispersion: r.dispersion,
        chi2: r.chi2,
        dof: r.dof,
        p_value: r.pValue,
        scored: r.scored,
        memorized: r.memorized,
        empty_windows: r.emptyWindows,
        partial_windows: r.partialWindows,
        qq: r.qq,
      })}\n`,
    );
    return;
  }
  const empty = r.emptyWindows.reduce((n, [a, b]) => n + b - a + 1, 0);
  const show = (x: number | null, digits = 6) => (x === null ? 'n/a' : Number(x.toPrecision(digits)).toString());
  const rows: [string, string][] = [
    [
      'windows',
      `${r.windows} of ${r.window} sequences${empty ? `; ${empty} left out, with no scored sequence: ${ranges(r.emptyWindows)}` : ''}${r.partialWindows ? `; ${r.partialWindows} partly scored` : ''}`,
    ],
    ['scored', String(r.scored)],
    ['memorized', String(r.memorized)],
    ['lambda', `${show(r.lambda)} memorized per window`],
    ['variance', show(r.variance)],
    ['dispersion', `${show(r.dispersion)} (variance / lambda; 1 for a Poisson process)`],
    ['chi2', `${show(r.chi2)} with ${r.dof} degrees of freedom`],
    ['p-value', `${show(r.pValue, 4)} (upper tail: small when memorized sequences cluster in training order)`],
  ];
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(11)}${v}\n`);
  process.stdout.write('Q-Q pairs against Poisson(lambda): --json\n');
}

interface CountFlags {
  data: string;
  preshuffled?: boolean;
  split?: string;
  cacheDir?: string;
  terms: string;
  steps: string;
  tokenizer: string;
  trainBatchSize: number;
  seqLength: number;
  trainIters: number;
  seed: number;
  json?: boolean;
  workers: number;
  shard?: string;
  wholeWords?: boolean;
}

async function runCount(flags: CountFlags): Promise<void> {
  const steps = parseSteps(flags.steps);
  const shard = flags.shard === undefined ? undefined : parseShard(flags.shard);
  const tokenizer = await loadTokenizer(flags.tokenizer);
  const patterns = await termPatterns(readTerms(flags.terms), tokenizer, flags.terms);
  const bar = progress('pythia count', 'batches');
  const started = performance.now();
  let result: Awaited<ReturnType<typeof countTerms>>;
  try {
    result = await countTerms({
      order: {
        data: flags.data,
        preshuffled: flags.preshuffled,
        split: flags.split,
        cacheDir: flags.cacheDir,
        batchSize: flags.trainBatchSize,
        seqLength: flags.seqLength,
        trainIters: flags.trainIters,
        seed: flags.seed,
      },
      patterns,
      words: flags.wholeWords ? wordEdges(tokenizer) : undefined,
      steps,
      workers: flags.workers,
      shard,
      onProgress: (done, total) => bar.update(done, total),
    });
  } finally {
    bar.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  process.stderr.write(
    `pythia count: ${result.tokens.toLocaleString('en-US')} tokens (batches ${result.batches[0]} to ${result.batches[1] - 1}) in ${seconds.toFixed(1)} s, ${(result.tokens / seconds / 1e6).toFixed(1)}M tokens/s\n`,
  );
  if (flags.json) {
    // Written by hand to keep the terms file's order (an object would put integer-like keys first).
    const terms = result.terms.map((t, i) => `${JSON.stringify(t)}:${JSON.stringify(result.counts[i])}`).join(',');
    const extra = shard ? `,"shard":"${shard.index}/${shard.count}","batches":${JSON.stringify(result.batches)}` : '';
    process.stdout.write(`{"steps":${JSON.stringify(result.steps)},"terms":{${terms}}${extra}}\n`);
    return;
  }
  process.stdout.write(`term\t${result.steps.map((s) => `step${s}`).join('\t')}\n`);
  result.terms.forEach((t, i) => {
    process.stdout.write(`${t}\t${result.counts[i]!.join('\t')}\n`);
  });
}

const ORDER_HELP = "(default: the checkpoint's trainer_state.json, else Pythia's";

export function registerAnalysis(program: Command): void {
  program
    .command('memorize')
    .description(
      'memorization scores of training sequences (Carlini et al., as Pythia measured them): greedy-generate --cont-len tokens ' +
        "from each sequence's first --prompt-len tokens; the score is the fraction equal to the true continuation, memorized when 1",
    )
    .argument(
      '<checkpoint>',
      "checkpoint folder (a suite's <model>/step<N> records its data and order in trainer_state.json), or a Hugging Face id org/name@revision from the local hub cache",
    )
    .option('--data <prefix>', 'training data prefix (default: the one in trainer_state.json)')
    .option('--preshuffled', "the data is Pythia's preshuffled layout: item k is training sample k")
    .option('--split <weights>', 'GPT-NeoX train/valid/test weights for a single data path')
    .option('--cache-dir <dir>', 'where the index-map .npy files are kept (default: beside the data)')
    .option('--sequences <A:B>', 'score training samples A up to but not including B (positions in training order)')
    .option(
      '--sample <n>',
      'score n samples drawn from those the checkpoint has trained on (default 1024, or all of them if fewer)',
      positiveInt,
    )
    .option('--seed <n>', 'seed of --sample', nonNegativeInt, 1234)
    .option(
      '--step <n>',
      "the checkpoint's step (default: trainer_state.json, or a step<N> folder name)",
      nonNegativeInt,
    )
    .option('--prompt-len <n>', 'prompt tokens', positiveInt, PYTHIA_PROMPT_LENGTH)
    .option('--cont-len <n>', 'generated and compared tokens', positiveInt, PYTHIA_CONTINUATION_LENGTH)
    .option('--out <scores.jsonl>', 'write one JSON object per sequence here (default: stdout)')
    .option('--batch-size <n>', 'sequences generated together', positiveInt, 64)
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', positiveInt)
    .addOption(deviceOption())
    .option('--train-batch-size <n>', `sequences per training step ${ORDER_HELP} 1024)`, positiveInt)
    .option('--seq-length <n>', `training sequence length ${ORDER_HELP} 2048)`, positiveInt)
    .option('--train-iters <n>', `training steps the order was built for ${ORDER_HELP} 143000)`, positiveInt)
    .option('--order-seed <n>', `GPT-NeoX seed of the data order ${ORDER_HELP} 1234)`, nonNegativeInt)
    .option(
      '--canaries <truth.json>',
      'instead, score the canaries of a `pythia synth` truth.json, each as one sequence; a table by copies on stderr',
    )
    .option(
      '--tokenizer <tokenizer.json>',
      "with --canaries: the corpus's tokenizer (default: the checkpoint's tokenizer.json)",
    )
    .addHelpText(
      'after',
      '\nEach output line: {"index", "score", "memorized", "step" (the checkpoint\'s), "trained_at" (the step that trained on the sample)}.\n' +
        'Examples:\n' +
        '  pythia memorize runs/default/suite/nano-793k/step256 --out scores.jsonl\n' +
        '  pythia memorize runs/default/suite/nano-793k/step256 --canaries runs/default/synth/truth.json\n' +
        '  pythia memorize pythia-70m-deduped --data pile-deduped-preshuffled/document --preshuffled --step 143000 --sequences 0:1048576\n',
    )
    .action((spec: string, flags: MemorizeFlags) => runMemorize(resolveCheckpoint(spec).dir, flags));

  program
    .command('poisson')
    .description(
      'is memorization a Poisson process over training order? Memorized counts per window, index of dispersion, its chi-square test, Q-Q pairs',
    )
    .requiredOption(
      '--scores <file.jsonl>',
      'scores as `pythia memorize --out` writes them ({"index", "score"} per line; "memorized" if present)',
    )
    .option('--window <n>', 'consecutive sample indices per window', positiveInt, 512)
    .option(
      '--json',
      'print {"windows", "lambda", "dispersion", "chi2", "dof", "p_value", "qq": [[expected, observed], ...], ...}',
    )
    .action(runPoisson);

  program
    .command('count')
    .description(
      'how often each term occurs in the tokens the checkpoint at each step trained on (batches 0 to S-1 of the training order), ' +
        'every step in one pass; a term matches as its token sequence alone or after a space',
    )
    .requiredOption('--data <prefix>', 'training data prefix (<prefix>.bin/.idx)')
    .requiredOption('--terms <file>', 'one term per line, or JSON Lines with a "term" field')
    .requiredOption('--steps <list|pythia>', 'checkpoint steps, e.g. 0,1000,143000, or "pythia" for Pythia\'s 154')
    .requiredOption('--tokenizer <tokenizer.json>', 'the tokenizer the data was written with')
    .option('--preshuffled', "the data is Pythia's preshuffled layout")
    .option('--split <weights>', 'GPT-NeoX train/valid/test weights for a single data path')
    .option('--cache-dir <dir>', 'where the index-map .npy files are kept (default: beside the data)')
    .option('--train-batch-size <n>', 'sequences per training step', positiveInt, PYTHIA_DEFAULTS.batchSize)
    .option('--seq-length <n>', 'training sequence length', positiveInt, PYTHIA_DEFAULTS.seqLength)
    .option('--train-iters <n>', 'training steps of the run', positiveInt, PYTHIA_DEFAULTS.trainIters)
    .option('--seed <n>', 'GPT-NeoX seed of the data order', nonNegativeInt, PYTHIA_DEFAULTS.seed)
    .option(
      '--whole-words',
      'count a match only where it stands as a whole word (no letter, digit or _ right after it, nor right before a form without the space)',
    )
    .option('--workers <n>', 'worker threads', positiveInt, 1)
    .option('--shard <i/n>', "count only the i-th of n equal ranges of batches (shards' counts add up to the whole)")
    .option('--json', 'print {"steps": [...], "terms": {"<term>": [count per step]}}')
    .action(runCount);
}
