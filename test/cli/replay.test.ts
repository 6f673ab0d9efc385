/**
 * Pythia's central promise, end to end: the batch viewer shows exactly the batch the trainer
 * trained on at each step. A tiny model trains on a GPT-NeoX-ordered dataset (index maps, no
 * preshuffling); `pythia batch --json` at every step must hash to the batch hash in the log.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { IndexedDatasetWriter } from '../../src/data/indexed-dataset.js';
import { pythiaArchitecture } from '../../src/model/presets.js';
import { scaledCheckpointSchedule } from '../../src/train/checkpoint-schedule.js';
import { PYTHIA_INIT } from '../../src/train/init.js';
import { readLog, train } from '../../src/train/trainer.js';
import { Prng } from '../../src/util/prng.js';
import { repoRoot } from '../support/paths.js';

const work = mkdtempSync(join(tmpdir(), 'pythia-replay-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('pythia batch replays every step the trainer logged', async () => {
  const prefix = join(work, 'corpus');
  const writer = IndexedDatasetWriter.create(prefix, { vocabSize: 50 });
  const rng = new Prng(3);
  for (let d = 0; d < 40; d++) writer.add([...Array.from({ length: 3 + rng.int(20) }, () => 2 + rng.int(48)), 0]);
  await writer.finish();

  const steps = 6;
  const batch = 4;
  const seq = 8;
  const result = await train({
    name: 'tiny',
    config: {
      ...pythiaArchitecture({ numLayers: 1, hiddenSize: 16, numHeads: 2, vocabSize: 64, maxPositions: seq }),
      dtype: 'float32',
    },
    recipe: {
      seqLength: seq,
      trainBatchSize: batch,
      microBatchSize: batch,
      trainIters: steps,
      schedule: { lr: 1e-3, minLr: 1e-4, warmup: 0.1, decayIters: steps, decayStyle: 'cosine' },
      weightDecay: 0.1,
      gradientClipping: 1,
      betas: [0.9, 0.95],
      eps: 1e-8,
      optimizer: 'apex',
      seed: 1234,
      init: PYTHIA_INIT,
      checkpoint: scaledCheckpointSchedule(steps, 3),
    },
    data: { prefix, preshuffled: false },
    outDir: join(work, 'run'),
    evalIters: 0,
    threads: 1,
  });
  const logged = readLog(result.logPath).filter((e) => e.batch_sha256 !== undefined);
  assert.equal(logged.length, steps);
  for (const entry of logged) {
    // Update k trains on batch k − 1 (so step<N> has seen samples [0, N·B), as in Pythia).
    const r = spawnSync(
      process.execPath,
      [
        join(repoRoot, 'dist/src/cli/main.js'),
        'batch',
        '--data',
        prefix,
        '--step',
        String(entry.step - 1),
        '--train-batch-size',
        String(batch),
        '--seq-length',
        String(seq),
        '--train-iters',
        String(steps),
        '--json',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as number[][];
    assert.equal(rows.length, batch);
    const tokens = Int32Array.from(rows.flat()); // the log hashes the batch as int32 tokens
    const hash = createHash('sha256').update(Buffer.from(tokens.buffer)).digest('hex');
    assert.equal(hash, entry.batch_sha256, `step ${entry.step}`);
  }
});
