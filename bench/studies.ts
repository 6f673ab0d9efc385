/**
 * `npm run bench:studies`: the six interpretability studies of issue 24 on one random checkpoint of
 * pythia-70m's shape (6 layers, d_model 512, 8 heads, vocab 50304, float32), written with a second
 * one (the "previous" checkpoint of the weights study) into a temporary folder, over BENCH_TOKENS
 * held-out tokens (default 16384: rows of 1024 seeded random tokens, a .bin/.idx dataset read with
 * datasetHeldOut), each timed once beside the same computation in PyTorch with Hugging Face
 * transformers (bench/hf_studies.py, GPTNeoXForCausalLM loaded from the same folder, eager
 * attention), BENCH_THREADS threads on both sides (default 2), and each side's fp32 matmul peak
 * measured in the same run. Both sides' numbers must agree within 1e-3 relative before any time is
 * printed. The issue's target: ours at least 1.5× faster on every study.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { datasetHeldOut } from '../src/analysis/held-out.js';
import { lossBatchRows, tokenLosses } from '../src/analysis/token-curves.js';
import { weightStats, weightsSha256 } from '../src/analysis/weight-stats.js';
import { IndexedDatasetWriter } from '../src/data/indexed-dataset.js';
import { ActivationRunner } from '../src/model/activations.js';
import { loadCheckpoint, saveCheckpoint } from '../src/model/checkpoint.js';
import { headScores } from '../src/model/head-detectors.js';
import { iclPositions, iclScore, inductionLoss } from '../src/model/icl.js';
import { type LensLayer, logitLens } from '../src/model/logit-lens.js';
import { REPEAT_LENGTH, repeatedRandomTokens, repeatTokenRange } from '../src/model/repeated-tokens.js';
import { Scorer } from '../src/model/score.js';
import { TUNED_LENS_DEFAULTS, type TunedLens, trainTunedLens, tunedLensLayers } from '../src/model/tuned-lens.js';
import { Prng } from '../src/util/prng.js';
import { configFor, hfPython, loadNote, matmulPeak, randomParams, randomTokens, SHAPES, table } from './common.js';

const threads = Number(process.env.BENCH_THREADS ?? 2);
const TOKENS = Number(process.env.BENCH_TOKENS ?? 16384);
const LENGTH = Math.min(1024, TOKENS);
const ROWS = Math.floor(TOKENS / LENGTH);
/** The tuned lens's training: a few steps of one row each (one row, so both sides read the same). */
const TRAIN = { ...TUNED_LENS_DEFAULTS, steps: 2, tokensPerStep: LENGTH };
/** TransformerLens's induction_loss: 4 sequences of 2 × 384 random tokens; the head detectors read the same. */
const REPEATED = 4;
const TOLERANCE = 1e-3;
const TARGET = 1.5;

console.log(`bench:studies, ${threads} threads; ${loadNote()}`);
const hf = hfPython();
console.log(hf.note);
const shape = SHAPES.find((s) => s.label === 'pythia-70m')!;
const config = configFor(shape);
const runtime = { threads };

const dir = mkdtempSync(join(tmpdir(), 'pythia-bench-studies-'));
try {
  await saveCheckpoint(join(dir, 'model'), config, randomParams(config, 0));
  await saveCheckpoint(join(dir, 'previous'), config, randomParams(config, 1));
  const writer = IndexedDatasetWriter.create(join(dir, 'held'), { vocabSize: config.vocabSize });
  const stream = randomTokens(ROWS * LENGTH, config.vocabSize, 11);
  for (let r = 0; r < ROWS; r++) writer.add(Array.from(stream.subarray(r * LENGTH, (r + 1) * LENGTH), Number));
  await writer.finish();
  const lens = randomLens(config.numLayers, config.hiddenSize, 5);
  writeFileSync(
    join(dir, 'translator.f32'),
    Buffer.concat([...lens.weights, ...lens.biases].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength))),
  );
  const repeated = repeatedRandomTokens(REPEATED, REPEAT_LENGTH, repeatTokenRange(config.vocabSize), 0);
  const positions = iclPositions(config.maxPositions);
  writeFileSync(join(dir, 'repeated.json'), JSON.stringify(repeated));
  const settings = { threads, rows: ROWS, length: LENGTH, train: TRAIN, ...positions };
  writeFileSync(join(dir, 'settings.json'), JSON.stringify(settings));

  const { params } = loadCheckpoint(join(dir, 'model'));
  const previous = loadCheckpoint(join(dir, 'previous')).params;
  const held = datasetHeldOut(join(dir, 'held'), { rows: ROWS, length: LENGTH });
  const ids = BigInt64Array.from(held.tokens, (t) => BigInt(t));
  const textRows = Array.from({ length: ROWS }, (_, r) =>
    Array.from(held.tokens.subarray(r * LENGTH, (r + 1) * LENGTH)),
  );
  console.log(
    `pythia-70m shape, random weights; ${ROWS} held-out rows × ${LENGTH} tokens; tuned lens trained ${TRAIN.steps} steps of ${TRAIN.tokensPerStep} tokens; ${REPEATED} sequences of 2 × ${REPEAT_LENGTH} repeated tokens; ICL positions ${positions.early} and ${positions.late}`,
  );

  const ours: Record<string, number[]> = {};
  const times: Record<string, number> = {};
  const timed = async (study: string, fn: () => Promise<void>) => {
    const t0 = performance.now();
    await fn();
    times[study] = (performance.now() - t0) / 1000;
    console.log(`  ours: ${study} ${times[study].toFixed(1)} s`);
  };
  const withRunner = async <T>(fn: (runner: ActivationRunner) => Promise<T>): Promise<T> => {
    const runner = new ActivationRunner(config, params, runtime);
    try {
      return await fn(runner);
    } finally {
      await runner.release();
    }
  };
  const withScorer = async <T>(fn: (scorer: Scorer) => Promise<T>): Promise<T> => {
    const scorer = await Scorer.create(config, params, runtime);
    try {
      return await fn(scorer);
    } finally {
      scorer.release();
    }
  };

  await timed('logit lens', async () => {
    Object.assign(ours, lensNumbers('logit', await withRunner((r) => logitLens(r, params, ids, ROWS, { runtime }))));
  });
  await timed('tuned lens, evaluation', async () => {
    const layers = await withRunner((r) => tunedLensLayers(r, params, lens, ids, ROWS, { runtime }));
    Object.assign(ours, lensNumbers('tuned', layers));
  });
  await timed('tuned lens, training', async () => {
    const data = { tokens: held.tokens.slice(0, LENGTH), rows: 1, length: LENGTH };
    const trained = await withRunner((r) => trainTunedLens(r, params, data, TRAIN, { runtime }));
    ours['train.losses'] = trained.losses;
  });
  await timed('head detectors', async () => {
    const scores = await withRunner((r) => headScores(r, repeated));
    ours['heads.previous_token'] = scores.map((s) => s.previousToken);
    ours['heads.duplicate_token'] = scores.map((s) => s.duplicateToken);
    ours['heads.induction'] = scores.map((s) => s.induction);
  });
  await timed('induction loss + ICL score', async () => {
    const [induction, icl] = await withScorer(
      async (s) => [await inductionLoss(s, repeated), await iclScore(s, textRows, positions)] as const,
    );
    ours['icl.induction_loss'] = [induction];
    ours['icl.early_late'] = [icl.earlyLoss, icl.lateLoss];
  });
  await timed('per-token losses', async () => {
    const losses = await withScorer((s) => tokenLosses(s, held, lossBatchRows(LENGTH, config.vocabSize, 8)));
    ours.token_losses = Array.from(losses);
  });
  let sha256 = '';
  await timed('weight stats + hash', async () => {
    const stats = weightStats(config, params, previous);
    sha256 = weightsSha256(params);
    ours['weights.norm'] = stats.map((s) => s.norm);
    ours['weights.relative_change'] = stats.map((s) => s.relativeChange!);
    ours['weights.cosine'] = stats.map((s) => s.cosine!);
  });
  const peak = await matmulPeak(threads);

  if (!hf.python) {
    console.log(
      table(
        ['study', 'ours (s)'],
        Object.entries(times).map(([s, t]) => [s, t.toFixed(2)]),
      ),
    );
    console.log(`fp32 matmul peak: ${peak.toFixed(0)} GFLOP/s (onnxruntime); ${loadNote()}`);
  } else {
    const theirs = runPython(hf.python, dir);
    const disagreements = compare(ours, theirs.results);
    if (theirs.sha256 !== sha256) disagreements.push(`weights sha256: ours ${sha256}, PyTorch ${theirs.sha256}`);
    if (disagreements.length > 0) {
      console.log(`the two sides disagree (beyond ${TOLERANCE} relative); no times printed:`);
      for (const d of disagreements) console.log(`  ${d}`);
      process.exitCode = 1;
    } else {
      console.log(
        `\nevery number agrees within ${TOLERANCE} relative (${Object.values(ours).reduce((n, v) => n + v.length, 0)} values and the weights' sha256)`,
      );
      const rows = Object.entries(times).map(([study, t]) => {
        const base = theirs.times[study]!;
        return [study, t.toFixed(2), base.toFixed(2), `${(base / t).toFixed(2)}x`];
      });
      const total = Object.values(times).reduce((a, b) => a + b, 0);
      const baseTotal = Object.values(theirs.times).reduce((a, b) => a + b, 0);
      rows.push(['all six', total.toFixed(2), baseTotal.toFixed(2), `${(baseTotal / total).toFixed(2)}x`]);
      console.log(table(['study', 'ours (s)', 'PyTorch (s)', 'PyTorch / ours'], rows));
      console.log(
        `fp32 matmul peak: ${peak.toFixed(0)} GFLOP/s (onnxruntime), ${theirs.matmul_gflops.toFixed(0)} GFLOP/s (torch ${theirs.torch}, transformers ${theirs.transformers}); ${threads} threads each; ${loadNote()}`,
      );
      const slower = Object.entries(times).filter(([s, t]) => theirs.times[s]! / t < TARGET);
      console.log(
        slower.length === 0
          ? `target (ours ≥ ${TARGET}× faster on every study): met`
          : `target (ours ≥ ${TARGET}× faster on every study): not met on ${slower.map(([s]) => s).join(', ')}`,
      );
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** Translators of seeded random values, small enough that the lens stays near the logit lens. */
function randomLens(layers: number, hidden: number, seed: number): TunedLens {
  const rng = new Prng(seed);
  const fill = (n: number, scale: number) => Float32Array.from({ length: n }, () => scale * rng.normal());
  return {
    hiddenSize: hidden,
    weights: Array.from({ length: layers }, () => fill(hidden * hidden, 0.01)),
    biases: Array.from({ length: layers }, () => fill(hidden, 0.01)),
  };
}

function lensNumbers(prefix: string, layers: readonly LensLayer[]): Record<string, number[]> {
  return Object.fromEntries(
    (['kl', 'ce', 'entropy', 'top1'] as const).map((m) => [`${prefix}.${m}`, layers.map((l) => l[m])]),
  );
}

interface PythonSide {
  times: Record<string, number>;
  results: Record<string, number[]>;
  sha256: string;
  matmul_gflops: number;
  torch: string;
  transformers: string;
}

function runPython(python: string, folder: string): PythonSide {
  const r = spawnSync(python, [join(process.cwd(), 'bench', 'hf_studies.py'), folder], {
    encoding: 'utf8',
    timeout: 3_600_000,
    maxBuffer: 256 << 20,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = r.stdout
    ?.trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  if (r.status !== 0 || !line) throw new Error(`bench/hf_studies.py failed (exit ${r.status ?? r.signal})`);
  return JSON.parse(line) as PythonSide;
}

/** Every value pair that differs by more than TOLERANCE relative to the larger (1e-6 absolute near 0). */
function compare(ours: Record<string, number[]>, theirs: Record<string, number[]>): string[] {
  const out: string[] = [];
  for (const [key, values] of Object.entries(ours)) {
    const other = theirs[key];
    if (!other || other.length !== values.length) {
      out.push(`${key}: ${values.length} values here, ${other?.length ?? 'none'} from PyTorch`);
      continue;
    }
    let worst = 0;
    let at = -1;
    values.forEach((a, i) => {
      const b = other[i]!;
      const excess = Math.abs(a - b) / Math.max(TOLERANCE * Math.max(Math.abs(a), Math.abs(b)), 1e-6);
      if (excess > worst) [worst, at] = [excess, i];
    });
    if (worst > 1) out.push(`${key}[${at}]: ours ${values[at]}, PyTorch ${other[at]}`);
  }
  return out;
}
