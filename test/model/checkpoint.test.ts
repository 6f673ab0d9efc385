import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openSafetensors } from '../../src/formats/index.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/model/checkpoint.js';
import { fixtureDir } from '../support/paths.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'pythia-ckpt-'));

for (const name of ['parallel-r25', 'fp16-long']) {
  test(`round trip of ${name}: load, write back, load again gives identical tensors`, async () => {
    const original = loadCheckpoint(join(fixtureDir(name), 'model'));
    const dtype = original.config.dtype === 'float16' ? 'float16' : 'float32';
    const out = join(tmp(), 'ckpt');
    await saveCheckpoint(out, original.config, original.params, { dtype });
    const again = loadCheckpoint(out);
    assert.deepEqual(again.config, { ...original.config, dtype });
    assert.equal(again.params.size, original.params.size);
    for (const [k, v] of original.params) assert.deepEqual(again.params.get(k), v, k);
    // The bytes on disk equal the fixture's for every tensor (same dtype, same values).
    const a = openSafetensors(join(fixtureDir(name), 'model/model.safetensors'));
    const b = openSafetensors(join(out, 'model.safetensors'));
    for (const info of a.list()) assert.deepEqual(b.readRaw(info.name).data, a.readRaw(info.name).data, info.name);
  });
}

test('a checkpoint with a tensor of the wrong shape is refused with a one-line error', async () => {
  const original = loadCheckpoint(join(fixtureDir('parallel-r25'), 'model'));
  const dir = join(tmp(), 'bad');
  await saveCheckpoint(dir, original.config, original.params);
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  config.hidden_size = 32;
  config.num_attention_heads = 4;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  assert.throws(
    () => loadCheckpoint(dir),
    (e: Error) =>
      e.name === 'FormatError' &&
      /tensor (embed_out|gpt_neox\.embed_in)\.weight has shape \[211,64\]/.test(e.message) &&
      !e.message.includes('\n'),
  );
});

test('a folder without config.json is not a checkpoint', () => {
  const dir = tmp();
  mkdirSync(join(dir, 'x'));
  assert.throws(() => loadCheckpoint(join(dir, 'x')), /config\.json is missing/);
});
