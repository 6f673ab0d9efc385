/**
 * The project's seeded pseudo-random generator: SplitMix64 (Steele, Lea & Flood 2014), exact in
 * BigInt arithmetic, so the same seed gives the same stream on every machine. Uniform doubles take
 * the top 53 bits; normals use the Box–Muller transform (cached second value).
 */
const MASK64 = (1n << 64n) - 1n;

export class Prng {
  private state: bigint;
  private spare: number | undefined;

  constructor(seed: number | bigint) {
    this.state = BigInt.asUintN(64, BigInt(seed));
  }

  /** The next 64-bit output. */
  nextU64(): bigint {
    this.state = (this.state + 0x9e3779b97f4a7c15n) & MASK64;
    let z = this.state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
    return z ^ (z >> 31n);
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return Number(this.nextU64() >> 11n) / 2 ** 53;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal. */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const radius = Math.sqrt(-2 * Math.log(u));
    this.spare = radius * Math.sin(2 * Math.PI * v);
    return radius * Math.cos(2 * Math.PI * v);
  }

  /** The generator's whole state, for exact resume. */
  save(): { state: string; spare: number | null } {
    return { state: this.state.toString(), spare: this.spare ?? null };
  }

  static restore(saved: { state: string; spare: number | null }): Prng {
    const p = new Prng(0);
    p.state = BigInt(saved.state);
    p.spare = saved.spare ?? undefined;
    return p;
  }
}
