/**
 * `npm run bench:train`: training tokens/s and model FLOP/s of a whole optimizer step (forward,
 * backward, global-norm clipping, AdamW) for the side-by-side shapes, beside PyTorch eager's
 * training on the same machine and threads (../shared/bench/torch_gptneox.py --bench).
 *
 * Model FLOPs per token: 6 × (parameters except the input embedding) for the matrix products of
 * forward and backward, plus 12 × L × T × d for attention scores and values (the PaLM count).
 */
import { countParameters, type NeoXConfig, parameterShapes } from '../src/model/config.js';
import { createTrainStep } from '../src/model/train-step.js';
import { AdamW, noWeightDecay, PYTHIA_ADAM } from '../src/train/adamw.js';
import { clipGradNorm } from '../src/train/grad-clip.js';
import { SHAPES, benchSetup, configFor, randomParams, randomTokens, table, timeIt } from './common.js';

/** PyTorch eager training tokens/s recorded idle on this class of machine (issue 6). */
const RECORDED_TORCH_TRAIN: Record<string, number> = { 'd=64/L=2': 8568, 'd=128/L=4': 2581, 'd=256/L=4': 1251, 'pythia-70m': 198 };

function flopsPerToken(config: NeoXConfig, seq: number): number {
  const matmulParams = countParameters(config).total - config.vocabSize * config.hiddenSize;
  return 6 * matmulParams + 12 * config.numLayers * seq * config.hiddenSize;
}

const { threads, torch } = benchSetup('bench:train');

const rows: (string | number)[][] = [];
for (const shape of SHAPES) {
  const config = configFor(shape);
  const params = randomParams(config);
  const step = await createTrainStep(config, { batch: shape.B, seq: shape.T, threads });
  const optimizer = new AdamW(PYTHIA_ADAM, params, noWeightDecay(parameterShapes(config)));
  const tokens = Int32Array.from(randomTokens(shape.B * (shape.T + 1), shape.V), Number);
  const seconds = await timeIt(async () => {
    const { grads } = await step.run(params, tokens);
    clipGradNorm(grads, 1.0);
    optimizer.step(params, grads, 1e-4);
  }, shape.label === 'pythia-70m' ? 3 : 5);
  const tokS = (shape.B * shape.T) / seconds;
  const torchRow = torch.results.find((r) => r.d === shape.d && r.L === shape.L);
  const torchTokS = torchRow?.train_tok_s ?? RECORDED_TORCH_TRAIN[shape.label]!;
  rows.push([
    shape.label,
    Math.round(tokS),
    ((tokS * flopsPerToken(config, shape.T)) / 1e9).toFixed(1),
    Math.round(torchTokS),
    `${(tokS / torchTokS).toFixed(2)}×`,
  ]);
  console.log(table(['shape', 'train tok/s', 'model GFLOP/s', 'torch train tok/s', 'ratio'], rows));
  console.log('');
}
