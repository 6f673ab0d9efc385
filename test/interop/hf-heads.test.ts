/**
 * Head detector scores, the induction loss and the in-context-learning losses against Hugging Face
 * transformers' eager attention weights and logits, with TransformerLens's definitions in PyTorch
 * (test/interop/hf_heads.py: head_detector.py's detection patterns and "mul" score, evals.py's
 * induction-loss slice). Within 1e-4. Needs a Python with torch and transformers, named by
 * PYTHIA_HF_PYTHON; skipped without one (CI installs neither).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ActivationRunner } from '../../src/model/activations.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/model/checkpoint.js';
import type { NeoXConfig } from '../../src/model/config.js';
import { headScores } from '../../src/model/head-detectors.js';
import { iclPositions, iclScore, inductionLoss } from '../../src/model/icl.js';
import { pythiaArchitecture } from '../../src/model/presets.js';
import { repeatedRandomTokens, repeatLength, repeatTokenRange } from '../../src/model/repeated-tokens.js';
import { Scorer } from '../../src/model/score.js';
import { randomParams } from '../eval/support.js';
import { fixtureDir, repoRoot } from '../support/paths.js';

const python = process.env.PYTHIA_HF_PYTHON;
const skip = python ? false : 'set PYTHIA_HF_PYTHON to a Python with torch and transformers to run';

interface HfResult {
  scores: number[][][];
  induction_loss: number;
  early_loss: number;
  late_loss: number;
}

describe("head scores and in-context learning equal TransformerLens's definitions on Hugging Face's tensors", () => {
  const work = mkdtempSync(join(tmpdir(), 'pythia-hf-heads-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  const cases: [string, () => Promise<string>][] = [
    ...['parallel-r25', 'sequential-r100', 'fp16-long'].map((name): [string, () => Promise<string>] => [
      name,
      async () => join(fixtureDir(name), 'model'),
    ]),
    [
      'sharp random weights',
      async () => {
        // Weights 25× Pythia's init: attention far from uniform, so the scores differ by head.
        const config: NeoXConfig = {
          ...pythiaArchitecture({ numLayers: 3, hiddenSize: 64, numHeads: 4, vocabSize: 512, maxPositions: 256 }),
          dtype: 'float32',
        };
        const folder = join(work, 'sharp');
        await saveCheckpoint(folder, config, randomParams(config, 5));
        return folder;
      },
    ],
  ];

  for (const [name, folderOf] of cases) {
    test(name, { skip }, async (t) => {
      const folder = await folderOf();
      const { config, params } = loadCheckpoint(folder);
      const range = repeatTokenRange(config.vocabSize);
      const length = repeatLength(config.maxPositions);
      const repeated = repeatedRandomTokens(3, length, range, 1);
      // Short rows with repeats of their own beside the repeated sequences: detect_head takes any lengths.
      const heads = [...repeated, Array.from({ length: 30 }, (_, t) => (t * 7) % 11), [3, 4, 3, 4, 3]];
      const positions = iclPositions(config.maxPositions);
      const icl = [0, 1].map((b) =>
        Array.from({ length: positions.late + 1 }, (_, t) => (b * 7919 + t * 104729 + 13) % config.vocabSize),
      );
      const input = join(work, `${name}.json`);
      writeFileSync(input, JSON.stringify({ heads, repeated, icl, early: positions.early, late: positions.late }));
      const out = join(work, `${name}.out.json`);
      const hf = spawnSync(python!, [join(repoRoot, 'test/interop/hf_heads.py'), folder, input, out], {
        encoding: 'utf8',
      });
      assert.equal(hf.status, 0, `hf_heads.py failed: ${hf.stderr.trim().split('\n').pop()}`);
      const expected = JSON.parse(readFileSync(out, 'utf8')) as HfResult;

      const runner = new ActivationRunner(config, params, { threads: 1 });
      const scores = await headScores(runner, heads);
      await runner.release();
      let worst = 0;
      let spread = 0;
      for (const s of scores) {
        const theirs = expected.scores[s.layer]![s.head]!;
        [s.previousToken, s.duplicateToken, s.induction].forEach((v, k) => {
          worst = Math.max(worst, Math.abs(v - theirs[k]!));
        });
        spread = Math.max(spread, Math.abs(s.previousToken - scores[0]!.previousToken));
      }
      t.diagnostic(`largest |Δ| of a head score: ${worst.toExponential(2)}`);
      assert.ok(worst <= 1e-4, `${name}: head scores differ by up to ${worst}`);
      if (name === 'sharp random weights') assert.ok(spread > 0.05, `heads that differ (spread ${spread})`);

      const scorer = await Scorer.create(config, params, { threads: 1 });
      try {
        const induction = await inductionLoss(scorer, repeated);
        assert.ok(
          Math.abs(induction - expected.induction_loss) <= 1e-4,
          `induction loss ${induction} vs ${expected.induction_loss}`,
        );
        const score = await iclScore(scorer, icl, positions);
        t.diagnostic(
          `induction loss ${induction} (HF ${expected.induction_loss}); early ${score.earlyLoss} (HF ${expected.early_loss})`,
        );
        assert.ok(
          Math.abs(score.earlyLoss - expected.early_loss) <= 1e-4,
          `${score.earlyLoss} vs ${expected.early_loss}`,
        );
        assert.ok(Math.abs(score.lateLoss - expected.late_loss) <= 1e-4, `${score.lateLoss} vs ${expected.late_loss}`);
      } finally {
        scorer.release();
      }
    });
  }
});
