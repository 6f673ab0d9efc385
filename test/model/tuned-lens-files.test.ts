/**
 * Tuned lenses on disk: tuned-lens's own layout (config.json + params.pt, made by PyTorch:
 * test/fixtures/tuned-lens) read value for value; ours saved and read back bit for bit, replacing
 * a lens already there; a folder inside a hub snapshot refused in one line; bad files named.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { safetensorsBytes } from '../../src/formats/safetensors.js';
import type { TunedLens } from '../../src/model/tuned-lens.js';
import { inHubSnapshot, loadTunedLens, saveTunedLens, suiteLensDir } from '../../src/model/tuned-lens-files.js';
import { ConfigError, FormatError } from '../../src/util/errors.js';
import { repoRoot } from '../support/paths.js';

const fixture = join(repoRoot, 'test/fixtures/tuned-lens');

function lensOf(H: number, L: number, seed: number): TunedLens {
  const value = (i: number) => Math.sin(seed * 1000 + i) / 3;
  return {
    hiddenSize: H,
    weights: Array.from({ length: L }, (_, l) => Float32Array.from({ length: H * H }, (_, i) => value(l * 100 + i))),
    biases: Array.from({ length: L }, (_, l) => Float32Array.from({ length: H }, (_, i) => value(-l * 100 - i))),
  };
}

describe('tuned lens files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pythia-tuned-lens-files-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("reads tuned-lens's params.pt and config.json (float16, as PyTorch wrote them)", () => {
    const expected = JSON.parse(readFileSync(join(fixture, 'expected.json'), 'utf8')) as Record<string, number[]>;
    const saved = loadTunedLens(join(fixture, 'lens'));
    assert.equal(saved.baseModel, 'EleutherAI/pythia-fixture');
    assert.equal(saved.training, null);
    assert.match(saved.paramsFile, /params\.pt$/);
    assert.equal(saved.lens.hiddenSize, 4);
    assert.equal(saved.lens.weights.length, 2);
    for (let l = 0; l < 2; l++) {
      assert.deepEqual(Array.from(saved.lens.weights[l]!), expected[`${l}.weight`]);
      assert.deepEqual(Array.from(saved.lens.biases[l]!), expected[`${l}.bias`]);
    }
  });

  test('saves and reads back bit for bit, replacing a lens already there, leaving no temporary', async () => {
    const target = join(dir, 'suite/lenses/nano/step8');
    const training = { steps: 250, lr: 1, heldOutSha256: 'ab'.repeat(32), device: 'cpu' };
    await saveTunedLens(target, lensOf(6, 3, 1), { baseModel: 'nano', revision: null, training });
    const lens = lensOf(6, 3, 2);
    await saveTunedLens(target, lens, { baseModel: 'nano', revision: null, training: { ...training, steps: 9 } });
    const saved = loadTunedLens(target);
    assert.deepEqual(saved.lens, lens);
    assert.deepEqual(saved.training, { ...training, steps: 9 });
    assert.deepEqual(readdirSync(target).sort(), ['config.json', 'params.safetensors']);
    assert.deepEqual(readdirSync(join(dir, 'suite/lenses/nano')), ['step8']);
    const config = JSON.parse(readFileSync(join(target, 'config.json'), 'utf8'));
    assert.equal(config.d_model, 6);
    assert.equal(config.num_hidden_layers, 3);
    assert.equal(config.lens_type, 'linear_tuned_lens');
  });

  test('refuses a folder inside a hub snapshot in one line, and writes nothing', async () => {
    const snapshot = join(dir, 'hub/models--EleutherAI--pythia-70m/snapshots/0123abcd');
    mkdirSync(snapshot, { recursive: true });
    assert.equal(inHubSnapshot(join(snapshot, 'lens')), true);
    assert.equal(inHubSnapshot(join(dir, 'suite/lenses')), false);
    assert.equal(suiteLensDir(snapshot), undefined);
    assert.equal(suiteLensDir(join(dir, 'suite/nano-25k/step64')), join(dir, 'suite/lenses/nano-25k/step64'));
    await assert.rejects(
      saveTunedLens(join(snapshot, 'lens'), lensOf(2, 1, 1), { baseModel: null, revision: null, training: {} }),
      (e: Error) => e instanceof ConfigError && /hub snapshot/.test(e.message) && !e.message.includes('\n'),
    );
    assert.deepEqual(readdirSync(snapshot), []);
  });

  test('names the file and what was expected for a bad lens', () => {
    const bad = join(dir, 'bad');
    mkdirSync(bad, { recursive: true });
    const config = { d_model: 2, num_hidden_layers: 1, bias: true };
    writeFileSync(join(bad, 'config.json'), JSON.stringify(config));
    const tensor = (name: string, shape: number[]) => ({
      name,
      dtype: 'F32' as const,
      shape,
      data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
    });
    const cases: [string, ReturnType<typeof tensor>[], RegExp][] = [
      [
        'extra key',
        [tensor('0.weight', [2, 2]), tensor('0.bias', [2]), tensor('unembed.weight', [2, 2])],
        /unexpected tensor "unembed\.weight"/,
      ],
      [
        'wrong shape',
        [tensor('0.weight', [2, 3]), tensor('0.bias', [2])],
        /0\.weight has shape \[2, 3\], expected \[2, 2\]/,
      ],
      ['missing bias', [tensor('0.weight', [2, 2])], /no tensor 0\.bias/],
    ];
    for (const [label, tensors, message] of cases) {
      writeFileSync(join(bad, 'params.safetensors'), safetensorsBytes(tensors));
      assert.throws(
        () => loadTunedLens(bad),
        (e: Error) => e instanceof FormatError && message.test(e.message) && e.message.includes('params.safetensors'),
        label,
      );
    }
    writeFileSync(join(bad, 'config.json'), JSON.stringify({ ...config, d_model: 'wide' }));
    assert.throws(() => loadTunedLens(bad), /config\.json: d_model: expected a positive integer, got "wide"/);
    assert.throws(() => loadTunedLens(join(dir, 'nowhere')), /not a tuned lens folder: config\.json is missing/);
  });
});
