/**
 * `npm run bench:int8`: int8 weights against float32 on the CPU. One linear layer (M=512 rows,
 * K=2048, N=8192: the 1b shape's MLP up-projection), then scoring through the Scorer that
 * `pythia eval` uses at the 160m and 1b shapes (random weights; ROWS rows of 128 tokens, the last
 * 16 scored), tokens/s of each and the largest per-token log-likelihood difference, and greedy
 * generation (ROWS prompts of 32 tokens, 32 new tokens: memorization's shape), new tokens/s. Weights are
 * graph inputs in both, as the Scorer feeds them. BENCH_INT8_SHAPES=160m,1b picks the shapes.
 *
 * With BENCH_INT8_RUN=<run folder> (what `pythia run` writes: synth/ and suite/), also the cost on
 * trained nano models at their last step: per-token log-likelihood differences and perplexity over
 * corpus documents, and the share of greedy 32-token continuations of 32-token prompts (as
 * memorization runs them) identical to float32's.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTokenizer } from '../src/data/tokenizer.js';
import { Graph } from '../src/graph/graph.js';
import * as op from '../src/graph/ops.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import type { NeoXConfig } from '../src/model/config.js';
import { Decoder } from '../src/model/decoder.js';
import { generate } from '../src/model/generate.js';
import { quantizeRows } from '../src/model/int8.js';
import { pythiaArchitecture } from '../src/model/presets.js';
import { Scorer } from '../src/model/score.js';
import { compile } from '../src/runtime/session.js';
import { Prng } from '../src/util/prng.js';
import { benchSetupThreads, randomParams, randomScoreRequests, table, timeIt } from './common.js';

const threads = benchSetupThreads('bench:int8');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const ROWS = Number(process.env.BENCH_INT8_ROWS ?? 8);
const SHAPES: Record<string, { numLayers: number; hiddenSize: number; numHeads: number }> = {
  '160m': { numLayers: 12, hiddenSize: 768, numHeads: 12 },
  '1b': { numLayers: 16, hiddenSize: 2048, numHeads: 8 },
};
const chosen = (process.env.BENCH_INT8_SHAPES ?? '160m,1b').split(',');

async function linearLayer(): Promise<(string | number)[][]> {
  const [M, K, N] = [512, 2048, 8192];
  const rng = new Prng(3);
  const x = Float32Array.from({ length: M * K }, () => rng.normal());
  const w = Float32Array.from({ length: N * K }, () => 0.02 * rng.normal());
  const int8 = quantizeRows(w, N, K);
  const g = new Graph();
  const xs = g.input('x', 'float32', [M, K]);
  const ws = g.input('w', 'float32', [N, K]);
  const qs = g.input('q', 'int8', [K, N]);
  const ss = g.input('s', 'float32', [N]);
  const float = await compile({ graph: g, outputs: { y: op.linear(xs, ws) } }, { threads });
  const quant = await compile({ graph: g, outputs: { y: op.quantizedLinear(xs, qs, ss) } }, { threads });
  const feeds = { x: { data: x, dims: [M, K] } };
  const tf = await timeIt(() => float.run({ ...feeds, w: { data: w, dims: [N, K] } }), RUNS + 2);
  const tq = await timeIt(
    () => quant.run({ ...feeds, q: { data: int8.q, dims: [K, N] }, s: { data: int8.scale, dims: [N] } }),
    RUNS + 2,
  );
  const gflops = (t: number) => ((2 * M * K * N) / t / 1e9).toFixed(0);
  return [
    [`linear ${M}×${K}×${N} float32`, (tf * 1000).toFixed(1), gflops(tf), ''],
    [`linear ${M}×${K}×${N} int8`, (tq * 1000).toFixed(1), gflops(tq), (tf / tq).toFixed(2)],
  ];
}

async function scoring(label: string): Promise<(string | number)[][]> {
  const config: NeoXConfig = { ...pythiaArchitecture(SHAPES[label]!), dtype: 'float32' };
  const params = randomParams(config);
  const requests = randomScoreRequests(config.vocabSize, ROWS);
  const tokens = ROWS * 128;
  const rows: (string | number)[][] = [];
  const results: number[][] = [];
  let floatSeconds = 0;
  for (const weights of ['float32', 'int8'] as const) {
    const scorer = await Scorer.create(config, params, { threads }, weights);
    let out: number[] = [];
    const seconds = await timeIt(async () => {
      out = (await scorer.score(requests, ROWS)).flatMap((r) => r.tokenLogprobs);
    }, RUNS);
    results.push(out);
    if (weights === 'float32') floatSeconds = seconds;
    rows.push([
      `score ${label} ${weights}`,
      (seconds * 1000).toFixed(0),
      (tokens / seconds).toFixed(0),
      weights === 'int8' ? (floatSeconds / seconds).toFixed(2) : '',
    ]);
  }
  // Greedy generation as memorization runs it: ROWS prompts of 32 tokens, 32 new tokens, weights fed.
  const prompts = requests.map((r) => r.context.slice(0, 32));
  let floatGenerate = 0;
  for (const weights of ['float32', 'int8'] as const) {
    const decoder = await Decoder.create(config, params, { threads, weights: 'inputs', format: weights });
    const seconds = await timeIt(() => generate(decoder, prompts, { maxNewTokens: 32 }), RUNS);
    if (weights === 'float32') floatGenerate = seconds;
    rows.push([
      `generate ${label} ${weights}`,
      (seconds * 1000).toFixed(0),
      ((ROWS * 32) / seconds).toFixed(0),
      weights === 'int8' ? (floatGenerate / seconds).toFixed(2) : '',
    ]);
    await decoder.release();
  }
  const diff = results[0]!.reduce((m, v, i) => Math.max(m, Math.abs(v - results[1]![i]!)), 0);
  console.log(
    `${label}: largest per-token log-likelihood difference int8 − float32 (random weights) ${diff.toFixed(4)}`,
  );
  return rows;
}

/** Per-token log-likelihoods and greedy continuations of one trained checkpoint, float32 against int8. */
async function trained(run: string, model: string, documents: number[][]): Promise<void> {
  const suite = join(run, 'suite');
  const steps = JSON.parse(readFileSync(join(suite, 'suite.json'), 'utf8')).models.find(
    (m: { name: string }) => m.name === model,
  ).checkpoints as number[];
  const { config, params } = loadCheckpoint(join(suite, model, `step${steps.at(-1)}`));
  const requests = documents.map((ids) => ({
    context: ids.slice(0, 1),
    continuation: ids.slice(1, config.maxPositions + 1),
  }));
  const logprobs: number[][][] = [];
  const continuations: number[][][] = [];
  for (const weights of ['float32', 'int8'] as const) {
    const scorer = await Scorer.create(config, params, { threads }, weights);
    logprobs.push((await scorer.score(requests, 8)).map((r) => r.tokenLogprobs));
    const decoder = await Decoder.create(config, params, { threads, weights: 'inputs', format: weights });
    const out: number[][] = [];
    for (let s = 0; s < documents.length; s += 32) {
      const prompts = documents.slice(s, s + 32).map((ids) => ids.slice(0, 32));
      out.push(...(await generate(decoder, prompts, { maxNewTokens: 32 })).map((g) => g.slice(32)));
    }
    continuations.push(out);
  }
  const [f, q] = logprobs as [number[][], number[][]];
  const diffs = f.flatMap((lps, i) => lps.map((lp, t) => Math.abs(q[i]![t]! - lp))).sort((a, b) => a - b);
  const at = (p: number) => diffs[Math.floor(p * (diffs.length - 1))]!.toFixed(4);
  const perplexity = (lps: number[][]) => Math.exp(-lps.flat().reduce((a, b) => a + b, 0) / diffs.length).toFixed(4);
  const [gf, gq] = continuations as [number[][], number[][]];
  const same = gf.filter((g, i) => g.every((t, k) => t === gq[i]![k])).length;
  const memorized = (gs: number[][]) => gs.filter((g, i) => g.every((t, k) => t === documents[i]![32 + k])).length;
  console.log(
    `${model} step ${steps.at(-1)}: ${documents.length} documents, ${diffs.length} tokens; |Δ log p| per token median ${at(0.5)}, p90 ${at(0.9)}, p99 ${at(0.99)}, max ${at(1)}; ` +
      `perplexity float32 ${perplexity(f)}, int8 ${perplexity(q)}; greedy continuations identical ${same}/${gf.length}; ` +
      `memorized (32 tokens equal to the document's) float32 ${memorized(gf)}, int8 ${memorized(gq)}`,
  );
}

const rows = await linearLayer();
for (const label of chosen) rows.push(...(await scoring(label)));
console.log(table(['what', 'ms', 'GFLOP/s or (new) tokens/s', 'int8 speed-up'], rows));

const run = process.env.BENCH_INT8_RUN;
if (run) {
  const tokenizer = await loadTokenizer(join(run, 'synth', 'tokenizer.json'));
  const lines = readFileSync(join(run, 'synth', 'corpus.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean);
  // 2,000 documents spread over the corpus (the training data), those of at least 64 tokens.
  const texts = Array.from({ length: 2000 }, (_, i) => JSON.parse(lines[Math.floor((i * lines.length) / 2000)]!).text);
  const documents = (await tokenizer.encodeBatch(texts))
    .map((ids) => [tokenizer.eodId, ...ids])
    .filter((ids) => ids.length >= 64);
  const suite = JSON.parse(readFileSync(join(run, 'suite', 'suite.json'), 'utf8'));
  for (const m of suite.models as { name: string }[]) await trained(run, m.name, documents);
}
