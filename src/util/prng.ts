/**
 * The project's one seeded random-number generator: xoshiro128** (Blackman & Vigna), four 32-bit
 * words of state seeded through splitmix32. 32-bit arithmetic only, so every platform Node runs
 * on gives the same stream: same seed, same bytes. Uniforms take 53 bits from two outputs;
 * normals come from the Box–Muller transform, both values of each pair used in turn.
 */
import { ConfigError } from './errors.js';

const TWO_32 = 2 ** 32;

export interface PrngState {
  words: [number, number, number, number];
  /** The second value of the last Box–Muller pair, not yet returned. */
  spareNormal: number | null;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** splitmix32: expands one 32-bit seed into well-mixed words, used only for seeding. */
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
  private spare: number | null;

  /** A generator for a seed (an integer in [0, 2^32)) or in a saved state. */
  constructor(seedOrState: number | PrngState) {
    let words: readonly number[];
    if (typeof seedOrState === 'number') {
      if (!Number.isInteger(seedOrState) || seedOrState < 0 || seedOrState >= TWO_32) {
        throw new ConfigError(`seed: expected an integer from 0 to ${TWO_32 - 1}, got ${seedOrState}`);
      }
      const next = splitmix32(seedOrState);
      words = [next(), next(), next(), next()];
      this.spare = null;
    } else {
      words = seedOrState.words;
      this.spare = seedOrState.spareNormal;
    }
    [this.s0, this.s1, this.s2, this.s3] = words.map((w) => w >>> 0) as [number, number, number, number];
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the all-zero state is a fixed point
  }

  static fromSeed(seed: number): Prng {
    return new Prng(seed);
  }

  /** A generator in the given state (s[0]..s[3] of the reference implementation). */
  static fromState(words: readonly [number, number, number, number]): Prng {
    return new Prng({ words: [...words], spareNormal: null });
  }

  /** The whole state, for exact resume. */
  get state(): PrngState {
    return { words: [this.s0, this.s1, this.s2, this.s3], spareNormal: this.spare };
  }

  /** An independent generator seeded from this one's next four words. */
  fork(): Prng {
    return Prng.fromState([this.nextU32(), this.nextU32(), this.nextU32(), this.nextU32()]);
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

  /** Fisher–Yates, in place; returns the array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i]!;
      items[i] = items[j]!;
      items[j] = tmp;
    }
    return items;
  }

  /** Standard normal. */
  normal(): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return z;
    }
    const u1 = 1 - this.float(); // (0, 1]: the log is finite
    const u2 = this.float();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** Fills `out` with N(0, std²) values rounded to float32. */
  fillNormal(out: Float32Array, std: number): void {
    for (let i = 0; i < out.length; i++) out[i] = std * this.normal();
  }
}
