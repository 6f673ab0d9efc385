/** Checkpoints from older transformers carry per-layer attention buffers that loading skips. */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type TensorToWrite, writeSafetensors } from '../../src/formats/index.js';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import { parameterShapes } from '../../src/model/config.js';
import { fixtureDir } from '../support/paths.js';

async function withBuffers(layers: number[]): Promise<string> {
  const source = join(fixtureDir('parallel-r25'), 'model');
  const original = loadCheckpoint(source);
  const dir = join(mkdtempSync(join(tmpdir(), 'pythia-buffers-')), 'ckpt');
  mkdirSync(dir);
  copyFileSync(join(source, 'config.json'), join(dir, 'config.json'));
  const tensors: TensorToWrite[] = parameterShapes(original.config).map(({ name, shape }) => ({
    name,
    dtype: 'F32',
    shape,
    data: original.params.get(name)!,
  }));
  for (const i of layers) {
    const p = `gpt_neox.layers.${i}.attention`;
    tensors.push(
      { name: `${p}.bias`, dtype: 'BOOL', shape: [1, 1, 4, 4], data: new Uint8Array(16).fill(1) },
      { name: `${p}.masked_bias`, dtype: 'F32', shape: [], data: Float32Array.of(-1e9) },
      { name: `${p}.rotary_emb.inv_freq`, dtype: 'F32', shape: [2], data: Float32Array.of(1, 0.01) },
    );
  }
  await writeSafetensors(join(dir, 'model.safetensors'), tensors);
  return dir;
}

test('the causal mask, masked_bias and inv_freq buffers of each layer are skipped', async () => {
  const original = loadCheckpoint(join(fixtureDir('parallel-r25'), 'model'));
  const loaded = loadCheckpoint(await withBuffers([0, 1]));
  assert.deepEqual([...loaded.params.keys()].sort(), [...original.params.keys()].sort());
  for (const [name, values] of original.params) assert.deepEqual(loaded.params.get(name), values, name);
});

test('a buffer of a layer the config does not have is refused: one tensor more than the config implies', async () => {
  const dir = await withBuffers([0, 2]);
  assert.throws(
    () => loadCheckpoint(dir),
    (e: Error) =>
      e.name === 'FormatError' &&
      /holds \d+ parameter tensors, but .*config\.json \(2 layers\) implies \d+/.test(e.message),
  );
});
