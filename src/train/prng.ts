/**
 * The project's own seeded random numbers (GPT-NeoX's torch/CUDA streams cannot be reproduced).
 *
 * Generator: xoshiro128** (Blackman & Vigna), 128 bits of state, its four 32-bit words seeded
 * from splitmix64(seed). Uniforms take 53 bits from two outputs; normals come from the
 * Box–Muller transform, both values of each pair used in turn. Same seed, same numbers, on
 * any platform Node runs on.
 */
export interface PrngState {
  words: [number, number, number, number];
  /** The second value of the last Box–Muller pair, not yet returned. */
  spareNormal: number | null;
}

const MASK64 = (1n << 64n) - 1n;

function splitmix64Words(seed: number, count: number): number[] {
  let x = BigInt.asUintN(64, BigInt(seed));
  const out: number[] = [];
  while (out.length < count) {
    x = (x + 0x9e3779b97f4a7c15n) & MASK64;
    let z = x;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
    z = z ^ (z >> 31n);
    out.push(Number(z & 0xffffffffn), Number(z >> 32n));
  }
  return out.slice(0, count);
}

export class Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | null;

  constructor(seedOrState: number | PrngState) {
    if (typeof seedOrState === 'number') {
      if (!Number.isSafeInteger(seedOrState)) throw new RangeError(`seed: expected an integer, got ${seedOrState}`);
      [this.s0, this.s1, this.s2, this.s3] = splitmix64Words(seedOrState, 4) as [number, number, number, number];
      this.spare = null;
    } else {
      [this.s0, this.s1, this.s2, this.s3] = seedOrState.words;
      this.spare = seedOrState.spareNormal;
    }
  }

  get state(): PrngState {
    return { words: [this.s0, this.s1, this.s2, this.s3], spareNormal: this.spare };
  }

  /** The next 32-bit output, as an unsigned integer. */
  nextUint32(): number {
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

  /** Uniform on [0, 1) with 53 random bits. */
  nextUniform(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Standard normal. */
  nextNormal(): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return z;
    }
    const u1 = 1 - this.nextUniform(); // (0, 1]: log is finite
    const u2 = this.nextUniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** Fills `out` with N(0, std²) values rounded to float32. */
  fillNormal(out: Float32Array, std: number): void {
    for (let i = 0; i < out.length; i++) out[i] = std * this.nextNormal();
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
