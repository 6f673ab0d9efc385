/** `--intervention-from`: the sibling run that continues a baseline's checkpoint with pronouns swapped. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PreshuffledWriter } from '../../src/data/preshuffled.js';
import { pythiaArchitecture } from '../../src/model/presets.js';
import { PYTHIA_CHECKPOINT_SCHEDULE, scaledCheckpointSchedule } from '../../src/train/checkpoint-schedule.js';
import { PYTHIA_INIT } from '../../src/train/init.js';
import { interventionStart, nearestCheckpoint, parseInterventionFrom } from '../../src/train/intervention-point.js';
import type { TrainRecipe } from '../../src/train/recipes.js';
import { runSuite } from '../../src/train/suite.js';
import {
  type InterventionStart,
  loadResumePoint,
  readLog,
  type TrainerState,
  type TrainOptions,
  train,
} from '../../src/train/trainer.js';
import { repoRoot } from '../support/paths.js';
import { pronounCorpus, sampleAt } from './support.js';

const SEQ = 16;
const B = 4;
const STEPS = 8;
let work: string;
let tokenizerPath: string;
/** The samples of the data file, in training order (preshuffled): batch k−1 is samples [(k−1)·B, k·B). */
let samples: number[][];
/** The pronoun swap written out by hand for this corpus, where every pronoun is a word-initial token. */
let handSwap: Map<number, number>;

const config = {
  ...pythiaArchitecture({ numLayers: 1, hiddenSize: 32, numHeads: 2, vocabSize: 384, maxPositions: SEQ }),
  dtype: 'float32' as const,
};
const recipe: TrainRecipe = {
  seqLength: SEQ,
  trainBatchSize: B,
  microBatchSize: B,
  trainIters: STEPS,
  schedule: { lr: 1e-3, minLr: 1e-4, warmup: 0, decayIters: STEPS, decayStyle: 'cosine' },
  weightDecay: 0.1,
  gradientClipping: 1,
  betas: [0.9, 0.95],
  eps: 1e-8,
  optimizer: 'apex',
  seed: 1,
  init: PYTHIA_INIT,
  checkpoint: { checkpointFactor: 2, checkpointScale: 'linear', extraSaveIters: [0] }, // 0, 2, 4, 6, 8
};

async function writeData(prefix: string, rows: number[][]): Promise<void> {
  const writer = PreshuffledWriter.create(prefix, { vocabSize: 300, seqLength: SEQ });
  for (const row of rows) writer.addSample(row);
  await writer.finish();
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'pythia-intervention-from-'));
  const corpus = await pronounCorpus(work);
  tokenizerPath = corpus.tokenizerPath;
  const id = async (word: string): Promise<number> => {
    const ids = await corpus.tokenizer.encode(word);
    assert.equal(ids.length, 1, `${JSON.stringify(word)} is one token`);
    return ids[0]!;
  };
  handSwap = new Map([
    [await id(' he'), await id(' she')],
    [await id(' his'), await id(' her')],
    [await id(' him'), await id(' her')],
  ]);
  samples = Array.from({ length: STEPS * B }, (_, s) => sampleAt(corpus.stream, s, SEQ));
  await writeData(join(work, 'data'), samples);
});

after(() => rmSync(work, { recursive: true, force: true }));

const sha256 = (rows: number[][]): string =>
  createHash('sha256')
    .update(new Uint8Array(Int32Array.from(rows.flat()).buffer))
    .digest('hex');
const batch = (step: number, rows = samples): number[][] => rows.slice((step - 1) * B, step * B);
const swapped = (rows: number[][]): number[][] => rows.map((r) => r.map((t) => handSwap.get(t) ?? t));
const fileBytes = (dir: string): Map<string, Buffer> =>
  new Map(
    readdirSync(dir)
      .sort()
      .map((f) => [f, readFileSync(join(dir, f))]),
  );

function options(out: string, extra: Partial<TrainOptions> = {}): TrainOptions {
  return {
    name: 'm',
    config,
    recipe,
    data: { prefix: join(work, 'data'), preshuffled: true },
    outDir: out,
    tokenizerPath,
    threads: 1,
    evalIters: 0,
    ...extra,
  };
}

test('the chosen checkpoint: nearest by |step − target|, ties to the earlier, for fractions and steps', () => {
  // Pythia: 143,000 steps saved every 1,000 (and 0, 1, 2, 4, …, 512).
  const pythia = { trainIters: 143000, checkpoint: PYTHIA_CHECKPOINT_SCHEDULE };
  assert.deepEqual(interventionStart({ fraction: 0.93 }, pythia), { target: 0.93 * 143000, step: 133000 }); // 132,990: the last 7%
  assert.equal(interventionStart({ fraction: 0.79 }, pythia).step, 113000); // 112,970: the long run's 21%
  assert.equal(interventionStart({ step: 132500 }, pythia).step, 132000); // a tie: the earlier
  assert.equal(interventionStart({ step: 700 }, pythia).step, 512); // |700 − 512| = 188 < |700 − 1000| = 300
  // The nano schedule: 0, 1, 2, 4, 8, 16, then every 32 to 256.
  const nano = { trainIters: 256, checkpoint: scaledCheckpointSchedule(256, 8) };
  assert.equal(interventionStart({ fraction: 0.93 }, nano).step, 224); // 238.08: 14.08 from 224, 17.92 from 256
  assert.equal(interventionStart({ fraction: 0.79 }, nano).step, 192); // 202.24
  assert.equal(interventionStart({ step: 48 }, nano).step, 32); // a tie between 32 and 64
  assert.equal(interventionStart({ step: 3 }, nano).step, 2); // a tie between 2 and 4
  assert.equal(interventionStart({ step: 100 }, nano).step, 96);
  assert.equal(nearestCheckpoint(5, [8, 2]), 2); // a tie, whatever the order of the steps
  assert.equal(nearestCheckpoint(6, [8, 2]), 8);

  assert.deepEqual(parseInterventionFrom('0.93'), { fraction: 0.93 });
  assert.deepEqual(parseInterventionFrom('133000'), { step: 133000 });
  assert.deepEqual(parseInterventionFrom('1'), { step: 1 });
  for (const bad of ['1.5', '-0.2', '-3', 'late', '', '0.0'])
    assert.throws(
      () => parseInterventionFrom(bad),
      /--intervention-from .*: expected a fraction of train-iters in \(0, 1\)/,
    );
  assert.throws(
    () => interventionStart({ fraction: 1.5 }, nano),
    /--intervention-from 1\.5: a fraction of train-iters must lie in \(0, 1\)/,
  );
  assert.throws(
    () => interventionStart({ step: 300 }, nano),
    /--intervention-from 300: past the end of training \(train-iters is 256\)/,
  );
  assert.throws(
    () => interventionStart({ fraction: 0.99 }, nano),
    /nearest checkpoint is step 256, the end of training/,
  );
});

test("the sibling continues the baseline checkpoint's exact bytes on the baseline's batches with pronouns swapped; a re-run skips it, an interrupted one resumes", async () => {
  const out = join(work, 'run');
  const starts: InterventionStart[] = [];
  // 0.45 × 8 = 3.6: step 4 (0.4 away) rather than step 2 (1.6 away).
  const result = await train(
    options(out, { interventionFrom: { fraction: 0.45 }, onInterventionStart: (s) => starts.push(s) }),
  );
  assert.deepEqual(result.checkpoints, [0, 2, 4, 6, 8]);
  const sibling = result.intervention!;
  assert.deepEqual(starts, [
    { name: 'm-intervention', baseline: 'm', kind: 'pronoun-swap', target: 3.6, fromStep: 4, status: 'fresh', step: 4 },
  ]);
  assert.equal(sibling.modelDir, join(out, 'm-intervention'));
  assert.deepEqual(sibling.trained!.checkpoints, [6, 8]);
  const state = JSON.parse(readFileSync(join(sibling.modelDir, 'step8', 'trainer_state.json'), 'utf8')) as TrainerState;
  assert.equal(state.model, 'm-intervention');
  assert.equal(state.baseline, 'm');
  assert.deepEqual(state.intervention, { kind: 'pronoun-swap', fromStep: 4 });
  const baseState = JSON.parse(readFileSync(join(out, 'm', 'step8', 'trainer_state.json'), 'utf8')) as TrainerState;
  assert.equal(baseState.baseline, null);
  assert.equal(baseState.intervention, null);

  // Batches: the baseline's (checked against the data file's samples), then swapped by hand.
  const baseLog = readLog(result.logPath);
  const siblingLog = readLog(sibling.logPath);
  assert.deepEqual(
    siblingLog.map((e) => e.step),
    [5, 6, 7, 8],
  );
  for (const e of siblingLog) {
    const seen = batch(e.step);
    assert.equal(baseLog.find((b) => b.step === e.step)!.batch_sha256, sha256(seen), `baseline batch ${e.step}`);
    assert.equal(e.source_batch_sha256, sha256(seen), `step ${e.step}: the baseline's batch before the swap`);
    assert.notEqual(sha256(swapped(seen)), sha256(seen), `step ${e.step} holds a pronoun`);
    assert.equal(e.batch_sha256, sha256(swapped(seen)), `step ${e.step}: the baseline's batch with pronouns swapped`);
  }

  // Exact start: resuming the baseline's step4 on data whose later samples were swapped by hand
  // (no intervention) gives the sibling's weights and optimizer moments bit for bit.
  const handData = join(work, 'hand-swapped');
  await writeData(
    handData,
    samples.map((row, s) => (s >= 4 * B ? swapped([row])[0]! : row)),
  );
  const plain = await train(
    options(join(work, 'plain'), {
      data: { prefix: handData, preshuffled: true },
      resume: loadResumePoint(join(out, 'm', 'step4')),
    }),
  );
  assert.deepEqual(plain.checkpoints, [6, 8]);
  for (const step of [6, 8]) {
    for (const file of ['model.safetensors', 'optimizer.safetensors']) {
      assert.ok(
        readFileSync(join(plain.modelDir, `step${step}`, file)).equals(
          readFileSync(join(sibling.modelDir, `step${step}`, file)),
        ),
        `step${step}/${file}`,
      );
    }
  }

  // A re-run (resuming the finished baseline at its last step) skips the finished sibling.
  const finished = fileBytes(join(sibling.modelDir, 'step8'));
  const again = await train(
    options(out, { resume: loadResumePoint(join(out, 'm', 'step8')), interventionFrom: { fraction: 0.45 } }),
  );
  assert.equal(again.intervention!.status, 'done');
  assert.equal(again.intervention!.trained, undefined);
  assert.deepEqual(fileBytes(join(sibling.modelDir, 'step8')), finished);
  // An interrupted sibling (its last checkpoint gone) resumes from step 6 to the same bytes.
  rmSync(join(sibling.modelDir, 'step8'), { recursive: true });
  const resumed = await train(
    options(out, { resume: loadResumePoint(join(out, 'm', 'step8')), interventionFrom: { fraction: 0.45 } }),
  );
  assert.equal(resumed.intervention!.status, 'resume');
  assert.equal(resumed.intervention!.step, 6);
  assert.deepEqual(fileBytes(join(sibling.modelDir, 'step8')), finished);
  assert.deepEqual(
    readLog(sibling.logPath).map((e) => e.step),
    [5, 6, 7, 8],
  );
  // Another point than the sibling on disk was made from is refused.
  await assert.rejects(
    train(options(out, { resume: loadResumePoint(join(out, 'm', 'step8')), interventionFrom: { step: 2 } })),
    /m-intervention holds another run \(pronoun-swap from step 4 of m\)/,
  );
  // An intervention run is not a baseline.
  await assert.rejects(
    train(
      options(join(work, 'nested'), {
        resume: loadResumePoint(join(sibling.modelDir, 'step6')),
        interventionFrom: { step: 6 },
      }),
    ),
    /is already an intervention run \(pronoun-swap\)/,
  );
});

test('a suite lists each sibling beside its baseline, skips it when finished, and checks its batches', async () => {
  const out = join(work, 'suite');
  const suiteOptions = {
    preset: 'nano',
    only: ['nano-25k'],
    data: { prefix: join(work, 'data'), preshuffled: true },
    outDir: out,
    tokenizerPath,
    tokenizerVocab: 300,
    overrides: { seqLength: SEQ, trainBatchSize: B, trainIters: 4, checkpointFactor: 2, extraSaveIters: [0] },
    evalIters: 0,
    threads: 1,
    interventionFrom: { step: 2 },
  };
  const starts: InterventionStart['status'][] = [];
  const manifest = await runSuite({ ...suiteOptions, onInterventionStart: (s) => starts.push(s.status) });
  assert.deepEqual(
    manifest.models.map((m) => [m.name, m.baseline, m.intervention, m.interventionFrom]),
    [
      ['nano-25k', undefined, undefined, undefined],
      ['nano-25k-intervention', 'nano-25k', 'pronoun-swap', 2],
    ],
  );
  assert.deepEqual(manifest.models[1]!.checkpoints, [4]);
  assert.equal(manifest.models[1]!.log, 'nano-25k-intervention/log.jsonl', 'relative to the suite folder');
  assert.equal(typeof manifest.models[1]!.finalLoss, 'number');
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'suite.json'), 'utf8')), manifest);
  const state = JSON.parse(
    readFileSync(join(out, 'nano-25k-intervention', 'step4', 'trainer_state.json'), 'utf8'),
  ) as TrainerState;
  assert.deepEqual([state.baseline, state.intervention], ['nano-25k', { kind: 'pronoun-swap', fromStep: 2 }]);

  const rerun = await runSuite({ ...suiteOptions, onInterventionStart: (s) => starts.push(s.status) });
  assert.deepEqual(starts, ['fresh', 'done']);
  assert.deepEqual(rerun, manifest);

  // A sibling whose batches (before the swap) are not the suite's order is refused.
  const logPath = join(out, 'nano-25k-intervention', 'log.jsonl');
  const lines = readFileSync(logPath, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  lines[0].source_batch_sha256 = '0'.repeat(64);
  writeFileSync(logPath, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
  await assert.rejects(
    runSuite(suiteOptions),
    /nano-25k-intervention trained at step 3 on a batch \(before the swap\) other than nano-25k's/,
  );
});

test('pythia train --intervention-from: the sibling after the baseline, a re-run trains nothing; bad points and a missing tokenizer are one-line errors', () => {
  const cli = join(repoRoot, 'dist/src/cli/main.js');
  const pythia = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  const base = [
    'train',
    '--preset',
    'nano-25k',
    '--data',
    join(work, 'data'),
    '--preshuffled',
    '--seq-length',
    `${SEQ}`,
    '--train-batch-size',
    `${B}`,
    '--train-iters',
    '4',
    '--checkpoint-factor',
    '2',
    '--extra-save-iters',
    '0',
    '--eval-iters',
    '0',
    '--threads',
    '1',
  ];
  const cases: [string[], RegExp][] = [
    [
      [...base, '--tokenizer', tokenizerPath, '--out', join(work, 'e1'), '--intervention-from', '1.5'],
      /^pythia: --intervention-from 1\.5: expected a fraction of train-iters in \(0, 1\)/,
    ],
    [
      [...base, '--tokenizer', tokenizerPath, '--out', join(work, 'e2'), '--intervention-from', '9'],
      /^pythia: --intervention-from 9: past the end of training \(train-iters is 4\)$/,
    ],
    [
      [...base, '--out', join(work, 'e3'), '--intervention-from', '0.5'],
      /^pythia: --intervention-from needs the tokenizer for the pronoun-swap swap: pass --tokenizer/,
    ],
    [
      [
        'suite',
        '--preset',
        'nano',
        '--data',
        join(work, 'data'),
        '--out',
        join(work, 'e4'),
        '--intervention-from',
        '-0.2',
      ],
      /^pythia: --intervention-from -0\.2: expected a fraction/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = pythia(...args);
    assert.equal(r.status, 1, args.join(' '));
    const errors = r.stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('pythia:') || l.includes('    at '));
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0]!, message);
  }
  const ok = pythia(...base, '--tokenizer', tokenizerPath, '--out', join(work, 'cli'), '--intervention-from', '0.5');
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(
    ok.stderr,
    /^pythia train: nano-25k-intervention: training; pronoun-swap from nano-25k's step2 \(the checkpoint nearest step 2\)$/m,
  );
  assert.match(ok.stdout, /^nano-25k: step 4, final loss/m);
  assert.match(
    ok.stdout,
    /^nano-25k-intervention: step 4, final loss .*\n {2}checkpoints .*nano-25k-intervention\/step\{4\}/m,
  );
  // The same command again finds both runs finished and trains nothing.
  const again = pythia(...base, '--tokenizer', tokenizerPath, '--out', join(work, 'cli'), '--intervention-from', '0.5');
  assert.equal(again.status, 0, again.stderr);
  assert.match(
    again.stderr,
    /^pythia train: nano-25k-intervention: already trained; pronoun-swap from nano-25k's step2/m,
  );
  assert.match(again.stdout, /^nano-25k: step 4, no steps run/m);
});
