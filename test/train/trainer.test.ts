import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { PreshuffledWriter } from '../../src/data/preshuffled.js';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import type { NeoXConfig } from '../../src/model/config.js';
import { pythiaArchitecture } from '../../src/model/presets.js';
import { scaledCheckpointSchedule } from '../../src/train/checkpoint-schedule.js';
import { PYTHIA_INIT } from '../../src/train/init.js';
import type { TrainRecipe } from '../../src/train/recipes.js';
import { checkpointSteps, readLog } from '../../src/train/run-folder.js';
import { loadResumePoint, type TrainOptions, train } from '../../src/train/trainer.js';
import { trainedRelativeL2 } from '../support/check.js';
import { oncePerProcess } from '../support/once.js';

const config: NeoXConfig = {
  ...pythiaArchitecture({ numLayers: 2, hiddenSize: 32, numHeads: 2, vocabSize: 64, maxPositions: 16 }),
  dtype: 'float32',
};
const recipe: TrainRecipe = {
  seqLength: 16,
  trainBatchSize: 8,
  microBatchSize: 8,
  trainIters: 12,
  schedule: { lr: 3e-3, minLr: 3e-4, warmup: 0.1, decayIters: 12, decayStyle: 'cosine' },
  weightDecay: 0.1,
  gradientClipping: 1.0,
  betas: [0.9, 0.95],
  eps: 1e-8,
  optimizer: 'apex',
  seed: 1234,
  init: PYTHIA_INIT,
  checkpoint: scaledCheckpointSchedule(12, 3), // 0, 1, 2, 4, 8, 12
};

let work: string;
let data: string;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'pythia-trainer-'));
  data = join(work, 'data');
  // 14 steps' worth of samples (12 to train, 2 held out) of a learnable pattern: counting mod 64 with jumps.
  const writer = PreshuffledWriter.create(data, { vocabSize: 64, seqLength: 16 });
  for (let s = 0; s < 14 * 8; s++)
    writer.addSample(Array.from({ length: 17 }, (_, t) => (s * 7 + t * (1 + (s % 3))) % 64));
  await writer.finish();
});

after(() => rmSync(work, { recursive: true, force: true }));

function options(out: string, extra: Partial<TrainOptions> = {}): TrainOptions {
  return {
    name: 'tiny',
    config,
    recipe,
    data: { prefix: data, preshuffled: true },
    outDir: out,
    evalIters: 1,
    threads: 1,
    ...extra,
  };
}

function stepFiles(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const f of readdirSync(dir).sort()) files.set(f, readFileSync(join(dir, f)));
  return files;
}

/** The whole run, which the other tests compare with or resume from. */
const unbrokenRun = oncePerProcess(() => train(options(join(work, 'unbroken'))));

test('a run trains, saves on the schedule, logs every step, and two runs give identical checkpoint bytes', async () => {
  const a = await unbrokenRun();
  assert.deepEqual(a.checkpoints, [0, 1, 2, 4, 8, 12]);
  const log = readLog(a.logPath);
  const steps = log.filter((e) => e.loss !== undefined);
  assert.deepEqual(
    steps.map((e) => e.step),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
  );
  assert.equal(steps[0]!.lr, 0, 'the first update uses lr 0');
  assert.ok(steps.at(-1)!.loss! < steps[0]!.loss! - 0.5, `loss ${steps[0]!.loss} -> ${steps.at(-1)!.loss}`);
  assert.deepEqual(
    log.filter((e) => e.val_loss !== undefined).map((e) => e.step),
    [0, 1, 2, 4, 8, 12],
  );
  // Identical init and update at step 1 (lr 0 leaves the weights, only the moments change).
  const step0 = loadCheckpoint(join(a.modelDir, 'step0')).params;
  const step1 = loadCheckpoint(join(a.modelDir, 'step1')).params;
  assert.deepEqual(step1.get('embed_out.weight'), step0.get('embed_out.weight'));

  const b = await train(options(join(work, 'b')));
  for (const step of a.checkpoints) {
    const fa = stepFiles(join(a.modelDir, `step${step}`));
    const fb = stepFiles(join(b.modelDir, `step${step}`));
    assert.deepEqual([...fa.keys()], [...fb.keys()]);
    for (const [name, bytes] of fa) assert.ok(bytes.equals(fb.get(name)!), `step${step}/${name} differs`);
  }
  assert.deepEqual(a.batchHashes, b.batchHashes);
});

test('a run killed (SIGKILL) after step 6 and resumed ends with the same bytes as an unbroken run', async () => {
  const unbroken = (await unbrokenRun()).modelDir;
  const out = join(work, 'killed');
  const trainerUrl = pathToFileURL(
    join(fileURLToPath(new URL('.', import.meta.url)), '../../src/train/trainer.js'),
  ).href;
  // The child reports each step; after step 6 (checkpoints 0, 1, 2 and 4 saved, the log at step 6)
  // it waits for good, so the kill lands there and nowhere else.
  const script = `
    import { writeSync } from 'node:fs';
    const { train } = await import(${JSON.stringify(trainerUrl)});
    const o = JSON.parse(process.env.TRAIN_OPTIONS);
    await train({ ...o, onProgress: (p) => {
      writeSync(1, 'step ' + p.step + '\\n');
      if (p.step === 6) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    } });
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, TRAIN_OPTIONS: JSON.stringify(options(out)) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    child.stdout.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes('step 6\n')) child.kill('SIGKILL');
    });
    child.on('exit', (_code, signal) =>
      signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited without being killed: ${seen}`)),
    );
  });
  assert.deepEqual(checkpointSteps(join(out, 'tiny')), [0, 1, 2, 4]);
  const logged = readLog(join(out, 'tiny', 'log.jsonl')).filter((e) => e.loss !== undefined);
  assert.deepEqual(
    logged.map((e) => e.step),
    [1, 2, 3, 4, 5, 6],
  );
  const resumed = await train(options(out, { resume: loadResumePoint(join(out, 'tiny', 'step4')) }));
  assert.deepEqual(resumed.checkpoints, [8, 12]);
  for (const step of [8, 12]) {
    const fa = stepFiles(join(unbroken, `step${step}`));
    const fb = stepFiles(join(out, 'tiny', `step${step}`));
    assert.deepEqual([...fb.keys()], [...fa.keys()]);
    for (const [name, bytes] of fa) assert.ok(bytes.equals(fb.get(name)!), `step${step}/${name} differs after resume`);
  }
  // The log holds each step once, in order, with the unbroken run's losses.
  const strip = (e: ReturnType<typeof readLog>[number]) => ({ ...e, tokens_per_s: 0 });
  assert.deepEqual(readLog(join(out, 'tiny', 'log.jsonl')).map(strip), readLog(join(unbroken, 'log.jsonl')).map(strip));
  await assert.rejects(train(options(out)), /already holds checkpoints/);
});

test('gradient accumulation of 4 micro-batches of B/4 matches one batch of B', async () => {
  const three = { ...recipe, trainIters: 3, checkpoint: { checkpointScale: 'linear' as const, extraSaveIters: [] } };
  const whole = await train(options(join(work, 'whole'), { recipe: three, evalIters: 0 }));
  const split = await train(options(join(work, 'split'), { recipe: { ...three, microBatchSize: 2 }, evalIters: 0 }));
  const lw = readLog(whole.logPath);
  const ls = readLog(split.logPath);
  lw.forEach((e, i) => {
    assert.ok(Math.abs(e.loss! - ls[i]!.loss!) < 1e-5, `loss ${e.loss} vs ${ls[i]!.loss}`);
    assert.ok(
      Math.abs(e.grad_norm! - ls[i]!.grad_norm!) / e.grad_norm! < 1e-5,
      `grad norm ${e.grad_norm} vs ${ls[i]!.grad_norm}`,
    );
  });
  const pw = loadCheckpoint(join(whole.modelDir, 'step3')).params;
  const ps = loadCheckpoint(join(split.modelDir, 'step3')).params;
  const headDim = config.hiddenSize / config.numHeads;
  for (const [name, w] of pw) {
    const err = trainedRelativeL2(name, ps.get(name)!, w, headDim);
    assert.ok(err < 1e-5, `${name}: relative L2 ${err}`);
  }
});

test('bad data fails in one line: too few samples, token ids outside the vocabulary', async () => {
  await assert.rejects(
    train(
      options(join(work, 'short'), {
        recipe: { ...recipe, trainIters: 20, schedule: { ...recipe.schedule, decayIters: 20 } },
      }),
    ),
    /112 samples, but 20 steps of 8 need 160/,
  );
  const small = { ...config, vocabSize: 32 };
  await assert.rejects(
    train(options(join(work, 'vocab'), { config: small })),
    /token id \d+, outside the model's vocabulary \[0, 32\)/,
  );
});

test('resume reads trainer states of the older flat recipe layout, and names a missing field in one line', async () => {
  const from = join((await unbrokenRun()).modelDir, 'step8');
  const old = join(work, 'old', 'tiny', 'step8');
  cpSync(from, old, { recursive: true });
  const state = JSON.parse(readFileSync(join(from, 'trainer_state.json'), 'utf8'));
  const { schedule, ...rest } = state.recipe;
  const flat = {
    ...rest,
    lrDecayIters: schedule.decayIters,
    lr: schedule.lr,
    minLr: schedule.minLr,
    lrDecayStyle: schedule.decayStyle,
    warmup: schedule.warmup,
  };
  writeFileSync(join(old, 'trainer_state.json'), JSON.stringify({ ...state, recipe: flat }));
  assert.deepEqual(loadResumePoint(old).state.recipe, recipe);
  const { step: _, ...noStep } = state;
  writeFileSync(join(old, 'trainer_state.json'), JSON.stringify(noStep));
  assert.throws(
    () => loadResumePoint(old),
    /trainer_state\.json: cannot resume: field step is missing \(expected a non-negative integer\)/,
  );
  writeFileSync(
    join(old, 'trainer_state.json'),
    JSON.stringify({ ...state, recipe: { ...state.recipe, schedule: undefined } }),
  );
  assert.throws(() => loadResumePoint(old), /cannot resume: recipe\.schedule is missing, expected an object/);
});
