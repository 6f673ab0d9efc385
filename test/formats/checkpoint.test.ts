import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openCheckpointWeights, writeSafetensors } from '../../src/formats/index.js';
import { FormatError } from '../../src/util/errors.js';
import { fixtureDir } from '../support/paths.js';
import { stateDictPickle, storedZip } from './torch-archive.js';

const tmp = mkdtempSync(join(tmpdir(), 'pythia-ckpt-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function folder(name: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function writeIndex(dir: string, file: string, weightMap: Record<string, string>): void {
  writeFileSync(join(dir, file), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }, null, 2));
}

function assertFormatError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FormatError, `expected FormatError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

async function twoShards(dir: string): Promise<void> {
  await writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), [
    { name: 'a', dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) },
    { name: 'b', dtype: 'F16', shape: [1], data: new Uint16Array([0x3800]) },
  ]);
  await writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), [
    { name: 'c', dtype: 'BF16', shape: [1, 1], data: new Uint16Array([0x4040]) },
  ]);
}

describe('openCheckpointWeights', () => {
  it('opens each fixture folder whatever its layout', () => {
    for (const [name, count, dtype] of [
      ['parallel-r25', 28, 'F32'],
      ['sequential-r100', 40, 'F32'],
      ['fp16-long', 28, 'F16'],
    ] as const) {
      const src = openCheckpointWeights(join(fixtureDir(name), 'model'));
      assert.equal(src.list().length, count);
      assert.ok(src.list().every((t) => t.dtype === dtype));
      src.close();
    }
  });

  it('reads a sharded safetensors checkpoint through its index', async () => {
    const dir = folder('sharded');
    await twoShards(dir);
    writeIndex(dir, 'model.safetensors.index.json', {
      a: 'model-00001-of-00002.safetensors',
      b: 'model-00001-of-00002.safetensors',
      c: 'model-00002-of-00002.safetensors',
    });
    const src = openCheckpointWeights(dir);
    assert.equal(src.file, join(dir, 'model.safetensors.index.json'));
    assert.deepEqual(
      src
        .list()
        .map((t) => t.name)
        .sort(),
      ['a', 'b', 'c'],
    );
    assert.deepEqual([...src.readFloat32('a')], [1, 2]);
    assert.deepEqual([...src.readFloat32('b')], [0.5]);
    assert.deepEqual([...src.readFloat32('c')], [3]);
    assert.deepEqual(src.readRaw('c').shape, [1, 1]);
    assertFormatError(() => src.readRaw('d'), /no tensor named "d"/);
    src.close();
  });

  it('reads a sharded PyTorch checkpoint through its index', () => {
    const dir = folder('sharded-bin');
    for (const [i, name] of ['x', 'y'].entries()) {
      writeFileSync(
        join(dir, `pytorch_model-0000${i + 1}-of-00002.bin`),
        storedZip([
          {
            name: 'archive/data.pkl',
            data: stateDictPickle([
              { name, storageType: 'FloatStorage', key: '0', storageNumel: 1, offset: 0, shape: [1], stride: [1] },
            ]),
          },
          { name: 'archive/data/0', data: new Uint8Array(new Float32Array([i + 10]).buffer) },
        ]),
      );
    }
    writeIndex(dir, 'pytorch_model.bin.index.json', {
      x: 'pytorch_model-00001-of-00002.bin',
      y: 'pytorch_model-00002-of-00002.bin',
    });
    const src = openCheckpointWeights(dir);
    assert.deepEqual([...src.readFloat32('x')], [10]);
    assert.deepEqual([...src.readFloat32('y')], [11]);
    src.close();
  });

  it('opens a weights file given directly, by its name', () => {
    const src = openCheckpointWeights(join(fixtureDir('sequential-r100'), 'model/pytorch_model.bin'));
    assert.equal(src.list().length, 40);
    src.close();
    assertFormatError(
      () => openCheckpointWeights(join(fixtureDir('sequential-r100'), 'model/config.json')),
      /unknown weights file type/,
    );
    assertFormatError(() => openCheckpointWeights(join(tmp, 'nowhere')), /no such checkpoint folder or file/);
  });

  it('prefers model.safetensors over pytorch_model.bin', () => {
    const dir = folder('both');
    copyFileSync(join(fixtureDir('parallel-r25'), 'model/model.safetensors'), join(dir, 'model.safetensors'));
    writeFileSync(join(dir, 'pytorch_model.bin'), 'not a zip');
    const src = openCheckpointWeights(dir);
    assert.equal(src.list().length, 28);
    src.close();
  });

  it('refuses a folder without weights, bad indexes and shards that disagree with the index', async () => {
    assertFormatError(
      () => openCheckpointWeights(folder('empty')),
      /no weights found: expected one of model\.safetensors/,
    );

    const dir = folder('bad-index');
    await twoShards(dir);
    const index = 'model.safetensors.index.json';
    writeFileSync(join(dir, index), '{"weight_map": {"a": "x", "a": "y"}}');
    assertFormatError(() => openCheckpointWeights(dir), /not valid JSON: duplicate key "a"/);
    writeIndex(dir, index, { a: '../model-00001-of-00002.safetensors' });
    assertFormatError(
      () => openCheckpointWeights(dir),
      /weight_map\["a"\] is "\.\.\/model-00001-of-00002\.safetensors", expected a file name in the same folder/,
    );
    writeIndex(dir, index, { a: 'model-00003-of-00002.safetensors' });
    assertFormatError(() => openCheckpointWeights(dir), /model-00003-of-00002\.safetensors: cannot open: ENOENT/);
    writeIndex(dir, index, { a: 'model-00002-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' });
    assertFormatError(
      () => openCheckpointWeights(dir),
      /weight_map puts a in model-00002-of-00002\.safetensors, which does not hold it/,
    );
    writeFileSync(join(dir, index), '{"metadata": {}}');
    assertFormatError(() => openCheckpointWeights(dir), /weight_map is missing/);
  });
});
