/**
 * CPython's `random.Random`, bit for bit, for the calls lm-evaluation-harness's few-shot sampler
 * makes: the Mersenne Twister MT19937 seeded from an integer as `random.seed(int)` does
 * (`init_by_array` over the integer's 32-bit words, least significant first), `getrandbits(k)`,
 * `random()`, `_randbelow(n)` (rejection sampling on `n.bit_length()` bits) and the `sample` and
 * `shuffle` built on it (CPython 3.x's Lib/random.py and Modules/_randommodule.c).
 */

const N = 624;
const M = 397;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;

export class PythonRandom {
  private readonly mt = new Uint32Array(N);
  private index = N + 1;

  /** `random.Random(seed)` for a non-negative integer seed (a negative one is seeded by its absolute value, as CPython does). */
  constructor(seed: number | bigint) {
    let n = typeof seed === 'bigint' ? seed : BigInt(seed);
    if (typeof seed === 'number' && !Number.isSafeInteger(seed))
      throw new RangeError(`seed: expected an integer, got ${seed}`);
    if (n < 0n) n = -n;
    const key: number[] = [];
    while (n > 0n) {
      key.push(Number(n & 0xffffffffn));
      n >>= 32n;
    }
    if (key.length === 0) key.push(0);
    this.initByArray(key);
  }

  private initGenrand(s: number): void {
    const mt = this.mt;
    mt[0] = s >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.index = N;
  }

  private initByArray(key: readonly number[]): void {
    const mt = this.mt;
    this.initGenrand(19650218);
    let i = 1;
    let j = 0;
    for (let k = Math.max(N, key.length); k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1664525)) + key[j]! + j) >>> 0;
      i++;
      j++;
      if (i >= N) {
        mt[0] = mt[N - 1]!;
        i = 1;
      }
      if (j >= key.length) j = 0;
    }
    for (let k = N - 1; k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1566083941)) - i) >>> 0;
      i++;
      if (i >= N) {
        mt[0] = mt[N - 1]!;
        i = 1;
      }
    }
    mt[0] = 0x80000000;
  }

  /** The next 32-bit output (`genrand_uint32`). */
  private next32(): number {
    const mt = this.mt;
    if (this.index >= N) {
      for (let k = 0; k < N; k++) {
        const y = (mt[k]! & UPPER_MASK) | (mt[(k + 1) % N]! & LOWER_MASK);
        mt[k] = mt[(k + M) % N]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.index = 0;
    }
    let y = mt[this.index++]!;
    y ^= y >>> 11;
    y = (y ^ ((y << 7) & 0x9d2c5680)) >>> 0;
    y = (y ^ ((y << 15) & 0xefc60000)) >>> 0;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** `getrandbits(k)` for 0 ≤ k ≤ 32 (larger k draws several words; no caller here needs them). */
  getrandbits(k: number): number {
    if (!Number.isInteger(k) || k < 0 || k > 32) throw new RangeError(`getrandbits: k must be 0 to 32, got ${k}`);
    if (k === 0) return 0;
    return this.next32() >>> (32 - k);
  }

  /** `random()`: 53 random bits as a float in [0, 1). */
  random(): number {
    const a = this.next32() >>> 5;
    const b = this.next32() >>> 6;
    return (a * 67108864 + b) * (1 / 9007199254740992);
  }

  /** `_randbelow(n)`: uniform in [0, n), drawing `n.bit_length()` bits until one is below n. */
  randbelow(n: number): number {
    if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`randbelow: n must be a positive integer, got ${n}`);
    const k = bitLength(n);
    let r = this.getrandbits(k);
    while (r >= n) r = this.getrandbits(k);
    return r;
  }

  /**
   * `sample(range(n), k)`: k distinct indices in [0, n), in selection order. CPython keeps a pool
   * (a partial shuffle) when n is small against k and a set of picks otherwise; the two consume
   * random numbers differently, so both are kept.
   */
  sample(n: number, k: number): number[] {
    if (!Number.isSafeInteger(k) || k < 0 || k > n)
      throw new RangeError('Sample larger than population or is negative');
    const result = new Array<number>(k);
    let setsize = 21;
    if (k > 5) setsize += 4 ** Math.ceil(Math.log(k * 3) / Math.log(4));
    if (n <= setsize) {
      const pool = Array.from({ length: n }, (_, i) => i);
      for (let i = 0; i < k; i++) {
        const j = this.randbelow(n - i);
        result[i] = pool[j]!;
        pool[j] = pool[n - i - 1]!;
      }
    } else {
      const selected = new Set<number>();
      for (let i = 0; i < k; i++) {
        let j = this.randbelow(n);
        while (selected.has(j)) j = this.randbelow(n);
        selected.add(j);
        result[i] = j;
      }
    }
    return result;
  }

  /** `shuffle(x)` in place. */
  shuffle<T>(x: T[]): T[] {
    for (let i = x.length - 1; i > 0; i--) {
      const j = this.randbelow(i + 1);
      [x[i], x[j]] = [x[j]!, x[i]!];
    }
    return x;
  }
}

/** `int.bit_length()` for a positive safe integer. */
function bitLength(n: number): number {
  return n < 2 ** 31 ? 32 - Math.clz32(n) : n.toString(2).length;
}
