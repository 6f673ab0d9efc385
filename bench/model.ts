/**
 * `npm run bench:model`: forward tokens/s (scoring: only target log-probabilities come back) and
 * generation tokens/s with the KV cache against a full recompute, for the side-by-side shapes,
 * beside PyTorch eager's forward on the same machine and threads.
 */
import { Decoder } from '../src/model/decoder.js';
import { generate } from '../src/model/generate.js';
import { Scorer } from '../src/model/score.js';
import { benchSetup, configFor, median, randomParams, randomTokens, SHAPES, table, timeIt } from './common.js';

/** PyTorch eager forward tokens/s recorded idle on this class of machine (issue 3). */
const RECORDED_TORCH_FORWARD: Record<string, number> = {
  'd=64/L=2': 21559,
  'd=128/L=4': 9264,
  'd=256/L=4': 3415,
  'pythia-70m': 814,
};
const NEW_TOKENS = Number(process.env.BENCH_NEW_TOKENS ?? 256);

const { threads, torch } = benchSetup('bench:model');

const rows: (string | number)[][] = [];
for (const shape of SHAPES) {
  const config = configFor(shape);
  const params = randomParams(config);
  const scorer = await Scorer.create(config, params, { threads });
  const tokens = randomTokens(shape.B * (shape.T + 1), shape.V);
  const requests = Array.from({ length: shape.B }, (_, b) => {
    const row = Array.from(tokens.subarray(b * (shape.T + 1), (b + 1) * (shape.T + 1)), Number);
    return { context: row.slice(0, 1), continuation: row.slice(1) };
  });
  const small = shape.label !== 'pythia-70m';
  // Medians of many runs: this class of machine shares its cores, and short runs swing by 2×.
  const forwardSeconds = await timeIt(() => scorer.score(requests, shape.B), small ? 15 : 3, small ? 3 : 1);
  const forwardTokS = (shape.B * shape.T) / forwardSeconds;

  const decoder = await Decoder.create(config, params, { threads });
  const prompt = [Array.from(tokens.subarray(0, 16), Number)];
  // Both modes warmed up first (onnxruntime pays once for every new input shape, and a run meets
  // 256 of them), then timed in alternation, so that both see the same load on these shared cores.
  const cached = () => generate(decoder, prompt, { maxNewTokens: NEW_TOKENS });
  const recompute = () => generate(decoder, prompt, { maxNewTokens: NEW_TOKENS, noCache: true });
  await cached();
  await recompute();
  const cachedTimes: number[] = [];
  const recomputeTimes: number[] = [];
  for (let round = 0; round < (small ? 7 : 2); round++) {
    cachedTimes.push(await timeIt(cached, 1, 0));
    recomputeTimes.push(await timeIt(recompute, 1, 0));
  }
  const [cachedSeconds, recomputeSeconds] = [median(cachedTimes), median(recomputeTimes)];
  await decoder.release();
  const torchForward =
    torch.results.find((r) => r.d === shape.d && r.L === shape.L)?.fwd_tok_s ?? RECORDED_TORCH_FORWARD[shape.label]!;
  rows.push([
    shape.label,
    Math.round(forwardTokS),
    Math.round(torchForward),
    `${(forwardTokS / torchForward).toFixed(2)}×`,
    Math.round(NEW_TOKENS / cachedSeconds),
    Math.round(NEW_TOKENS / recomputeSeconds),
    `${(recomputeSeconds / cachedSeconds).toFixed(1)}×`,
  ]);
  console.log(
    table(
      [
        'shape',
        'forward tok/s',
        'torch fwd tok/s',
        'ratio',
        `gen tok/s (cache, ${NEW_TOKENS} new)`,
        'gen tok/s (recompute)',
        'cache speed-up',
      ],
      rows,
    ),
  );
  console.log('');
}
