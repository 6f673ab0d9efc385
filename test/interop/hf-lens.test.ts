/**
 * The logit lens against one computed in PyTorch from Hugging Face transformers' own tensors
 * (test/interop/hf_lens.py): hidden_states[0..L−1], the last block's output by a forward hook (HF's
 * last hidden state is after the final LayerNorm), its final_layer_norm and embed_out, every metric
 * within 1e-4 at every layer. Needs a Python with torch and transformers, named by
 * PYTHIA_HF_PYTHON; skipped without one (CI installs neither).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ActivationRunner } from '../../src/model/activations.js';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import { tokenMatrix } from '../../src/model/forward.js';
import { type LensLayer, logitLens } from '../../src/model/logit-lens.js';
import { fixtureDir, repoRoot } from '../support/paths.js';

const python = process.env.PYTHIA_HF_PYTHON;
const skip = python ? false : 'set PYTHIA_HF_PYTHON to a Python with torch and transformers to run';

describe("the logit lens equals one computed from Hugging Face's tensors", () => {
  const work = mkdtempSync(join(tmpdir(), 'pythia-hf-lens-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  for (const name of ['parallel-r25', 'sequential-r100', 'fp16-long']) {
    test(name, { skip }, async () => {
      const folder = join(fixtureDir(name), 'model');
      const { config, params } = loadCheckpoint(folder);
      const [batch, seq] = [3, 40];
      const rows = Array.from({ length: batch }, (_, b) =>
        Array.from({ length: seq }, (_, t) => (b * 7919 + t * 104729 + 13) % config.vocabSize),
      );
      const tokens = join(work, `${name}.json`);
      writeFileSync(tokens, JSON.stringify(rows));
      const hf = spawnSync(python!, [join(repoRoot, 'test/interop/hf_lens.py'), folder, tokens], { encoding: 'utf8' });
      assert.equal(hf.status, 0, `hf_lens.py failed: ${hf.stderr.trim().split('\n').pop()}`);
      const expected = JSON.parse(hf.stdout) as LensLayer[];
      const runner = new ActivationRunner(config, params, { threads: 1 });
      try {
        const got = await logitLens(runner, params, tokenMatrix(rows, config.vocabSize), batch, { chunk: 16 });
        assert.equal(got.length, config.numLayers + 1);
        assert.equal(expected.length, got.length);
        got.forEach((g, l) => {
          for (const key of ['kl', 'ce', 'entropy', 'top1'] as const)
            assert.ok(
              Math.abs(g[key] - expected[l]![key]) <= 1e-4,
              `layer ${l} ${key}: ours ${g[key]}, HF ${expected[l]![key]}`,
            );
        });
        // The hooked last residual through HF's own head is its output; the first layer's lens is not.
        assert.ok(expected.at(-1)!.kl < 1e-6 && expected.at(-1)!.top1 === 1, JSON.stringify(expected.at(-1)));
        assert.ok(expected[0]!.kl > 1e-3, `layer 0 KL ${expected[0]!.kl}`);
      } finally {
        await runner.release();
      }
    });
  }
});
