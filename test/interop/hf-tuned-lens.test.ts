/**
 * Tuned-lens training against tuned-lens's recipe run by PyTorch itself
 * (test/interop/tuned_lens_train.py: torch.optim.SGD with Nesterov momentum and weight decay,
 * clip_grad_norm_, transformers' linear schedule, autograd through HF's final LayerNorm and
 * unembedding): the same translators after a few steps on the fixtures, with and without clipping. Needs a Python with torch
 * and transformers, named by PYTHIA_HF_PYTHON; skipped without one (CI installs neither).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { openSafetensors } from '../../src/formats/index.js';
import { ActivationRunner } from '../../src/model/activations.js';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import { TUNED_LENS_DEFAULTS, trainTunedLens } from '../../src/model/tuned-lens.js';
import { relativeL2 } from '../support/check.js';
import { fixtureDir, repoRoot } from '../support/paths.js';

const python = process.env.PYTHIA_HF_PYTHON;
const skip = python ? false : 'set PYTHIA_HF_PYTHON to a Python with torch and transformers to run';

describe("tuned-lens training equals tuned-lens's recipe in PyTorch", () => {
  const work = mkdtempSync(join(tmpdir(), 'pythia-hf-tuned-lens-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  // The fixtures' gradients have norm ~0.15: a clip norm of 0.05 checks the clipping too.
  for (const [name, clipNorm] of [
    ['parallel-r25', 1],
    ['sequential-r100', 1],
    ['parallel-r25', 0.05],
  ] as const) {
    test(`${name}, gradient clipped to norm ${clipNorm}`, { skip }, async () => {
      const folder = join(fixtureDir(name), 'model');
      const { config, params } = loadCheckpoint(folder);
      const [rows, length, steps] = [3, 24, 4];
      const tokens = Array.from({ length: rows }, (_, b) =>
        Array.from({ length }, (_, t) => (b * 7919 + t * 104729 + 13) % config.vocabSize),
      );
      const tokensPath = join(work, `${name}.json`);
      writeFileSync(tokensPath, JSON.stringify(tokens));
      const out = join(work, `${name}-${clipNorm}.safetensors`);
      const script = join(repoRoot, 'test/interop/tuned_lens_train.py');
      const py = spawnSync(python!, [script, folder, tokensPath, String(steps), out, String(clipNorm)], {
        encoding: 'utf8',
      });
      assert.equal(py.status, 0, `tuned_lens_train.py failed: ${py.stderr.trim().split('\n').pop()}`);
      const runner = new ActivationRunner(config, params, { threads: 1 });
      // Every row in every step, as the script's one batch.
      const { lens } = await trainTunedLens(
        runner,
        params,
        { tokens: Int32Array.from(tokens.flat()), rows, length },
        { ...TUNED_LENS_DEFAULTS, steps, tokensPerStep: rows * length, clipNorm },
        { runtime: { threads: 1 } },
      );
      await runner.release();
      const expected = openSafetensors(out);
      for (let l = 0; l < config.numLayers; l++) {
        for (const [key, ours] of [
          [`${l}.weight`, lens.weights[l]!],
          [`${l}.bias`, lens.biases[l]!],
        ] as const) {
          const theirs = expected.readFloat32(key);
          assert.ok(
            theirs.some((v) => v !== 0),
            `${key} moved in PyTorch`,
          );
          const error = relativeL2(ours, theirs);
          assert.ok(error < 1e-4, `${name} ${key}: relative L2 ${error}`);
        }
      }
      expected.close();
    });
  }
});
