/**
 * What we write, Hugging Face loads: each fixture checkpoint saved by saveCheckpoint in float32,
 * float16 and bfloat16 goes through GPTNeoXForCausalLM.from_pretrained, and HF's logits must match
 * ours on the same folder within the fixture README's tolerance. Needs a Python with torch and
 * transformers, named by PYTHIA_HF_PYTHON; skipped without one (CI installs neither).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { openSafetensors } from '../../src/formats/index.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/model/checkpoint.js';
import { forward } from '../../src/model/forward.js';
import { fixtureDir, repoRoot } from '../support/paths.js';

const python = process.env.PYTHIA_HF_PYTHON;
const skip = python ? false : 'set PYTHIA_HF_PYTHON to a Python with torch and transformers to run';

describe('Hugging Face loads the checkpoints we write', () => {
  const work = mkdtempSync(join(tmpdir(), 'pythia-hf-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  for (const name of ['parallel-r25', 'sequential-r100']) {
    for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
      test(`${name} saved as ${dtype}`, { skip }, async () => {
        const folder = join(work, `${name}-${dtype}`);
        const source = loadCheckpoint(join(fixtureDir(name), 'model'));
        await saveCheckpoint(folder, source.config, source.params, { dtype });
        const { config, params } = loadCheckpoint(folder);
        const [batch, seq] = [2, 12];
        const rows = Array.from({ length: batch }, (_, b) =>
          Array.from({ length: seq }, (_, t) => (b * 7919 + t * 104729) % config.vocabSize),
        );
        const tokens = join(work, 'tokens.json');
        writeFileSync(tokens, JSON.stringify(rows));
        const out = join(work, `${name}-${dtype}.safetensors`);
        const hf = spawnSync(python!, [join(repoRoot, 'test/interop/hf_load.py'), folder, tokens, out], {
          encoding: 'utf8',
        });
        assert.equal(hf.status, 0, `hf_load.py failed: ${hf.stderr.trim().split('\n').pop()}`);
        const expected = openSafetensors(out).readFloat32('logits');
        const ours = (await forward(config, params, BigInt64Array.from(rows.flat().map(BigInt)), batch, {})).logits!;
        assert.equal(ours.length, expected.length);
        let diff = 0;
        let scale = 0;
        for (let i = 0; i < expected.length; i++) {
          diff = Math.max(diff, Math.abs(ours[i]! - expected[i]!));
          scale = Math.max(scale, Math.abs(expected[i]!));
        }
        assert.ok(diff <= 1e-4 * scale, `logits max |Δ| ${diff} vs scale ${scale}`);
      });
    }
  }
});
