/**
 * The fused inference ops, rotary and attention: float32 (onnxruntime's com.microsoft kernels) and
 * float64 (the decomposition) against plain-loop references, VJPs against central differences.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Graph, type Tensor } from '../../src/graph/graph.js';
import * as op from '../../src/graph/ops.js';
import { GraphError } from '../../src/graph/shape.js';
import type { HostTensor } from '../../src/runtime/session.js';
import { assertClose, checkVjp, f32, f64, i64, run } from '../support/check.js';
import { Rng } from '../support/random.js';
import type { Nd } from '../support/reference.js';

const MASK = -3.4028234663852886e38;

/** x [B, S, heads·hd]: the first 2·half channels of each head rotated by angle table row positions[b, s]. */
function rotaryReference(x: Nd, positions: number[], cos: Nd, sin: Nd, heads: number): Float64Array {
  const [B, S, W] = x.dims as [number, number, number];
  const hd = W / heads;
  const half = cos.dims[1]!;
  const out = Float64Array.from(x.data);
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S; s++) {
      const p = positions[b * S + s]!;
      for (let h = 0; h < heads; h++) {
        const base = (b * S + s) * W + h * hd;
        for (let i = 0; i < half; i++) {
          const [a, c] = [x.data[base + i]!, x.data[base + half + i]!];
          const [co, si] = [cos.data[p * half + i]!, sin.data[p * half + i]!];
          out[base + i] = a * co - c * si;
          out[base + half + i] = c * co + a * si;
        }
      }
    }
  }
  return out;
}

interface AttentionCase {
  q: Nd;
  k: Nd;
  v: Nd;
  bias: Nd;
  pastKey?: Nd;
  pastValue?: Nd;
  heads: number;
  scale: number;
}

/** softmax(q·kᵀ·scale + bias)·v per head, keys = past then new; returns output and present keys/values. */
function attentionReference(c: AttentionCase): { output: Float64Array; key: Float64Array; value: Float64Array } {
  const [B, S, W] = c.q.dims as [number, number, number];
  const L = c.k.dims[1]!;
  const P = c.pastKey ? c.pastKey.dims[2]! : 0;
  const T = P + L;
  const hd = W / c.heads;
  const present = (past: Nd | undefined, fresh: Nd): Float64Array => {
    const out = new Float64Array(B * c.heads * T * hd);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < c.heads; h++)
        for (let t = 0; t < T; t++)
          for (let d = 0; d < hd; d++) {
            out[((b * c.heads + h) * T + t) * hd + d] =
              t < P ? past!.data[((b * c.heads + h) * P + t) * hd + d]! : fresh.data[(b * L + t - P) * W + h * hd + d]!;
          }
    return out;
  };
  const key = present(c.pastKey, c.k);
  const value = present(c.pastValue, c.v);
  const [bb, bh] = [c.bias.dims[0]!, c.bias.dims[1]!];
  const output = new Float64Array(B * S * W);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < c.heads; h++) {
      for (let s = 0; s < S; s++) {
        const scores = Array.from({ length: T }, (_, t) => {
          let dot = 0;
          for (let d = 0; d < hd; d++)
            dot += c.q.data[(b * S + s) * W + h * hd + d]! * key[((b * c.heads + h) * T + t) * hd + d]!;
          return dot * c.scale + c.bias.data[(((bb === 1 ? 0 : b) * bh + (bh === 1 ? 0 : h)) * S + s) * T + t]!;
        });
        const max = Math.max(...scores);
        const weights = scores.map((x) => Math.exp(x - max));
        const total = weights.reduce((x, y) => x + y, 0);
        for (let d = 0; d < hd; d++) {
          let acc = 0;
          for (let t = 0; t < T; t++) acc += (weights[t]! / total) * value[((b * c.heads + h) * T + t) * hd + d]!;
          output[(b * S + s) * W + h * hd + d] = acc;
        }
      }
    }
  }
  return { output, key, value };
}

function angleTables(rows: number, half: number): { cos: Nd; sin: Nd } {
  const cos = new Float64Array(rows * half);
  const sin = new Float64Array(rows * half);
  for (let p = 0; p < rows; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p / 100 ** (i / half);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos: { data: cos, dims: [rows, half] }, sin: { data: sin, dims: [rows, half] } };
}

describe('rotary', () => {
  const rng = new Rng(29);
  const [B, S, heads, hd] = [2, 3, 2, 8];
  const x = rng.nd([B, S, heads * hd]);
  const positions = [0, 1, 2, 5, 6, 7];

  for (const half of [4, 1]) {
    const { cos, sin } = angleTables(8, half);
    const expected = rotaryReference(x, positions, cos, sin, heads);
    const build = (t: Record<string, Tensor>): Tensor => op.rotary(t.x!, t.positions!, t.cos!, t.sin!, heads);

    it(`rotates ${2 * half} of ${hd} channels: float32 kernel and float64 decomposition`, async () => {
      const r32 = await run({ x: f32(x), positions: i64(positions, [B, S]), cos: f32(cos), sin: f32(sin) }, build);
      assertClose(r32.y!.data as Float32Array, expected, { rtol: 1e-5, atol: 1e-6 }, 'float32');
      const r64 = await run({ x: f64(x), positions: i64(positions, [B, S]), cos: f64(cos), sin: f64(sin) }, build);
      assertClose(r64.y!.data as Float64Array, expected, { rtol: 1e-14, atol: 1e-15 }, 'float64');
    });

    it(`int32 positions rotate as int64 ones (${2 * half} channels, float32 and float64)`, async () => {
      const p32: HostTensor = { data: Int32Array.from(positions), dims: [B, S] };
      const r32 = await run({ x: f32(x), positions: p32, cos: f32(cos), sin: f32(sin) }, build);
      assertClose(r32.y!.data as Float32Array, expected, { rtol: 1e-5, atol: 1e-6 }, 'float32');
      const r64 = await run({ x: f64(x), positions: p32, cos: f64(cos), sin: f64(sin) }, build);
      assertClose(r64.y!.data as Float64Array, expected, { rtol: 1e-14, atol: 1e-15 }, 'float64');
    });

    it(`VJP with ${2 * half} rotated channels matches central differences`, async () => {
      await checkVjp({
        wrt: { x },
        fixed: { positions: i64(positions, [B, S]), cos: f64(cos), sin: f64(sin) },
        build,
      });
    });
  }

  it('refuses tables wider than a head and positions of another shape', () => {
    const { graph, xs } = inputs({ x: [B, S, heads * hd], wide: [8, 5], narrow: [8, 4] });
    assert.throws(
      () => op.rotary(xs.x!, graph.input('p1', 'int64', [B, S]), xs.wide!, xs.wide!, heads),
      /rotary: tables .* 2·half ≤ head_dim 8/,
    );
    assert.throws(
      () => op.rotary(xs.x!, graph.input('p2', 'int64', [B, S + 1]), xs.narrow!, xs.narrow!, heads),
      GraphError,
    );
  });
});

describe('attention', () => {
  const rng = new Rng(31);
  const [B, heads, hd] = [2, 2, 3];
  const W = heads * hd;
  const scale = 1 / Math.sqrt(hd);

  /**
   * Causal over [past + new] keys, with the first key of batch row 1 masked as left padding is. A
   * row with every key masked is left alone: the −3.4e38 absorbs q·k in floating point, so central
   * differences see no gradient there while the exact one is not zero.
   */
  function causalBias(S: number, P: number): Nd {
    const T = P + S;
    const data = new Float64Array(B * S * T);
    for (let b = 0; b < B; b++)
      for (let s = 0; s < S; s++)
        for (let t = 0; t < T; t++) {
          if (t > P + s || (b === 1 && t === 0 && P + s > 0)) data[(b * S + s) * T + t] = MASK;
        }
    return { data, dims: [B, 1, S, T] };
  }

  const cases: { label: string; c: AttentionCase }[] = [
    {
      label: 'prompt of 3, no past',
      c: { q: rng.nd([B, 3, W]), k: rng.nd([B, 3, W]), v: rng.nd([B, 3, W]), bias: causalBias(3, 0), heads, scale },
    },
    {
      label: 'one new position after 4 past ones',
      c: {
        q: rng.nd([B, 1, W]),
        k: rng.nd([B, 1, W]),
        v: rng.nd([B, 1, W]),
        bias: causalBias(1, 4),
        pastKey: rng.nd([B, heads, 4, hd]),
        pastValue: rng.nd([B, heads, 4, hd]),
        heads,
        scale,
      },
    },
    {
      label: 'two new positions after 2 past ones, a per-head bias',
      c: {
        q: rng.nd([B, 2, W]),
        k: rng.nd([B, 2, W]),
        v: rng.nd([B, 2, W]),
        bias: rng.nd([B, heads, 2, 4]),
        pastKey: rng.nd([B, heads, 2, hd]),
        pastValue: rng.nd([B, heads, 2, hd]),
        heads,
        scale: 0.7,
      },
    },
  ];

  const build =
    (c: AttentionCase) =>
    (t: Record<string, Tensor>): Record<string, Tensor> => {
      const past = t.pastKey ? { key: t.pastKey, value: t.pastValue! } : undefined;
      const r = op.attention(t.q!, t.k!, t.v!, t.bias!, { heads: c.heads, scale: c.scale, past });
      return { output: r.output, key: r.key, value: r.value };
    };
  const feeds = (c: AttentionCase, to: (nd: Nd) => ReturnType<typeof f64>): Record<string, ReturnType<typeof f64>> => {
    const named: Record<string, Nd | undefined> = {
      q: c.q,
      k: c.k,
      v: c.v,
      bias: c.bias,
      pastKey: c.pastKey,
      pastValue: c.pastValue,
    };
    return Object.fromEntries(
      Object.entries(named)
        .filter(([, nd]) => nd)
        .map(([name, nd]) => [name, to(nd!)]),
    );
  };

  for (const { label, c } of cases) {
    const expected = attentionReference(c);
    it(`${label}: float32 kernel and float64 decomposition`, async () => {
      for (const [to, tol] of [
        [f32, { rtol: 1e-5, atol: 1e-6 }],
        [f64, { rtol: 1e-12, atol: 1e-14 }],
      ] as const) {
        const r = await run(feeds(c, to), build(c));
        for (const name of ['output', 'key', 'value'] as const) {
          assertClose(
            r[name]!.data as Float64Array,
            expected[name],
            tol,
            `${name} (${to === f32 ? 'float32' : 'float64'})`,
          );
        }
      }
    });

    it(`${label}: VJP of output and present keys/values matches central differences`, async () => {
      const named: Record<string, Nd | undefined> = {
        q: c.q,
        k: c.k,
        v: c.v,
        pastKey: c.pastKey,
        pastValue: c.pastValue,
      };
      const wrt = Object.fromEntries(Object.entries(named).filter(([, nd]) => nd)) as Record<string, Nd>;
      // The mask's −3.4e38 cannot be perturbed; a per-head bias is an input like any other.
      const biasIsInput = c.bias.dims[1] === heads;
      await checkVjp({
        wrt: biasIsInput ? { ...wrt, bias: c.bias } : wrt,
        fixed: biasIsInput ? {} : { bias: f64(c.bias) },
        build: (t) => {
          const r = build(c)(t);
          const flat = (x: Tensor): Tensor => op.reshape(x, [x.shape.reduce<number>((p, d) => p * (d as number), 1)]);
          return op.concat([flat(r.output!), flat(r.key!), flat(r.value!)], 0);
        },
      });
    });
  }

  it('refuses mismatched shapes with a one-line error naming the op', () => {
    const { graph, xs } = inputs({
      q: [B, 1, W],
      k: [B, 1, W],
      v: [B, 1, W],
      pk: [B, heads, 4, hd],
      pv: [B, heads, 4, hd],
    });
    assert.throws(
      () =>
        op.attention(xs.q!, xs.k!, xs.v!, graph.input('b1', 'float32', [B, 1, 1, 4]), {
          heads,
          scale,
          past: { key: xs.pk!, value: xs.pv! },
        }),
      /attention: bias .* should be float32\[2 or 1, 1 or 2, 1, 5\]/,
    );
    assert.throws(
      () => op.attention(xs.q!, xs.k!, xs.v!, graph.input('b2', 'float32', [B, 1, 1, 5]), { heads: 4, scale }),
      /attention: q .* with 4 heads/,
    );
  });
});

function inputs(dims: Record<string, number[]>): { graph: Graph; xs: Record<string, Tensor> } {
  const graph = new Graph();
  return {
    graph,
    xs: Object.fromEntries(Object.entries(dims).map(([name, d]) => [name, graph.input(name, 'float32', d)])),
  };
}
