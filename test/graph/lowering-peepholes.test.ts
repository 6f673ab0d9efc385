/**
 * The lowering's two rewrites of the ONNX node list: a chain of adds whose inner sums nothing else
 * reads becomes one variadic Sum (CPU only), and a node repeating an earlier one (same op, inputs
 * and attributes) reads the earlier one's outputs, unless it writes a graph output. Each against
 * the values the graph computes by its own definition.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Graph, type Tensor } from '../../src/graph/graph.js';
import { toOnnx } from '../../src/graph/onnx.js';
import * as op from '../../src/graph/ops.js';
import { assertClose, f32, f64, run } from '../support/check.js';
import { Rng } from '../support/random.js';

const opTypes = (bytes: Uint8Array): string[] =>
  [
    ...Buffer.from(bytes)
      .toString('latin1')
      .matchAll(/n\d+_([A-Za-z]+)/g),
  ].map((m) => m[1]!);

const count = (types: string[], name: string): number => types.filter((t) => t === name).length;

function lowered(
  build: (g: Graph, x: Tensor) => Record<string, Tensor>,
  target?: 'cpu' | 'webgpu',
): { types: string[] } {
  const g = new Graph();
  const x = g.input('x', 'float32', [3, 4]);
  return { types: opTypes(toOnnx({ graph: g, outputs: build(g, x) }, { target }).bytes) };
}

describe('adds as one Sum', () => {
  const rng = new Rng(17);
  const a = rng.nd([3, 4]);
  const b = rng.nd([4]);
  const c = rng.nd([3, 1]);
  const d = rng.nd([3, 4]);

  for (const [name, feed] of [
    ['float64', f64],
    ['float32', f32],
  ] as const) {
    it(`a chain of four broadcast operands, ${name}`, async () => {
      const r = await run({ a: feed(a), b: feed(b), c: feed(c), d: feed(d) }, (t) =>
        op.add(op.add(op.add(t.a!, t.b!), t.c!), t.d!),
      );
      const expected = a.data.map((v, i) => v + b.data[i % 4]! + c.data[Math.floor(i / 4)]! + d.data[i]!);
      assertClose(r.y!.data as Float64Array, expected, { rtol: 1e-6, atol: 1e-6 }, 'sum');
    });
  }

  it('lowers a chain to one Sum node, on the CPU only', () => {
    const chain = (_g: Graph, x: Tensor): Record<string, Tensor> => ({ y: op.add(op.add(op.add(x, 1), x), 2) });
    const cpu = lowered(chain).types;
    assert.equal(count(cpu, 'Sum'), 1, cpu.join(' '));
    assert.equal(count(cpu, 'Add'), 0, cpu.join(' '));
    const webgpu = lowered(chain, 'webgpu').types;
    assert.equal(count(webgpu, 'Sum'), 0, webgpu.join(' '));
    assert.equal(count(webgpu, 'Add'), 3, webgpu.join(' '));
  });

  it('keeps an inner sum that another node or a graph output reads', async () => {
    const types = lowered((_g, x) => {
      const inner = op.add(x, 1);
      return { y: op.add(inner, x), inner };
    }).types;
    assert.equal(count(types, 'Sum'), 0, types.join(' '));
    const r = await run({ a: f64(a) }, (t) => {
      const inner = op.add(t.a!, 1);
      return { y: op.add(op.add(inner, t.a!), op.mul(inner, 2)), inner };
    });
    assertClose(
      r.y!.data as Float64Array,
      a.data.map((v) => v + 1 + v + 2 * (v + 1)),
      { rtol: 1e-12, atol: 0 },
      'y',
    );
    assertClose(
      r.inner!.data as Float64Array,
      a.data.map((v) => v + 1),
      { rtol: 1e-12, atol: 0 },
      'inner',
    );
  });
});

describe('common subexpressions', () => {
  const rng = new Rng(29);
  const a = rng.nd([3, 4]);

  it('computes a repeated node once', () => {
    const types = lowered((_g, x) => ({ y: op.mul(op.sum(x, [0]), op.sum(x, [0])) })).types;
    assert.equal(count(types, 'ReduceSum'), 1, types.join(' '));
  });

  it('keeps a repeated node that writes a graph output', async () => {
    const types = lowered((_g, x) => ({ first: op.sum(x, [0]), second: op.sum(x, [0]) })).types;
    assert.equal(count(types, 'ReduceSum'), 2, types.join(' '));
    const r = await run({ a: f64(a) }, (t) => ({
      first: op.sum(t.a!, [0]),
      second: op.sum(t.a!, [0]),
      both: op.add(op.exp(t.a!), op.exp(t.a!)),
    }));
    const columns = [0, 1, 2, 3].map((j) => a.data[j]! + a.data[4 + j]! + a.data[8 + j]!);
    for (const name of ['first', 'second'])
      assertClose(r[name]!.data as Float64Array, columns, { rtol: 1e-12, atol: 0 }, name);
    assertClose(
      r.both!.data as Float64Array,
      a.data.map((v) => 2 * Math.exp(v)),
      { rtol: 1e-12, atol: 0 },
      'both',
    );
  });

  it('tells apart nodes that differ only in an attribute', async () => {
    const r = await run({ a: f64(a) }, (t) => op.sub(op.sum(t.a!, [0], true), op.sum(t.a!, [1], true)));
    const columns = [0, 1, 2, 3].map((j) => a.data[j]! + a.data[4 + j]! + a.data[8 + j]!);
    const rows = [0, 1, 2].map((i) => a.data.slice(4 * i, 4 * i + 4).reduce((p, q) => p + q, 0));
    const expected = rows.flatMap((row) => columns.map((column) => column - row));
    assertClose(r.y!.data as Float64Array, expected, { rtol: 1e-12, atol: 1e-12 }, 'difference');
  });
});
