/** safetensorsBytes builds in memory exactly the file writeSafetensors writes. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openSafetensors, safetensorsBytes, type TensorToWrite, writeSafetensors } from '../../src/formats/index.js';

const tensors: TensorToWrite[] = [
  { name: 'b.weight', dtype: 'F32', shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) },
  { name: 'a.step', dtype: 'I64', shape: [], data: BigInt64Array.of(7n) },
  { name: 'a.half', dtype: 'F16', shape: [2], data: Uint16Array.of(0x3c00, 0xc000) },
];

test('the same bytes as the written file, for mixed dtypes and metadata', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pythia-st-bytes-'));
  for (const metadata of [{ format: 'pt', step: '3' }, null]) {
    const path = join(dir, `${metadata ? 'with' : 'without'}.safetensors`);
    await writeSafetensors(path, tensors, metadata);
    assert.deepEqual(new Uint8Array(safetensorsBytes(tensors, metadata)), new Uint8Array(readFileSync(path)));
  }
});

test('the bytes read back as the tensors', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'pythia-st-bytes-')), 'x.safetensors');
  writeFileSync(path, safetensorsBytes(tensors, { format: 'pt', step: '3' }));
  const source = openSafetensors(path);
  try {
    assert.deepEqual(source.metadata, { format: 'pt', step: '3' });
    assert.deepEqual(source.readFloat32('b.weight'), tensors[0]!.data);
    assert.deepEqual(source.readRaw('a.step').data, new Uint8Array(BigInt64Array.of(7n).buffer));
  } finally {
    source.close();
  }
});

test('a repeated name is refused', () => {
  assert.throws(
    () => safetensorsBytes([tensors[0]!, tensors[0]!]),
    /safetensorsBytes: tensor "b\.weight": name is reserved or repeated/,
  );
});
