/**
 * Whole-array conversions between float32 and the two 16-bit float formats.
 * f16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. bf16: the top 16 bits of an f32.
 * Narrowing rounds to nearest, ties to even; NaN stays NaN (quieted, top payload bits kept).
 */

let f16Table: Uint32Array | undefined;

/** float32 bit pattern of every f16 bit pattern, built once from the bit layout. */
function f16ToF32Table(): Uint32Array {
  if (f16Table) return f16Table;
  const bits = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    let mant = h & 0x3ff;
    if (exp === 31) {
      bits[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0;
    } else if (exp !== 0) {
      bits[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    } else if (mant === 0) {
      bits[h] = sign >>> 0;
    } else {
      let e = 113; // f32 biased exponent of 2^-14, the f16 subnormal scale
      while ((mant & 0x400) === 0) {
        mant <<= 1;
        e--;
      }
      bits[h] = (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
    }
  }
  f16Table = bits;
  return f16Table;
}

function checkDst(src: { length: number }, dst: Float32Array | undefined): Float32Array {
  if (dst === undefined) return new Float32Array(src.length);
  if (dst.length !== src.length) throw new RangeError(`destination has ${dst.length} elements, source ${src.length}`);
  return dst;
}

export function f16ToF32(src: Uint16Array, dst?: Float32Array): Float32Array {
  const out = checkDst(src, dst);
  const table = f16ToF32Table();
  // Copy bit patterns, not numbers: a signalling NaN would be quieted on its way through a double.
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = table[src[i]!]!;
  return out;
}

/** One f32 bit pattern to the nearest f16 bit pattern. */
function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs >= 0x7f800000) {
    if (abs === 0x7f800000) return sign | 0x7c00;
    return sign | 0x7e00 | ((abs >>> 13) & 0x3ff);
  }
  const exp = abs >>> 23;
  if (exp >= 143) return sign | 0x7c00; // |x| >= 2^16: beyond the largest f16 even before rounding
  if (exp >= 113) {
    // Normal f16: rebias the exponent, keep 10 mantissa bits, round the 13 dropped bits.
    const h = ((exp - 112) << 10) | ((abs >>> 13) & 0x3ff);
    const rest = abs & 0x1fff;
    const up = rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1) ? 1 : 0;
    return sign | (h + up); // a carry out of the mantissa correctly bumps the exponent, up to inf
  }
  if (exp < 102) return sign; // |x| < 2^-25: rounds to zero
  // Subnormal f16: value = mant · 2^(exp-150), in units of 2^-24 that is mant >> (126 - exp).
  const mant = (abs & 0x7fffff) | 0x800000;
  const shift = 126 - exp;
  const h = mant >>> shift;
  const rest = mant & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  const up = rest > half || (rest === half && (h & 1) === 1) ? 1 : 0;
  return sign | (h + up);
}

export function f32ToF16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToF16Bits(bits[i]!);
  return out;
}

export function bf16ToF32(src: Uint16Array, dst?: Float32Array): Float32Array {
  const out = checkDst(src, dst);
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  return out;
}

export function f32ToBf16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i]!;
    if ((x & 0x7fffffff) > 0x7f800000) out[i] = (x >>> 16) | 0x0040;
    else out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}
