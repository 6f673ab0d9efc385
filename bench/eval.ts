/**
 * `npm run bench:eval`: multiple-choice scoring items/s at the pythia-70m shape (random weights,
 * 4 choices an item, contexts of 48–160 tokens and choices of 4–24, as PIQA- or HellaSwag-like
 * items run), through the Scorer that `pythia eval` uses, beside Hugging Face transformers'
 * GPTNeoXForCausalLM on PyTorch scoring the same token requests the same way (bench/hf_score.py),
 * with the fp32 matmul peak of both measured in the same run.
 */
import { availableParallelism } from 'node:os';
import { type ScoreRequest, Scorer } from '../src/model/score.js';
import { Prng } from '../src/util/prng.js';
import { matmulPeak, table, timeIt } from './common.js';
import { pythia70mSideBySide, runOnHfCheckpoint } from './hf.js';

const threads = Number(process.env.BENCH_THREADS ?? availableParallelism());
const ITEMS = Number(process.env.BENCH_EVAL_ITEMS ?? 48);
const CHOICES = 4;
const BATCH = 16;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

const { hf, shape, config, params } = pythia70mSideBySide('bench:eval', threads);
const rng = new Prng(11);
const token = () => rng.int(shape.V);
const requests: ScoreRequest[] = [];
for (let i = 0; i < ITEMS; i++) {
  const context = Array.from({ length: rng.between(48, 160) }, token);
  for (let c = 0; c < CHOICES; c++)
    requests.push({ context, continuation: Array.from({ length: rng.between(4, 24) }, token) });
}

const scorer = await Scorer.create(config, params, { threads });
let ours: number[] = [];
const seconds = await timeIt(
  async () => {
    ours = (await scorer.score(requests, BATCH)).map((r) => r.logprob);
  },
  RUNS,
  1,
);
const oursItems = ITEMS / seconds;
const peak = await matmulPeak(threads);

const rows: (string | number)[][] = [['pythia-ts (onnxruntime)', oursItems.toFixed(2), `${peak.toFixed(0)}`, '']];
if (hf.python) {
  const base = await runOnHfCheckpoint<{
    items_per_s: number;
    first_logprobs: number[];
    torch: string;
    matmul_gflops: number;
  }>(hf.python, 'hf_score.py', config, params, [threads, BATCH, RUNS], { 'requests.json': { items: ITEMS, requests } });
  const drift = Math.max(...base.first_logprobs.map((x, i) => Math.abs(x - ours[i]!)));
  rows.push([`HF transformers, torch ${base.torch}`, base.items_per_s.toFixed(2), base.matmul_gflops.toFixed(0), '']);
  rows[0]![3] = `${(oursItems / base.items_per_s).toFixed(2)}x`;
  console.log(`same scores: max |Δ log-likelihood| over the first 8 requests ${drift.toExponential(1)}`);
}
console.log(
  `\nmultiple-choice scoring at the pythia-70m shape: ${ITEMS} items x ${CHOICES} choices, batches of ${BATCH}, median of ${RUNS}`,
);
console.log(table(['scorer', 'items/s', 'fp32 matmul peak GFLOP/s', 'vs HF'], rows));
