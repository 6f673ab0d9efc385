/**
 * The corpus generator's only source of randomness: xoshiro128** (Blackman and Vigna), seeded
 * through splitmix32. 32-bit arithmetic only, so every Node version gives the same stream.
 */
import { ConfigError } from '../util/errors.js';

const TWO_32 = 2 ** 32;

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** splitmix32: expands one 32-bit seed into a stream of well-mixed words, used only for seeding. */
function splitmix32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  private constructor(words: readonly number[]) {
    [this.s0, this.s1, this.s2, this.s3] = words.map((w) => w >>> 0) as [number, number, number, number];
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the all-zero state is a fixed point
  }

  /** A generator for a user seed: an integer in [0, 2^32). */
  static fromSeed(seed: number): Prng {
    if (!Number.isInteger(seed) || seed < 0 || seed >= TWO_32) {
      throw new ConfigError(`--seed: expected an integer from 0 to ${TWO_32 - 1}, got ${seed}`);
    }
    const next = splitmix32(seed);
    return new Prng([next(), next(), next(), next()]);
  }

  /** A generator in the given state (four 32-bit words, s[0]..s[3] of the reference implementation). */
  static fromState(words: readonly [number, number, number, number]): Prng {
    return new Prng(words);
  }

  /** An independent generator seeded from this one's next four words. */
  fork(): Prng {
    return new Prng([this.nextU32(), this.nextU32(), this.nextU32(), this.nextU32()]);
  }

  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  float(): number {
    const high = this.nextU32() >>> 5;
    const low = this.nextU32() >>> 6;
    return (high * 67108864 + low) / 9007199254740992;
  }

  /** Uniform integer in [0, n), without modulo bias; n in [1, 2^32]. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_32) throw new RangeError(`Prng.int: bad bound ${n}`);
    const limit = TWO_32 - (TWO_32 % n);
    for (;;) {
      const r = this.nextU32();
      if (r < limit) return r % n;
    }
  }

  /** Uniform integer in [lo, hi], both ends included. */
  between(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** Fisher-Yates, in place; returns the array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i]!;
      items[i] = items[j]!;
      items[j] = tmp;
    }
    return items;
  }
}
