import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openCheckpointWeights, openSafetensors, writeSafetensors } from '../../src/formats/index.js';
import { assertFormatError } from '../support/errors.js';
import { fixtureDir } from '../support/paths.js';

const tmp = mkdtempSync(join(tmpdir(), 'pythia-st-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A safetensors file from raw header text and data bytes, the header padded as the reference writer does. */
function rawFile(
  name: string,
  header: string | Buffer,
  data: Uint8Array = new Uint8Array(0),
  headerLength?: number,
): string {
  const json = typeof header === 'string' ? Buffer.from(header, 'utf8') : header;
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerLength ?? json.length));
  const path = join(tmp, name);
  writeFileSync(path, Buffer.concat([len, json, data]));
  return path;
}

describe('safetensors reader on the HF fixtures', () => {
  it('lists parallel-r25 tensors with shapes matching config.json (H=64, V=211, F=256, 2 layers)', () => {
    const st = openSafetensors(join(fixtureDir('parallel-r25'), 'model/model.safetensors'));
    try {
      assert.deepEqual(st.metadata, { format: 'pt' });
      const byName = new Map(st.list().map((t) => [t.name, t]));
      assert.equal(byName.size, 4 + 12 * 2);
      assert.deepEqual(byName.get('gpt_neox.embed_in.weight'), {
        name: 'gpt_neox.embed_in.weight',
        dtype: 'F32',
        shape: [211, 64],
      });
      assert.deepEqual(byName.get('embed_out.weight')?.shape, [211, 64]);
      assert.deepEqual(byName.get('gpt_neox.layers.1.attention.query_key_value.weight')?.shape, [192, 64]);
      assert.deepEqual(byName.get('gpt_neox.layers.0.mlp.dense_h_to_4h.weight')?.shape, [256, 64]);
      assert.deepEqual(byName.get('gpt_neox.final_layer_norm.bias')?.shape, [64]);
    } finally {
      st.close();
    }
  });

  it('reads F32 values that match numpy.frombuffer', () => {
    const st = openSafetensors(join(fixtureDir('parallel-r25'), 'model/model.safetensors'));
    const w = st.readFloat32('gpt_neox.layers.1.attention.query_key_value.weight');
    st.close();
    assert.equal(w.length, 192 * 64);
    // numpy 2.4: np.frombuffer(bytes, '<f4')[:5], [-1] and float64 sum.
    const expected = [
      -0.0186474546790123, 0.005460933316498995, -0.010700017213821411, -0.01172852236777544, 0.00799038540571928,
    ];
    assert.deepEqual([...w.subarray(0, 5)], expected);
    assert.equal(w[w.length - 1], 0.006128855049610138);
    let sum = 0;
    for (const v of w) sum += v;
    assert.ok(Math.abs(sum - 4.227644756005816) < 1e-9);
  });

  it('decodes the fp16-long F16 weights to the float32 values numpy gives', () => {
    const st = openCheckpointWeights(join(fixtureDir('fp16-long'), 'model'));
    try {
      const raw = st.readRaw('gpt_neox.final_layer_norm.weight');
      assert.equal(raw.dtype, 'F16');
      assert.deepEqual([...new Uint16Array(raw.data.buffer, 0, 5)], [15284, 15271, 14971, 15548, 15489]);
      const ln = st.readFloat32('gpt_neox.final_layer_norm.weight');
      assert.deepEqual([...ln.subarray(0, 5)], [0.962890625, 0.95654296875, 0.81005859375, 1.18359375, 1.1259765625]);
      assert.equal(ln[127], 0.80126953125);
      const w = st.readFloat32('gpt_neox.layers.0.mlp.dense_4h_to_h.weight');
      assert.equal(w.length, 128 * 512);
      // numpy: np.frombuffer(bytes, '<f2').astype(np.float32)
      assert.deepEqual(
        [...w.subarray(0, 5)],
        [-0.01507568359375, -0.0023441314697265625, -0.004917144775390625, -0.0294036865234375, 0.00218963623046875],
      );
      assert.equal(w[w.length - 1], -0.01580810546875);
      let sum = 0;
      for (const v of w) sum += v;
      assert.ok(Math.abs(sum - -8.642169117927551) < 1e-9);
    } finally {
      st.close();
    }
  });

  it('refuses integer tensors in readFloat32 and unknown names, with one-line errors', () => {
    const st = openSafetensors(join(fixtureDir('parallel-r25'), 'expected.safetensors'));
    try {
      assertFormatError(() => st.readFloat32('input_ids'), /expected\.safetensors: tensor input_ids has dtype I64/);
      assertFormatError(() => st.readRaw('nope'), /no tensor named "nope"/);
      const ids = st.readRaw('input_ids');
      assert.deepEqual(ids.shape, [2, 24]);
      assert.equal(new BigInt64Array(ids.data.buffer).length, 48);
    } finally {
      st.close();
    }
  });
});

describe('safetensors writer', () => {
  for (const fixture of ['parallel-r25', 'fp16-long']) {
    it(`round-trips ${fixture} byte for byte: same order, header and data as the Python writer`, async () => {
      const original = join(fixtureDir(fixture), 'model/model.safetensors');
      const st = openSafetensors(original);
      // Hand the tensors over in reverse order: the writer must sort them itself.
      const tensors = st
        .list()
        .reverse()
        .map((t) => ({ ...t, data: st.readRaw(t.name).data }));
      const copy = join(tmp, `${fixture}.safetensors`);
      await writeSafetensors(copy, tensors, st.metadata);
      st.close();
      assert.ok(readFileSync(copy).equals(readFileSync(original)));

      const again = openSafetensors(copy);
      const before = openSafetensors(original);
      assert.deepEqual(again.metadata, { format: 'pt' });
      assert.deepEqual(again.list(), before.list());
      for (const t of before.list()) assert.deepEqual(again.readRaw(t.name), before.readRaw(t.name));
      again.close();
      before.close();
    });
  }

  it('orders by dtype alignment then name and pads the header with spaces to a multiple of 8', async () => {
    const path = join(tmp, 'mixed.safetensors');
    await writeSafetensors(
      path,
      [
        { name: 'b', dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) },
        { name: 'a', dtype: 'F16', shape: [1], data: new Uint16Array([0x3c00]) },
        { name: 'c', dtype: 'I64', shape: [], data: new BigInt64Array([7n]) },
        { name: 'd', dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) },
      ],
      null,
    );
    const bytes = readFileSync(path);
    const n = Number(bytes.readBigUInt64LE(0));
    assert.equal(n % 8, 0);
    const header = bytes.subarray(8, 8 + n).toString('utf8');
    assert.equal(
      header.trimEnd(),
      '{"c":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"d":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},' +
        '"a":{"dtype":"F16","shape":[1],"data_offsets":[16,18]},"b":{"dtype":"U8","shape":[3],"data_offsets":[18,21]}}',
    );
    assert.match(header, /} *$/);
    const st = openSafetensors(path);
    assert.deepEqual(st.metadata, {});
    assert.deepEqual([...st.readFloat32('d')], [1, 2]);
    assert.deepEqual([...st.readFloat32('a')], [1]);
    assert.deepEqual([...st.readRaw('b').data], [1, 2, 3]);
    st.close();
  });

  it('matches the reference serializer test vector (safetensors tensor.rs test_serialization)', async () => {
    const path = join(tmp, 'vector.safetensors');
    await writeSafetensors(
      path,
      [{ name: 'attn.0', dtype: 'F32', shape: [1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) }],
      null,
    );
    const expected = [
      64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34,
      70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95,
      111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0,
      64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
    ];
    assert.deepEqual([...readFileSync(path)], expected);
  });

  it('refuses data whose length does not match dtype and shape, and leaves no file behind', async () => {
    const path = join(tmp, 'bad-write.safetensors');
    await assert.rejects(
      writeSafetensors(path, [{ name: 'x', dtype: 'F32', shape: [3], data: new Float32Array(2) }]),
      /needs 12/,
    );
    assert.throws(() => readFileSync(path));
  });
});

describe('safetensors reader refuses malformed files', () => {
  const good = '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  const eight = new Uint8Array(8);

  it('accepts a well-formed hand-made file with trailing spaces', () => {
    const st = openSafetensors(rawFile('good.safetensors', `${good}   `, eight));
    assert.deepEqual(st.list(), [{ name: 'x', dtype: 'F32', shape: [2] }]);
    st.close();
  });

  const cases: [string, () => string, RegExp][] = [
    [
      'file shorter than 8 bytes',
      () => {
        const p = join(tmp, 'tiny');
        writeFileSync(p, Buffer.from([1, 2]));
        return p;
      },
      /too short/,
    ],
    ['header longer than 100 MB', () => rawFile('huge', good, eight, 100_000_001), /exceeds the limit/],
    ['header past the end of the file', () => rawFile('past', good, eight, 4096), /runs past the end/],
    ['bad JSON', () => rawFile('badjson', '{"x":{"dtype":"F32",}}'), /not valid JSON/],
    ['header not an object', () => rawFile('array', '[1,2]'), /not an object/],
    [
      'duplicate key',
      () =>
        rawFile(
          'dup',
          `{"x":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"x":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}`,
        ),
      /duplicate key "x"/,
    ],
    [
      'unknown dtype',
      () => rawFile('dtype', '{"x":{"dtype":"F12","shape":[2],"data_offsets":[0,8]}}', eight),
      /dtype "F12" is not one of/,
    ],
    [
      'negative dimension',
      () => rawFile('shape', '{"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', eight),
      /shape \[-2\]/,
    ],
    [
      'fractional dimension',
      () => rawFile('shape2', '{"x":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}', eight),
      /shape \[1\.5\]/,
    ],
    [
      'offsets that are not a pair',
      () => rawFile('offs', '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0]}}', eight),
      /data_offsets \[0\]/,
    ],
    [
      'wrong byte count',
      () => rawFile('count', '{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', eight),
      /hold 8 bytes but F32 \[3\] needs 12/,
    ],
    [
      'offsets out of range (truncated data)',
      () => rawFile('trunc', good, new Uint8Array(4)),
      /runs past the end of the file/,
    ],
    [
      'bytes left over after the last tensor',
      () => rawFile('extra', good, new Uint8Array(12)),
      /does not reach the end/,
    ],
    [
      'overlapping tensors',
      () =>
        rawFile(
          'overlap',
          '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
          eight,
        ),
      /"y".*overlaps/,
    ],
    [
      'a gap between tensors',
      () => rawFile('gap', '{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', eight),
      /start at 4, expected 0 .*gap/,
    ],
    [
      'metadata that is not strings',
      () => rawFile('meta', `{"__metadata__":{"format":1},${good.slice(1)}`, eight),
      /__metadata__\.format is 1/,
    ],
    [
      'invalid UTF-8 in the header',
      () => rawFile('utf8', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d, 0x20])),
      /not valid UTF-8/,
    ],
  ];
  for (const [what, make, pattern] of cases) {
    it(what, () => {
      const path = make();
      assertFormatError(() => openSafetensors(path), pattern);
    });
  }

  it('names the file in the error', () => {
    const path = rawFile('named.safetensors', '{');
    assertFormatError(
      () => openSafetensors(path),
      new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: header is not valid JSON`),
    );
  });
});
