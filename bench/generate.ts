/**
 * `npm run bench:generate`: greedy generation at the pythia-70m shape (random weights, float32),
 * batch 1 and batch 16, a short prompt and BENCH_NEW_TOKENS new tokens (default 256), with our KV
 * cache beside Hugging Face `GPTNeoXForCausalLM.generate` with its cache on the identical weights
 * (bench/hf_generate.py), BENCH_THREADS threads (default 2), medians of BENCH_RUNS runs (default 3)
 * after one warm-up, and the fp32 matmul peak of both sides measured in the same run.
 */
import { parameterShapes } from '../src/model/config.js';
import { Decoder } from '../src/model/decoder.js';
import { generate } from '../src/model/generate.js';
import { loadNote, matmulPeak, randomTokens, table, timeIt } from './common.js';
import { pythia70mSideBySide, runOnHfCheckpoint } from './hf.js';

const threads = Number(process.env.BENCH_THREADS ?? 2);
const NEW_TOKENS = Number(process.env.BENCH_NEW_TOKENS ?? 256);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PROMPT = 8;
const BATCHES = [1, 16];

const { hf, shape, config, params } = pythia70mSideBySide('bench:generate', threads);
const prompts = BATCHES.map((batch, i) => {
  const tokens = randomTokens(batch * PROMPT, shape.V, 10 + i);
  return Array.from({ length: batch }, (_, b) => Array.from(tokens.subarray(b * PROMPT, (b + 1) * PROMPT), Number));
});

const decoder = await Decoder.create(config, params, { threads });
const ours: { seconds: number; tokens: number[][] }[] = [];
for (const rows of prompts) {
  let tokens: number[][] = [];
  const seconds = await timeIt(
    async () => {
      tokens = (await generate(decoder, rows, { maxNewTokens: NEW_TOKENS })).map((r) => r.slice(PROMPT));
    },
    RUNS,
    1,
  );
  ours.push({ seconds, tokens });
}
await decoder.release();
const peak = await matmulPeak(threads);

interface HfResult {
  results: { batch: number; seconds: number; tokens: number[][] }[];
  torch: string;
  transformers: string;
  matmul_gflops: number;
}
const base = hf.python
  ? await runOnHfCheckpoint<HfResult>(hf.python, 'hf_generate.py', config, params, [threads, NEW_TOKENS, RUNS], {
      'prompts.json': prompts,
    })
  : undefined;

// 2 FLOPs per weight per token, every weight but the input embedding (a lookup); attention's own arithmetic is left out.
const flopsPerToken =
  2 *
  parameterShapes(config)
    .filter((p) => p.name !== 'gpt_neox.embed_in.weight')
    .reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0);
const tokS = (batch: number, seconds: number): string => ((batch * NEW_TOKENS) / seconds).toFixed(0);
const ofPeak = (batch: number, seconds: number, gflops: number): string =>
  `${(((batch * NEW_TOKENS * flopsPerToken) / seconds / 1e9 / gflops) * 100).toFixed(0)}%`;
const rows = BATCHES.map((batch, i) => {
  const theirs = base?.results[i];
  // Greedy tokens agree up to the first position where any row differs.
  const agree = theirs
    ? Math.min(
        ...ours[i]!.tokens.map((row, b) => {
          const k = row.findIndex((t, j) => t !== theirs.tokens[b]![j]);
          return k < 0 ? row.length : k;
        }),
      )
    : undefined;
  return [
    batch,
    tokS(batch, ours[i]!.seconds),
    ofPeak(batch, ours[i]!.seconds, peak),
    theirs ? tokS(batch, theirs.seconds) : '-',
    theirs ? ofPeak(batch, theirs.seconds, base!.matmul_gflops) : '-',
    theirs ? `${(theirs.seconds / ours[i]!.seconds).toFixed(2)}x` : '-',
    agree === undefined ? '-' : `${agree}/${NEW_TOKENS}`,
  ];
});
console.log(
  `\ngreedy generation at the pythia-70m shape: ${PROMPT}-token prompts, ${NEW_TOKENS} new tokens, median of ${RUNS}; ${loadNote()}`,
);
console.log(
  `fp32 matmul peak: ${peak.toFixed(0)} GFLOP/s (onnxruntime)${base ? `, ${base.matmul_gflops.toFixed(0)} GFLOP/s (torch ${base.torch}, transformers ${base.transformers})` : ''}`,
);
console.log(
  table(['batch', 'ours tok/s', 'of peak', 'HF generate tok/s', 'of peak', 'vs HF', 'same greedy tokens'], rows),
);
