import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/formats/float16.js';

/** Value of an f16 bit pattern from the IEEE 754 definition, computed with doubles. */
function f16Reference(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

function bitsOfF32(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0]!;
}

function f32OfBits(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0]!;
}

/**
 * Round to nearest, ties to even, by brute force over an ascending list of candidate magnitudes,
 * where `magnitudes[i]` is the value of bit pattern i and the last entry stands for infinity at
 * the value the next finite one would have (IEEE overflow rounding).
 */
function nearestEven(x: number, magnitudes: number[], signBit: number): number {
  const a = Math.abs(x);
  let lo = 0;
  let hi = magnitudes.length - 1;
  if (a >= magnitudes[hi]!) return (x < 0 || Object.is(x, -0) ? signBit : 0) | hi;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (magnitudes[mid]! <= a) lo = mid;
    else hi = mid;
  }
  const dLo = a - magnitudes[lo]!;
  const dHi = magnitudes[hi]! - a;
  const pick = dLo < dHi ? lo : dHi < dLo ? hi : lo % 2 === 0 ? lo : hi;
  return (x < 0 || Object.is(x, -0) ? signBit : 0) | pick;
}

const F16_MAGNITUDES = Array.from({ length: 0x7c01 }, (_, h) => (h === 0x7c00 ? 65536 : f16Reference(h)));

/** Deterministic f32 bit patterns (LCG) plus interesting edges. */
function testFloats(): Float32Array {
  const bits: number[] = [];
  let s = 12345;
  for (let i = 0; i < 20000; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    bits.push(s);
  }
  const out = new Float32Array(new Uint32Array(bits).buffer);
  return out;
}

describe('f16 → f32', () => {
  it('decodes all 65536 bit patterns to their IEEE values (zeros, subnormals, inf, NaN)', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const f = f16ToF32(all);
    for (let h = 0; h < 65536; h++) {
      const want = f16Reference(h);
      if (Number.isNaN(want)) assert.ok(Number.isNaN(f[h]!), `h=${h}`);
      else assert.ok(Object.is(f[h], want), `h=0x${h.toString(16)}: ${f[h]} vs ${want}`);
    }
  });

  it('keeps NaN payloads and writes into a given destination', () => {
    const dst = new Float32Array(2);
    const out = f16ToF32(new Uint16Array([0x7c01, 0xfe00]), dst);
    assert.equal(out, dst);
    assert.deepEqual([...new Uint32Array(dst.buffer)], [0x7f802000, 0xffc00000]);
    assert.throws(() => f16ToF32(new Uint16Array(3), new Float32Array(2)), RangeError);
  });
});

describe('f32 → f16 (round to nearest even)', () => {
  it('round-trips every non-NaN f16 value exactly', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = f32ToF16(f16ToF32(all));
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0)
        assert.equal(back[h]! & 0x7e00, 0x7e00, 'NaN stays a (quiet) NaN');
      else assert.equal(back[h], h);
    }
  });

  it('matches numpy astype(float16) on overflow, underflow and tie cases', () => {
    // numpy 2.4.6: np.array(bits, uint32).view(float32).astype(float16).view(uint16)
    const inputBits = [
      1199566847, 1199566848, 1199562752, 855638016, 855638017, 868220928, 874512384, 1036831949, 3226013648,
      1203982336, 2147483648, 2139095040, 4286578688, 947912704, 947904415, 1065365504, 1065357312,
    ];
    const numpy = [31743, 31744, 31743, 0, 1, 2, 2, 11878, 49736, 31744, 32768, 31744, 64512, 1024, 1023, 15362, 15360];
    const out = f32ToF16(new Float32Array(new Uint32Array(inputBits).buffer));
    assert.deepEqual([...out], numpy);
  });

  it('agrees with a brute-force nearest-even search on 20000 pseudo-random floats and all halfway points', () => {
    const xs = testFloats();
    const halfways: number[] = [];
    for (let h = 0; h < 0x7bff; h += 7)
      halfways.push(
        (F16_MAGNITUDES[h]! + F16_MAGNITUDES[h + 1]!) / 2,
        -(F16_MAGNITUDES[h]! + F16_MAGNITUDES[h + 1]!) / 2,
      );
    const all = Float32Array.from([...xs, ...halfways]); // f16 halfway points are exact in f32
    const out = f32ToF16(all);
    for (let i = 0; i < all.length; i++) {
      const x = all[i]!;
      if (Number.isNaN(x)) {
        assert.equal(out[i]! & 0x7e00, 0x7e00);
        continue;
      }
      assert.equal(out[i], nearestEven(x, F16_MAGNITUDES, 0x8000), `x=${x} (0x${bitsOfF32(x).toString(16)})`);
    }
  });
});

describe('bf16', () => {
  it('decodes by placing the bits in the top half of an f32', () => {
    const out = bf16ToF32(new Uint16Array([0x3f80, 0xc049, 0x0001, 0x7f80, 0xff80, 0x8000, 0x7fc1]));
    assert.deepEqual(
      [...new Uint32Array(out.buffer)],
      [0x3f800000, 0xc0490000, 0x00010000, 0x7f800000, 0xff800000, 0x80000000, 0x7fc10000],
    );
  });

  it('encodes with round to nearest even, overflowing to inf, against a brute-force search', () => {
    const xs = testFloats();
    const out = f32ToBf16(xs);
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i]!;
      const bits = bitsOfF32(x);
      if (Number.isNaN(x)) {
        assert.equal(out[i]! & 0x7fc0, 0x7fc0, 'quiet NaN');
        assert.equal(out[i]! >> 15, bits >>> 31, 'sign kept');
        continue;
      }
      // Candidates: truncation and the next magnitude up (0x7f80 stands for 2^128, as IEEE overflow rounding does).
      const lo = (bits >>> 16) & 0x7fff;
      const value = (b: number): number => (b === 0x7f80 ? 2 ** 128 : Math.abs(f32OfBits(b << 16)));
      const a = Math.abs(x);
      const dLo = a - value(lo);
      const dHi = value(lo + 1) - a;
      const pick = lo === 0x7f80 ? lo : dLo < dHi ? lo : dHi < dLo ? lo + 1 : lo % 2 === 0 ? lo : lo + 1;
      assert.equal(out[i], (bits >>> 31 ? 0x8000 : 0) | pick, `x=${x}`);
    }
  });

  it('rounds the exact halfway cases to even', () => {
    const xs = new Float32Array(new Uint32Array([0x3f808000, 0x3f818000, 0x7f7f8000, 0x7f7fffff, 0x80008000]).buffer);
    assert.deepEqual([...f32ToBf16(xs)], [0x3f80, 0x3f82, 0x7f80, 0x7f80, 0x8000]);
  });
});
