/**
 * Named activations against Hugging Face transformers itself (test/interop/hf_activations.py):
 * hidden_states[0..L−1] = hook_resid_pre, eager attention weights = hook_pattern, PyTorch forward
 * hooks on its modules = hook_attn_out, hook_mlp_out, mlp.hook_post, hook_resid_post, the dense
 * layer's input = hook_z. Needs a Python with torch and transformers, named by PYTHIA_HF_PYTHON;
 * skipped without one (CI installs neither).
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
import { tokenMatrix } from '../../src/model/forward.js';
import { assertActivationClose } from '../support/activations.js';
import { fixtureDir, repoRoot } from '../support/paths.js';

const python = process.env.PYTHIA_HF_PYTHON;
const skip = python ? false : 'set PYTHIA_HF_PYTHON to a Python with torch and transformers to run';

describe("named activations equal Hugging Face's tensors", () => {
  const work = mkdtempSync(join(tmpdir(), 'pythia-hf-activations-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  for (const name of ['parallel-r25', 'sequential-r100', 'fp16-long']) {
    test(name, { skip }, async () => {
      const folder = join(fixtureDir(name), 'model');
      const { config, params } = loadCheckpoint(folder);
      const [batch, seq] = [2, 40];
      const rows = Array.from({ length: batch }, (_, b) =>
        Array.from({ length: seq }, (_, t) => (b * 7919 + t * 104729 + 13) % config.vocabSize),
      );
      const tokens = join(work, `${name}.json`);
      writeFileSync(tokens, JSON.stringify(rows));
      const out = join(work, `${name}.safetensors`);
      const hf = spawnSync(python!, [join(repoRoot, 'test/interop/hf_activations.py'), folder, tokens, out], {
        encoding: 'utf8',
      });
      assert.equal(hf.status, 0, `hf_activations.py failed: ${hf.stderr.trim().split('\n').pop()}`);
      const expected = openSafetensors(out);
      const names = expected.list().map((t) => t.name);
      assert.equal(names.length, 7 * config.numLayers);
      const runner = new ActivationRunner(config, params, { threads: 1 });
      const { cache } = await runner.run(tokenMatrix(rows, config.vocabSize), batch, { names });
      for (const n of names) {
        const info = expected.list().find((t) => t.name === n)!;
        assertActivationClose(
          cache.get(n)!,
          { data: Float64Array.from(expected.readFloat32(n)), dims: info.shape },
          `${n} vs HF`,
          1e-4,
        );
      }
      expected.close();
      await runner.release();
    });
  }

  test("what pythia activations writes loads in Python's safetensors, names and shapes kept", { skip }, () => {
    const tokens = join(work, 'rows.json');
    writeFileSync(tokens, JSON.stringify([[1, 2, 3, 4, 5]]));
    const out = join(work, 'cli.safetensors');
    const model = join(fixtureDir('parallel-r25'), 'model');
    const cli = spawnSync(
      process.execPath,
      [join(repoRoot, 'dist/src/cli/main.js'), 'activations', model, '--tokens', tokens, '--out', out],
      { encoding: 'utf8' },
    );
    assert.equal(cli.status, 0, cli.stderr);
    const py = spawnSync(
      python!,
      [
        '-c',
        'import json, sys; from safetensors.torch import load_file; print(json.dumps({k: list(v.shape) for k, v in load_file(sys.argv[1]).items()}))',
        out,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(py.status, 0, py.stderr);
    const shapes = JSON.parse(py.stdout) as Record<string, number[]>;
    const ours = openSafetensors(out);
    assert.deepEqual(Object.fromEntries(ours.list().map((t) => [t.name, t.shape])), shapes);
    assert.deepEqual(shapes['blocks.1.attn.hook_pattern'], [1, 4, 5, 5]);
    ours.close();
  });
});
