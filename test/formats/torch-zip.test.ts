import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openCheckpointWeights, openTorchCheckpoint } from '../../src/formats/index.js';
import { assertFormatError } from '../support/errors.js';
import { fixtureDir } from '../support/paths.js';
import { op, type PickledTensor, stateDictPickle, storedZip, type ZipRecord } from './torch-archive.js';

const tmp = mkdtempSync(join(tmpdir(), 'pythia-torch-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function writeTemp(name: string, bytes: Uint8Array): string {
  const path = join(tmp, name);
  writeFileSync(path, bytes);
  return path;
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function archive(
  tensors: PickledTensor[],
  storages: Record<string, ArrayBufferView>,
  extra: ZipRecord[] = [],
  options = {},
): Buffer {
  return storedZip(
    [
      { name: 'archive/data.pkl', data: stateDictPickle(tensors) },
      { name: 'archive/byteorder', data: Buffer.from('little') },
      ...Object.entries(storages).map(([key, data]) => ({ name: `archive/data/${key}`, data: bytesOf(data) })),
      { name: 'archive/version', data: Buffer.from('3\n') },
      ...extra,
    ],
    options,
  );
}

const oneFloat: PickledTensor = {
  name: 'w',
  storageType: 'FloatStorage',
  key: '0',
  storageNumel: 2,
  offset: 0,
  shape: [2],
  stride: [1],
};

describe('PyTorch zip checkpoint: the sequential-r100 fixture', () => {
  const dir = join(fixtureDir('sequential-r100'), 'model');
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, number>;

  it('loads every tensor, with shapes consistent with config.json', () => {
    const src = openCheckpointWeights(dir);
    try {
      const list = src.list();
      const H = config.hidden_size!,
        V = config.vocab_size!,
        F = config.intermediate_size!,
        L = config.num_hidden_layers!;
      assert.equal(list.length, 4 + 12 * L);
      const shapes = new Map(list.map((t) => [t.name, t.shape]));
      assert.deepEqual(shapes.get('gpt_neox.embed_in.weight'), [150, 48]);
      assert.deepEqual(shapes.get('gpt_neox.embed_in.weight'), [V, H]);
      assert.deepEqual(shapes.get('lm_head.weight'), [V, H]);
      for (let i = 0; i < L; i++) {
        assert.deepEqual(shapes.get(`gpt_neox.layers.${i}.attention.query_key_value.weight`), [3 * H, H]);
        assert.deepEqual(shapes.get(`gpt_neox.layers.${i}.attention.dense.weight`), [H, H]);
        assert.deepEqual(shapes.get(`gpt_neox.layers.${i}.mlp.dense_h_to_4h.weight`), [F, H]);
        assert.deepEqual(shapes.get(`gpt_neox.layers.${i}.mlp.dense_4h_to_h.bias`), [H]);
      }
      for (const t of list) {
        assert.equal(t.dtype, 'F32');
        const raw = src.readRaw(t.name);
        assert.equal(raw.data.length, t.shape.reduce((a, b) => a * b, 1) * 4);
      }
    } finally {
      src.close();
    }
  });

  it('reads values equal to an independent decode (python zipfile + numpy.frombuffer of data/0, data/5, data/39)', () => {
    const src = openTorchCheckpoint(join(dir, 'pytorch_model.bin'));
    try {
      const embed = src.readFloat32('gpt_neox.embed_in.weight');
      assert.deepEqual(
        [...embed.subarray(0, 5)],
        [0.008472726680338383, 0.043375320732593536, 0.01906440034508705, -0.00788802932947874, -0.006849244702607393],
      );
      assert.equal(embed[embed.length - 1], 0.015492521226406097);
      let sum = 0;
      for (const v of embed) sum += v;
      assert.ok(Math.abs(sum - 2.491449744498368) < 1e-9);
      const qkv = src.readFloat32('gpt_neox.layers.0.attention.query_key_value.weight');
      assert.equal(qkv.length, 6912);
      assert.deepEqual([...qkv.subarray(0, 3)], [0.017233865335583687, 0.008883039467036724, 0.007375455927103758]);
      assert.equal(qkv[6911], 0.01621965318918228);
      const head = src.readFloat32('lm_head.weight');
      assert.deepEqual([...head.subarray(0, 3)], [-0.004719038959592581, -0.012579246424138546, -0.007402775343507528]);
    } finally {
      src.close();
    }
  });
});

describe('PyTorch zip checkpoint: hand-built archives', () => {
  it('honours storage offsets, strides, shared storages, Parameters and every storage dtype', () => {
    const f = new Float32Array([0, 1, 2, 3, 4, 5, 6, 7]);
    const path = writeTemp(
      'views.bin',
      archive(
        [
          // rows 1..2 of a [4,2] matrix: offset 2, contiguous
          {
            name: 'rows',
            storageType: 'FloatStorage',
            key: '0',
            storageNumel: 8,
            offset: 2,
            shape: [2, 2],
            stride: [2, 1],
          },
          // the transpose of the [2,3] matrix at offset 1: element (i,j) = storage[1 + i + 3j]
          {
            name: 'transposed',
            storageType: 'FloatStorage',
            key: '0',
            storageNumel: 8,
            offset: 1,
            shape: [3, 2],
            stride: [1, 3],
            parameter: true,
          },
          // a broadcast view (stride 0)
          {
            name: 'repeated',
            storageType: 'FloatStorage',
            key: '0',
            storageNumel: 8,
            offset: 7,
            shape: [3],
            stride: [0],
          },
          {
            name: 'empty',
            storageType: 'FloatStorage',
            key: '0',
            storageNumel: 8,
            offset: 8,
            shape: [0, 4],
            stride: [4, 1],
          },
          { name: 'half', storageType: 'HalfStorage', key: '1', storageNumel: 3, offset: 0, shape: [3], stride: [1] },
          { name: 'bf', storageType: 'BFloat16Storage', key: '2', storageNumel: 2, offset: 0, shape: [2], stride: [1] },
          { name: 'ids', storageType: 'LongStorage', key: '3', storageNumel: 2, offset: 0, shape: [2], stride: [1] },
          {
            name: 'mask',
            storageType: 'BoolStorage',
            key: '4',
            storageNumel: 4,
            offset: 0,
            shape: [1, 1, 2, 2],
            stride: [4, 4, 2, 1],
          },
          { name: 'scalar', storageType: 'DoubleStorage', key: '5', storageNumel: 1, offset: 0, shape: [], stride: [] },
        ],
        {
          0: f,
          1: new Uint16Array([0x3c00, 0xc000, 0x0001]), // 1, -2, 2^-24
          2: new Uint16Array([0x3f80, 0xbfc0]), // 1, -1.5
          3: new BigInt64Array([-1n, 1n << 40n]),
          4: new Uint8Array([1, 0, 1, 1]),
          5: new Float64Array([-0.1]),
        },
        [],
        { zip64: true },
      ),
    );
    const src = openTorchCheckpoint(path);
    try {
      assert.deepEqual(
        src.list().map((t) => `${t.name}:${t.dtype}:${t.shape.join('x')}`),
        [
          'rows:F32:2x2',
          'transposed:F32:3x2',
          'repeated:F32:3',
          'empty:F32:0x4',
          'half:F16:3',
          'bf:BF16:2',
          'ids:I64:2',
          'mask:BOOL:1x1x2x2',
          'scalar:F64:',
        ],
      );
      assert.deepEqual([...src.readFloat32('rows')], [2, 3, 4, 5]);
      assert.deepEqual([...src.readFloat32('transposed')], [1, 4, 2, 5, 3, 6]);
      assert.deepEqual([...src.readFloat32('repeated')], [7, 7, 7]);
      assert.deepEqual([...src.readFloat32('empty')], []);
      assert.deepEqual([...src.readFloat32('half')], [1, -2, 2 ** -24]);
      assert.deepEqual([...src.readFloat32('bf')], [1, -1.5]);
      assert.deepEqual([...new BigInt64Array(src.readRaw('ids').data.buffer)], [-1n, 1n << 40n]);
      assert.deepEqual([...src.readRaw('mask').data], [1, 0, 1, 1]);
      assert.deepEqual([...src.readFloat32('scalar')], [-0.10000000149011612]); // nearest f32 to -0.1
      assertFormatError(() => src.readFloat32('ids'), /tensor ids has dtype I64/);
      assertFormatError(() => src.readRaw('missing'), /no tensor named "missing"/);
    } finally {
      src.close();
    }
  });

  it('also reads an archive without Zip64 records and with another folder name', () => {
    const zip = storedZip([
      { name: 'pytorch_model/data.pkl', data: stateDictPickle([oneFloat]) },
      { name: 'pytorch_model/data/0', data: bytesOf(new Float32Array([0.5, -0.25])) },
    ]);
    const src = openTorchCheckpoint(writeTemp('plain.bin', zip));
    assert.deepEqual([...src.readFloat32('w')], [0.5, -0.25]);
    src.close();
  });
});

describe('PyTorch zip checkpoint: hostile and broken inputs', () => {
  const storage = { 0: new Float32Array([1, 2]) };
  const pickleArchive = (pickle: Buffer): Buffer =>
    storedZip([
      { name: 'archive/data.pkl', data: pickle },
      { name: 'archive/data/0', data: bytesOf(new Float32Array([1, 2])) },
    ]);
  const cases: [string, () => Uint8Array, RegExp][] = [
    [
      'a pickle calling os.system',
      () =>
        pickleArchive(
          Buffer.concat([
            op.proto(),
            op.global('os', 'system'),
            op.str('touch /tmp/pwned'),
            Buffer.from([0x85]),
            op.reduce,
            op.stop,
          ]),
        ),
      /global os\.system is not allowed/,
    ],
    [
      'a pickle calling builtins.eval',
      () =>
        pickleArchive(
          Buffer.concat([
            op.proto(),
            op.global('builtins', 'eval'),
            op.str('1'),
            Buffer.from([0x85]),
            op.reduce,
            op.stop,
          ]),
        ),
      /global builtins\.eval is not allowed/,
    ],
    [
      'posix.system through STACK_GLOBAL',
      () =>
        pickleArchive(
          Buffer.concat([
            Buffer.from([0x80, 4]),
            op.str('posix'),
            op.str('system'),
            Buffer.from([0x93]),
            op.str('id'),
            Buffer.from([0x85]),
            op.reduce,
            op.stop,
          ]),
        ),
      /global posix\.system is not allowed/,
    ],
    [
      'a torch global that is not a state-dict type',
      () => pickleArchive(Buffer.concat([op.proto(), op.global('torch', 'load'), op.stop])),
      /global torch\.load is not allowed/,
    ],
    [
      'an opcode outside the supported set (INST)',
      () => pickleArchive(Buffer.concat([op.proto(), Buffer.from('ios\nsystem\n'), op.stop])),
      /opcode 0x69 is not supported/,
    ],
    [
      'a truncated pickle',
      () => pickleArchive(stateDictPickle([oneFloat]).subarray(0, 60)),
      /pickle data is truncated/,
    ],
    [
      'a zip entry named ../evil',
      () =>
        storedZip([
          { name: 'archive/data.pkl', data: stateDictPickle([oneFloat]) },
          { name: '../evil', data: Buffer.from('x') },
        ]),
      /zip entry name "\.\.\/evil" is absolute or contains "\.\."/,
    ],
    ['an absolute zip entry name', () => storedZip([{ name: '/etc/passwd', data: Buffer.from('x') }]), /is absolute/],
    [
      'a compressed zip entry',
      () => storedZip([{ name: 'archive/data.pkl', data: Buffer.from('x') }], { method: 8 }),
      /compressed \(method 8\)/,
    ],
    ['a truncated zip', () => archive([oneFloat], storage).subarray(0, 200), /not a zip archive/],
    [
      'a zip cut just before its last bytes',
      () => archive([oneFloat], storage).subarray(0, archive([oneFloat], storage).length - 1),
      /not a zip archive/,
    ],
    ['a file that is not a zip at all', () => Buffer.from('\x80\x02}q\x00.'), /not a zip archive/],
    [
      'a storage key with no record',
      () => archive([{ ...oneFloat, key: '7' }], storage),
      /tensor w: storage 7 has no record archive\/data\/7/,
    ],
    [
      'a storage key that climbs out',
      () => archive([{ ...oneFloat, key: '../0' }], storage),
      /storage key "\.\.\/0" is not a plain record name/,
    ],
    [
      'a tensor past the end of its storage',
      () => archive([{ ...oneFloat, offset: 1 }], storage),
      /reach element 2 of a storage of 2/,
    ],
    [
      'a stride past the end of its storage',
      () => archive([{ ...oneFloat, stride: [2] }], storage),
      /reach element 2 of a storage of 2/,
    ],
    [
      'a storage record shorter than its numel',
      () => archive([{ ...oneFloat, storageNumel: 3, shape: [3] }], storage),
      /has 8 bytes but F32 storage of 3 needs 12/,
    ],
    [
      'a state dict value that is not a tensor',
      () => pickleArchive(Buffer.concat([op.proto(), op.emptyDict, op.str('x'), op.int(3), Buffer.from('s'), op.stop])),
      /entry x is a number 3, not a tensor/,
    ],
    [
      'big-endian byteorder',
      () =>
        storedZip([
          { name: 'a/byteorder', data: Buffer.from('big') },
          { name: 'a/data.pkl', data: stateDictPickle([]) },
        ]),
      /byteorder is "big"/,
    ],
  ];
  for (const [what, make, pattern] of cases) {
    it(`refuses ${what}`, () => {
      const path = writeTemp('hostile.bin', make());
      assertFormatError(() => openTorchCheckpoint(path), pattern);
    });
  }

  it('refuses a local header offset pointing past the central directory', () => {
    const zip = archive([oneFloat], storage);
    // Corrupt the first central entry's local-header offset (46-byte fixed part; offset at +42).
    const dirAt = zip.readUInt32LE(zip.length - 22 + 16);
    zip.writeUInt32LE(zip.length, dirAt + 42);
    const path = writeTemp('badoffset.bin', zip);
    assertFormatError(() => openTorchCheckpoint(path), /local header offset \d+ is out of range/);
  });
});
