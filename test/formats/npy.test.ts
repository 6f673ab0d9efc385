import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type NpyDType, npyHeader, readNpy, readNpyHeader, writeNpy } from '../../src/formats/npy.js';
import { DataError } from '../../src/util/errors.js';
import { assertFormatError } from '../support/errors.js';

const tmp = mkdtempSync(join(tmpdir(), 'pythia-npy-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Files written by numpy 2.4.6 np.save (np.lib.format.write_array for versions 2.0 and 3.0), base64. */
const NUMPY_FILES: {
  what: string;
  b64: string;
  dtype: NpyDType;
  shape: number[];
  values: (number | bigint)[];
  version1?: boolean;
}[] = [
  {
    what: "np.array([[1,-2,3],[4,5,-6]], '<i4')",
    dtype: '<i4',
    shape: [2, 3],
    values: [1, -2, 3, 4, 5, -6],
    b64: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGk0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAAA/v///wMAAAAEAAAABQAAAPr///8=',
  },
  {
    what: "np.array([0, -1, 2**40, -2**62], '<i8')",
    dtype: '<i8',
    shape: [4],
    values: [0n, -1n, 1n << 40n, -(1n << 62n)],
    b64: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGk4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDQsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAAAP//////////AAAAAAABAAAAAAAAAAAAwA==',
  },
  {
    what: "np.array([0, 1, 65535], '<u2')",
    dtype: '<u2',
    shape: [3],
    values: [0, 1, 65535],
    b64: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPHUyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAEA//8=',
  },
  {
    what: "np.array([0, 1, 4294967295, 7], '<u4')",
    dtype: '<u4',
    shape: [4],
    values: [0, 1, 4294967295, 7],
    b64: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPHU0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDQsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAQAAAP////8HAAAA',
  },
  {
    what: "np.array([[0.5, -1.25]], '<f4')",
    dtype: '<f4',
    shape: [1, 2],
    values: [0.5, -1.25],
    b64: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDEsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAA/AACgvw==',
  },
  {
    what: "np.array([0.1, -2.5e300], '<f8')",
    dtype: '<f8',
    shape: [2],
    values: [0.1, -2.5e300],
    b64: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAqamZmZmZm5PwOTAKpL3U3+',
  },
  {
    what: "np.array([7, 255, 0], 'u1')",
    dtype: '|u1',
    shape: [3],
    values: [7, 255, 0],
    b64: 'k05VTVBZAQB2AHsnZGVzY3InOiAnfHUxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoH/wA=',
  },
  {
    what: "np.array(3.0, '<f8') (0-d)",
    dtype: '<f8',
    shape: [],
    values: [3],
    b64: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAIQA==',
  },
  {
    what: "np.zeros((0, 2), '<i4')",
    dtype: '<i4',
    shape: [0, 2],
    values: [],
    b64: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGk0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDAsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAo=',
  },
  {
    what: "version 2.0: np.array([1, 2], '<i4')",
    dtype: '<i4',
    shape: [2],
    values: [1, 2],
    version1: false,
    b64: 'k05VTVBZAgB0AAAAeydkZXNjcic6ICc8aTQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAAAAgAAAA==',
  },
  {
    what: "version 3.0: np.array([1, 2], '<i4')",
    dtype: '<i4',
    shape: [2],
    values: [1, 2],
    version1: false,
    b64: 'k05VTVBZAwB0AAAAeydkZXNjcic6ICc8aTQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAAAAgAAAA==',
  },
];

function writeTemp(name: string, bytes: Uint8Array | string): string {
  const path = join(tmp, name);
  writeFileSync(path, bytes);
  return path;
}

describe('npy reader and writer against numpy', () => {
  for (const [i, f] of NUMPY_FILES.entries()) {
    it(`reads ${f.what} and writes it back as numpy did`, async () => {
      const bytes = Buffer.from(f.b64, 'base64');
      const path = writeTemp(`numpy-${i}.npy`, bytes);
      const array = readNpy(path);
      assert.equal(array.dtype, f.dtype);
      assert.deepEqual(array.shape, f.shape);
      assert.deepEqual([...array.data], f.values);
      assert.equal(readNpyHeader(path).dataOffset, 128);

      const copy = join(tmp, `copy-${i}.npy`);
      await writeNpy(copy, array);
      const written = readFileSync(copy);
      if (f.version1 === false) {
        // numpy writes version 1.0 whenever the header fits, so the copy differs only in the version bytes and length field.
        assert.deepEqual(readNpy(copy), array);
        assert.equal(written[6], 1);
      } else {
        assert.ok(written.equals(bytes), 'byte-identical to numpy');
      }
    });
  }

  it('writes the header bytes numpy writes for longer shapes (numpy _write_array_header)', () => {
    const cases: [NpyDType, number[], string, number][] = [
      ['<i4', [123456, 2], "{'descr': '<i4', 'fortran_order': False, 'shape': (123456, 2), }", 128],
      ['<i8', [1e12, 0], "{'descr': '<i8', 'fortran_order': False, 'shape': (1000000000000, 0), }", 128],
      ['<f4', [3, 4, 5], "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4, 5), }", 128],
      ['<u2', [0], "{'descr': '<u2', 'fortran_order': False, 'shape': (0,), }", 128],
      [
        '|u1',
        [7, ...new Array<number>(30).fill(1)],
        `{'descr': '|u1', 'fortran_order': False, 'shape': (7, ${new Array(30).fill(1).join(', ')}), }`,
        192,
      ],
    ];
    for (const [descr, shape, dict, total] of cases) {
      const header = npyHeader(descr, shape).toString('latin1');
      const lengthField = String.fromCharCode((total - 10) & 0xff, (total - 10) >> 8);
      assert.equal(header, `\x93NUMPY\x01\x00${lengthField}${dict}${' '.repeat(total - 11 - dict.length)}\n`);
    }
  });

  it('round-trips every supported array type', async () => {
    const arrays = [
      new Int32Array([-(2 ** 31), 2 ** 31 - 1]),
      new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]),
      new Uint16Array([0, 65535]),
      new Float32Array([Math.fround(0.1), -Infinity]),
      new Float64Array([Number.MIN_VALUE, NaN]),
      new Uint8Array([0, 255]),
    ];
    for (const [i, data] of arrays.entries()) {
      const path = join(tmp, `rt-${i}.npy`);
      await writeNpy(path, { shape: [2, 1], data });
      const back = readNpy(path);
      assert.deepEqual(back.shape, [2, 1]);
      assert.deepEqual(back.data, data);
    }
  });

  it('refuses a shape that does not match the data, leaving no file', async () => {
    const path = join(tmp, 'mismatch.npy');
    await assert.rejects(
      writeNpy(path, { shape: [3], data: new Int32Array(2) }),
      (e: unknown) => e instanceof DataError && /3 elements but the data has 2/.test(e.message),
    );
    assert.throws(() => readFileSync(path));
  });
});

describe('npy reader refuses malformed files', () => {
  const good = Buffer.from(NUMPY_FILES[0]!.b64, 'base64');
  const withHeader = (dict: string): Buffer => {
    const body = Buffer.from(`${dict}\n`, 'latin1');
    const prefix = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, body.length & 0xff, body.length >> 8]);
    return Buffer.concat([prefix, body, Buffer.alloc(8)]);
  };
  const cases: [string, Uint8Array | string, RegExp][] = [
    ['no magic', 'hello world, not numpy', /no \\x93NUMPY magic/],
    [
      'an unknown version',
      Buffer.concat([good.subarray(0, 6), Buffer.from([4, 0]), good.subarray(8)]),
      /version 4\.0 is not supported/,
    ],
    ['truncated data', good.subarray(0, good.length - 1), /the file is truncated/],
    ['trailing bytes', Buffer.concat([good, Buffer.from([0])]), /has trailing bytes/],
    ['a header running past the end', good.subarray(0, 50), /truncated/],
    [
      'big-endian data',
      withHeader("{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }"),
      /dtype ">i4" is not supported/,
    ],
    [
      'an unsupported dtype',
      withHeader("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }"),
      /dtype "<c8" is not supported/,
    ],
    [
      'Fortran order',
      Buffer.from(
        'k05VTVBZAQB2AHsnZGVzY3InOiAnPGk0JywgJ2ZvcnRyYW5fb3JkZXInOiBUcnVlLCAnc2hhcGUnOiAoMiwgMiksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAAAAwAAAAIAAAAEAAAA',
        'base64',
      ),
      /Fortran-order arrays are not supported/,
    ],
    [
      'a negative dimension',
      withHeader("{'descr': '<i4', 'fortran_order': False, 'shape': (-2,), }"),
      /shape is not a tuple of non-negative integers/,
    ],
    ['a missing key', withHeader("{'descr': '<i4', 'shape': (2,), }"), /expected exactly the keys/],
    ['a header that is not a dict', withHeader('__import__("os").system("id")'), /is not a dict literal/],
  ];
  for (const [what, bytes, pattern] of cases) {
    it(what, () => {
      const path = writeTemp('bad.npy', bytes);
      assertFormatError(() => readNpy(path), pattern);
    });
  }
});
