/**
 * Every expected value here came from numpy 2.4.6 `np.random.RandomState(seed)` (the legacy
 * stream, frozen by NEP 19), computed with python3 and recorded. The `next` values are the draw
 * after the call (`randint(0, 2**32, dtype=np.int64)`, one raw 32-bit word), which pins down how
 * many words the call consumed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RandomState } from '../../src/data/random-state.js';

function rawWords(seed: number, count: number): number[] {
  const rs = new RandomState(seed);
  return Array.from({ length: count }, () => rs.nextUint32());
}

/** First 8, last 8 and Σ i·a[i] mod 1e9+7: enough to pin a whole permutation. */
function summary(a: ArrayLike<number>): { first: number[]; last: number[]; wsum: number } {
  let wsum = 0;
  for (let i = 0; i < a.length; i++) wsum = (wsum + ((i * a[i]!) % 1000000007)) % 1000000007;
  const all = Array.from(a);
  return { first: all.slice(0, 8), last: all.slice(-8), wsum };
}

test('raw MT19937 words equal numpy for several seeds, across the first twist boundary', () => {
  // np.random.RandomState(seed).randint(0, 2**32, size=700, dtype=np.int64)[:6] and [623:628]
  const cases: [number, number[], number[]][] = [
    [
      0,
      [2357136044, 2546248239, 3071714933, 3626093760, 2588848963, 3684848379],
      [3791854820, 341544762, 1076416385, 384842097, 2909461632],
    ],
    [
      1,
      [1791095845, 4282876139, 3093770124, 4005303368, 491263, 550290313],
      [2006116153, 1104314680, 939235918, 476274519, 1893343226],
    ],
    [
      1234,
      [822569775, 2137449171, 2671936806, 3512589365, 1880026316, 2629000564],
      [1664263489, 303637765, 2105248208, 676985986, 2255765315],
    ],
    [
      42,
      [1608637542, 3421126067, 4083286876, 787846414, 3143890026, 3348747335],
      [1077437785, 108880612, 791707097, 4134543476, 347346749],
    ],
    [
      4294967295,
      [419326371, 479346978, 3918654476, 2416749639, 3388880820, 2260532800],
      [1027084080, 3860652269, 657474326, 948840071, 4178390586],
    ],
  ];
  for (const [seed, first, around624] of cases) {
    const words = rawWords(seed, 700);
    assert.deepEqual(words.slice(0, 6), first, `seed ${seed}`);
    assert.deepEqual(words.slice(623, 628), around624, `seed ${seed}`);
  }
});

test('permutation equals numpy for small lengths and consumes the same draws', () => {
  const cases: [number, number, number[], number][] = [
    [1234, 10, [7, 2, 9, 1, 0, 8, 4, 5, 6, 3], 646980841],
    [0, 17, [1, 6, 8, 9, 13, 4, 2, 14, 10, 7, 16, 11, 3, 0, 5, 15, 12], 2051556033],
    [7, 1, [0], 327741615],
    [7, 2, [0, 1], 976413892],
  ];
  for (const [seed, n, expected, next] of cases) {
    const rs = new RandomState(seed);
    assert.deepEqual(Array.from(rs.permutation(n)), expected, `seed ${seed} n ${n}`);
    assert.equal(rs.nextUint32(), next, `draw after permutation, seed ${seed} n ${n}`);
  }
});

test('permutation equals numpy for lengths beyond 2^16', () => {
  const cases: [number, number, ReturnType<typeof summary>, number][] = [
    [
      99,
      1000,
      { first: [890, 983, 107, 609, 113, 350, 22, 136], last: [68, 722, 744, 713, 168, 185, 35, 641], wsum: 247660055 },
      294276972,
    ],
    [
      5,
      65537,
      {
        first: [4701, 28770, 26417, 15862, 57176, 28331, 63647, 29005],
        last: [59465, 5520, 56438, 35814, 59069, 20463, 18638, 35683],
        wsum: 670988419,
      },
      1590075096,
    ],
    [
      2024,
      70000,
      {
        first: [58020, 27615, 41169, 30184, 44958, 39600, 29273, 12516],
        last: [7977, 49335, 68030, 47643, 35456, 51808, 52730, 7816],
        wsum: 551948458,
      },
      850658493,
    ],
    [
      1234,
      100000,
      {
        first: [13504, 72599, 42217, 97650, 99120, 13165, 56244, 72729],
        last: [55985, 32399, 82584, 89460, 60620, 34086, 58067, 92975],
        wsum: 375732624,
      },
      1376071051,
    ],
  ];
  for (const [seed, n, expected, next] of cases) {
    const rs = new RandomState(seed);
    assert.deepEqual(summary(rs.permutation(n)), expected, `seed ${seed} n ${n}`);
    assert.equal(rs.nextUint32(), next, `draw after permutation, seed ${seed} n ${n}`);
  }
});

test('shuffle moves elements the same way for int32, int64 and plain arrays', () => {
  // a = np.arange(100, 120, dtype=np.int32 or np.int64); RandomState(1234).shuffle(a)
  const expected = [103, 113, 102, 116, 114, 105, 104, 100, 108, 118, 117, 111, 110, 109, 107, 101, 119, 112, 106, 115];
  const int32 = Int32Array.from({ length: 20 }, (_, i) => 100 + i);
  new RandomState(1234).shuffle(int32);
  assert.deepEqual(Array.from(int32), expected);
  const int64 = BigInt64Array.from({ length: 20 }, (_, i) => BigInt(100 + i));
  new RandomState(1234).shuffle(int64);
  assert.deepEqual(Array.from(int64, Number), expected);
  const plain = Array.from({ length: 20 }, (_, i) => 100 + i);
  new RandomState(1234).shuffle(plain);
  assert.deepEqual(plain, expected);
});

test('randint uses masked rejection, with 64-bit words (high word first) for wide ranges', () => {
  const draw = (seed: number, low: number, high: number, n: number) => {
    const rs = new RandomState(seed);
    return Array.from({ length: n }, () => rs.randint(low, high));
  };
  // RandomState(3).randint(0, 10, size=12)
  assert.deepEqual(draw(3, 0, 10, 12), [8, 9, 3, 8, 8, 0, 5, 3, 9, 9, 5, 7]);
  // RandomState(3).randint(-5, 6, size=12, dtype=np.int32)
  assert.deepEqual(draw(3, -5, 6, 12), [5, 3, 4, -2, 3, 3, -5, 0, -2, 5, 4, 4]);
  // RandomState(7).randint(0, 3*2**33+6, size=4, dtype=np.int64)
  assert.deepEqual(draw(7, 0, 3 * 2 ** 33 + 6, 4), [5664942582, 17086337235, 18502773945, 372560217]);
  // RandomState(1234).randint(0, 2**40, size=3, dtype=np.int64)
  assert.deepEqual(draw(1234, 0, 2 ** 40, 3), [204000912083, 166721346613, 878802328948]);
});

test('nextUint64 puts the first word high', () => {
  const rs = new RandomState(1234);
  assert.equal(rs.nextUint64(), (822569775n << 32n) | 2137449171n);
});

test('seeds outside [0, 2^32) are refused as numpy refuses them', () => {
  assert.throws(() => new RandomState(-1), { name: 'ConfigError' });
  assert.throws(() => new RandomState(2 ** 32), { name: 'ConfigError' });
  assert.throws(() => new RandomState(1.5), { name: 'ConfigError' });
});
