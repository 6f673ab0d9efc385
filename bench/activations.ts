/**
 * `npm run bench:activations`: runWithCache of every named activation at the pythia-70m shape
 * (T = 512, batch 1, random weights, float32) beside the plain decomposed forward (`forward`, the
 * logits) and beside Hugging Face transformers with output_hidden_states and output_attentions
 * (eager attention) on the identical weights (bench/hf_activations.py), BENCH_THREADS threads
 * (default 2), medians of BENCH_RUNS runs (default 3) after one warm-up, and the fp32 matmul peak of
 * both sides measured in the same run. The issue's targets: every name at most 1.5× the plain
 * forward, and at least 1.5× faster than transformers.
 */
import { ActivationRunner } from '../src/model/activations.js';
import { forward } from '../src/model/forward.js';
import { activationNames } from '../src/model/hooks.js';
import { flopsPerToken, loadNote, matmulPeak, randomTokens, table, timeIt } from './common.js';
import { pythia70mSideBySide, runOnHfCheckpoint } from './hf.js';

const threads = Number(process.env.BENCH_THREADS ?? 2);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SEQ = 512;

const { hf, shape, config, params } = pythia70mSideBySide('bench:activations', threads);
const ids = randomTokens(SEQ, shape.V, 7);
const names = activationNames(config);
const runner = new ActivationRunner(config, params, { threads });

const plain = await timeIt(() => forward(config, params, ids, 1, {}, { threads }), RUNS, 1);
let bytes = 0;
const everyName = await timeIt(
  async () => {
    const { cache, logits } = await runner.run(ids, 1, { names, logits: 'all' });
    bytes = [...cache.values(), logits!].reduce((s, a) => s + a.data.byteLength, 0);
  },
  RUNS,
  1,
);
const withoutLogits = await timeIt(() => runner.run(ids, 1, { names }), RUNS, 1);
const residOnly = await timeIt(
  () => runner.run(ids, 1, { names: ['blocks.*.hook_resid_pre'], logits: 'all' }),
  RUNS,
  1,
);
await runner.release();
const peak = await matmulPeak(threads);

interface HfResult {
  seconds: number;
  torch: string;
  transformers: string;
  matmul_gflops: number;
}
const base = hf.python
  ? await runOnHfCheckpoint<HfResult>(hf.python, 'hf_activations.py', config, params, [threads, RUNS], {
      'tokens.json': [Array.from(ids, Number)],
    })
  : undefined;

// The model's FLOPs (common.ts's count), less the LM head's 2·V·d per token where no logits are computed.
const flops = flopsPerToken(config, SEQ, 'forward') * SEQ;
const headless = flops - 2 * config.vocabSize * config.hiddenSize * SEQ;
const ofPeak = (seconds: number, gflops: number, work = flops): string =>
  `${((work / seconds / 1e9 / gflops) * 100).toFixed(0)}%`;
const row = (what: string, seconds: number, work = flops): (string | number)[] => [
  what,
  (seconds * 1000).toFixed(0),
  (SEQ / seconds).toFixed(0),
  ofPeak(seconds, peak, work),
  `${(seconds / plain).toFixed(2)}x`,
  base ? `${(base.seconds / seconds).toFixed(2)}x` : '-',
];
console.log(
  `\nnamed activations at the pythia-70m shape: batch 1 × ${SEQ} tokens, ${names.length} names (${(bytes / 2 ** 20).toFixed(0)} MiB with the logits), median of ${RUNS}; ${loadNote()}`,
);
console.log(
  `fp32 matmul peak: ${peak.toFixed(0)} GFLOP/s (onnxruntime)${base ? `, ${base.matmul_gflops.toFixed(0)} GFLOP/s (torch ${base.torch}, transformers ${base.transformers})` : ''}`,
);
const rows = [
  row('plain decomposed forward (logits)', plain),
  row('runWithCache, every name + logits', everyName),
  row('runWithCache, every name (no logits)', withoutLogits, headless),
  row('runWithCache, hook_resid_pre + logits (fused)', residOnly),
];
if (base)
  rows.push([
    'HF eager, hidden_states + attentions',
    (base.seconds * 1000).toFixed(0),
    (SEQ / base.seconds).toFixed(0),
    ofPeak(base.seconds, base.matmul_gflops),
    `${(base.seconds / plain).toFixed(2)}x`,
    '1.00x',
  ]);
console.log(table(['run', 'ms', 'tok/s', 'of peak', 'vs plain forward', 'HF time / this'], rows));
console.log(
  `targets: every name + logits ≤ 1.5× the plain forward (${(everyName / plain).toFixed(2)}×)${base ? `; ≥ 1.5× faster than HF (${(base.seconds / everyName).toFixed(2)}×)` : ''}`,
);
