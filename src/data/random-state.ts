/**
 * numpy's legacy `np.random.RandomState(seed)`: MT19937 seeded by `init_genrand`, masked-rejection
 * bounded integers, and the 1-d `shuffle` loop. GPT-NeoX builds its index maps with this stream, so
 * our permutations must equal numpy's draw for draw.
 *
 * Sources: numpy `random/_legacy/_legacy_seeding` (an integer seed in [0, 2^32) goes to
 * `mt19937_seed`, i.e. Matsumoto's init_genrand; only array seeds use init_by_array),
 * `random/src/mt19937/mt19937.c`, `random/src/distributions/distributions.c` (`random_interval`,
 * `random_bounded_uint64_fill`), `RandomState.shuffle` (`_shuffle_raw`).
 */
import { ConfigError } from '../util/errors.js';

const N = 624;
const M = 397;
const TWO_POW_32 = 0x1_0000_0000;

/** Arrays `shuffle` accepts. Elements are swapped as they are, whatever their type. */
export type ShuffleableArray =
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array
  | number[];

/** The smallest 2^k − 1 that is ≥ x, for 0 < x < 2^32. */
function mask32(x: number): number {
  let m = x;
  m |= m >>> 1;
  m |= m >>> 2;
  m |= m >>> 4;
  m |= m >>> 8;
  m |= m >>> 16;
  return m >>> 0;
}

export class RandomState {
  private readonly mt = new Uint32Array(N);
  private pos = N;

  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new ConfigError(`seed: expected an integer between 0 and 2**32 - 1, got ${seed}`);
    }
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1]!;
      mt[i] = (Math.imul(1812433253, (prev ^ (prev >>> 30)) >>> 0) + i) >>> 0;
    }
  }

  private twist(): void {
    const mt = this.mt;
    for (let i = 0; i < N; i++) {
      const y = (mt[i]! & 0x80000000) | (mt[(i + 1) % N]! & 0x7fffffff);
      let v = mt[(i + M) % N]! ^ (y >>> 1);
      if (y & 1) v ^= 0x9908b0df;
      mt[i] = v >>> 0;
    }
    this.pos = 0;
  }

  /** The next tempered 32-bit output, as numpy's `mt19937_next32`. */
  nextUint32(): number {
    if (this.pos >= N) this.twist();
    let y = this.mt[this.pos++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** numpy's `next_uint64` for MT19937: the first 32-bit draw is the high word. */
  nextUint64(): bigint {
    const hi = this.nextUint32();
    const lo = this.nextUint32();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /**
   * A uniform integer in [0, max], as numpy's `random_interval`: masked rejection, one 32-bit word
   * per attempt when max < 2^32, else one 64-bit word per attempt. max = 0 draws nothing.
   */
  randomInterval(max: number): number {
    if (max === 0) return 0;
    if (max <= 0xffffffff) {
      const mask = mask32(max);
      for (;;) {
        const v = (this.nextUint32() & mask) >>> 0;
        if (v <= max) return v;
      }
    }
    if (!Number.isSafeInteger(max)) throw new RangeError(`randomInterval: ${max} is not a safe integer`);
    // The mask of a value ≥ 2^32 keeps every bit of the low word.
    const maskHi = mask32(Math.floor(max / TWO_POW_32));
    for (;;) {
      const hi = (this.nextUint32() & maskHi) >>> 0;
      const lo = this.nextUint32();
      const v = hi * TWO_POW_32 + lo;
      if (v <= max) return v;
    }
  }

  /** One integer in [low, high), as legacy `randint(low, high)` with an int64 or int32 dtype. */
  randint(low: number, high: number): number {
    if (!Number.isSafeInteger(low) || !Number.isSafeInteger(high) || high <= low) {
      throw new ConfigError(`randint: expected integers low < high, got ${low}, ${high}`);
    }
    return low + this.randomInterval(high - 1 - low);
  }

  /** Shuffles a 1-d array in place exactly as legacy `RandomState.shuffle` does. */
  shuffle(a: ShuffleableArray): void {
    // Elements are moved, never converted, so one element type serves every array type here.
    const x = a as { [i: number]: number; length: number };
    for (let i = x.length - 1; i > 0; i--) {
      const j = this.randomInterval(i);
      const t = x[i]!;
      x[i] = x[j]!;
      x[j] = t;
    }
  }

  /** `permutation(n)`: arange(n) shuffled (numpy returns int64; every value here fits uint32). */
  permutation(n: number): Uint32Array {
    const a = new Uint32Array(n);
    for (let i = 0; i < n; i++) a[i] = i;
    this.shuffle(a);
    return a;
  }
}
