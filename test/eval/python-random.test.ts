/**
 * PythonRandom against CPython 3.11's random.Random, on vectors written by
 * test/fixtures/lm-eval/golden.py (python3 test/fixtures/lm-eval/golden.py <lm-eval 0.4.12 checkout>),
 * e.g. `python3 -c "import random; r=random.Random(1234); print(r.sample(range(100), 5))"` → [99, 56, 14, 0, 11].
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PythonRandom } from '../../src/eval/python-random.js';
import { golden } from './lm-eval-golden.js';

const vectors = golden.random;

test('seeding from an integer (init_by_array over its 32-bit words) and getrandbits, for small, 32-bit, wider and negative seeds', () => {
  const r = new PythonRandom(1234);
  assert.deepEqual(
    vectors.seed1234_getrandbits32.map(() => r.getrandbits(32)),
    vectors.seed1234_getrandbits32,
  );
  for (const [seed, [word, seven]] of Object.entries(vectors.seeds_getrandbits32)) {
    assert.equal(new PythonRandom(BigInt(seed)).getrandbits(32), word, `seed ${seed}`);
    assert.equal(new PythonRandom(BigInt(seed)).getrandbits(7), seven, `seed ${seed}`);
  }
  assert.equal(new PythonRandom(1234).getrandbits(0), 0);
});

test('random() takes 53 bits from two words', () => {
  const r = new PythonRandom(1234);
  assert.deepEqual(
    vectors.seed1234_random.map(() => r.random()),
    vectors.seed1234_random,
  );
});

test('_randbelow draws n.bit_length() bits until one is below n (n = 1 included)', () => {
  const r = new PythonRandom(1234);
  const ns = [1, 2, 3, 5, 7, 100, 1000, 2 ** 31 + 1, 2 ** 32 - 1];
  assert.deepEqual(
    ns.map((n) => r.randbelow(n)),
    vectors.seed1234_randbelow,
  );
});

test('sample: the pool branch and the set branch, at the setsize boundary, in sequence; shuffle', () => {
  for (const { n, k, sample } of vectors.seed1234_samples) {
    assert.deepEqual(new PythonRandom(1234).sample(n, k), sample, `sample(range(${n}), ${k})`);
  }
  const r = new PythonRandom(1234);
  assert.deepEqual(
    vectors.seed1234_sample_sequence.map(() => r.sample(24, 4)),
    vectors.seed1234_sample_sequence,
  );
  assert.deepEqual(new PythonRandom(1234).shuffle(Array.from({ length: 20 }, (_, i) => i)), vectors.seed1234_shuffle20);
  assert.throws(() => new PythonRandom(1).sample(3, 4), /Sample larger than population/);
});
