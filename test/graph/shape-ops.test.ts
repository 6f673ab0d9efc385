import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { grad } from '../../src/graph/grad.js';
import { Graph } from '../../src/graph/graph.js';
import * as op from '../../src/graph/ops.js';
import { compile } from '../../src/runtime/session.js';
import { assertClose, assertNdClose, checkVjp, f64, run, toNumbers } from '../support/check.js';
import { Rng } from '../support/random.js';
import * as ref from '../support/reference.js';

describe('reshape', () => {
  const rng = new Rng(41);
  it('keeps row-major order', async () => {
    const x = rng.nd([2, 3, 4]);
    const r = await run({ x: f64(x) }, (t) => ({ a: op.reshape(t.x!, [6, 4]), b: op.reshape(t.x!, [4, 2, 3]) }));
    assertNdClose(r.a!, ref.nd(x.data, [6, 4]), {}, 'a');
    assertNdClose(r.b!, ref.nd(x.data, [4, 2, 3]), {}, 'b');
  });

  it('VJP', async () => {
    await checkVjp({ wrt: { x: rng.nd([2, 3, 2]) }, build: (t) => op.exp(op.reshape(t.x!, [3, 4])) });
  });

  it('symbolic dims: one compiled graph serves several batch sizes, forward and backward', async () => {
    const g = new Graph();
    const x = g.input('x', 'float64', ['batch', 'seq', 4]);
    const w = g.input('w', 'float64', [2]);
    const flat = op.reshape(x, ['tokens', 2, 2]); // 'tokens' is inferred
    const y = op.mul(flat, w);
    const back = op.reshapeLike(y, x);
    const loss = op.sum(op.mul(back, back));
    const [gx, gw] = grad(loss, [x, w]);
    const compiled = await compile({ graph: g, outputs: { back, gx: gx!, gw: gw! } });
    const wv = ref.nd([0.5, -2], [2]);
    for (const dims of [
      [1, 3, 4],
      [2, 5, 4],
    ]) {
      const xv = rng.nd(dims);
      const r = await compiled.run({ x: f64(xv), w: f64(wv) });
      const expected = ref.zip([ref.nd(xv.data, [xv.data.length / 2, 2]), wv], (a, b) => a * b);
      assertNdClose(r.back!, ref.nd(expected.data, dims), {}, `back ${dims}`);
      // d/dx Σ(x·w)² = 2·x·w², d/dw = Σ 2·(x·w)·x over the rows.
      assertClose(
        toNumbers(r.gx!.data),
        xv.data.map((v, i) => 2 * v * wv.data[i % 2]! ** 2),
        {},
        'gx',
      );
      const gw = [0, 1].map((j) => xv.data.reduce((s, v, i) => (i % 2 === j ? s + 2 * v * v * wv.data[j]! : s), 0));
      assertClose(toNumbers(r.gw!.data), gw, {}, 'gw');
    }
  });
});

describe('transpose, slice, pad, concat, broadcastLike', () => {
  const rng = new Rng(42);
  it('transpose forward and VJP', async () => {
    const x = rng.nd([2, 3, 4]);
    const r = await run({ x: f64(x) }, (t) => op.transpose(t.x!, [2, 0, 1]));
    assertNdClose(r.y!, ref.transpose(x, [2, 0, 1]), {}, 'transpose');
    await checkVjp({ wrt: { x: rng.nd([2, 3, 2]) }, build: (t) => op.transpose(t.x!, [1, 2, 0]) });
  });

  it('slice forward (negative axis) and VJP', async () => {
    const x = rng.nd([3, 5]);
    const r = await run({ x: f64(x) }, (t) => ({ a: op.slice(t.x!, -1, 1, 4), b: op.slice(t.x!, 0, 2, 3) }));
    assertNdClose(r.a!, ref.slice(x, 1, 1, 4), {}, 'a');
    assertNdClose(r.b!, ref.slice(x, 0, 2, 3), {}, 'b');
    await checkVjp({ wrt: { x: rng.nd([3, 4]) }, build: (t) => op.slice(t.x!, 1, 1, 3) });
  });

  it('pad forward and VJP', async () => {
    const x = rng.nd([2, 3]);
    const r = await run({ x: f64(x) }, (t) => ({ a: op.pad(t.x!, 1, 2, 1), b: op.pad(t.x!, 0, 0, 2) }));
    assertNdClose(r.a!, ref.pad(x, 1, 2, 1), {}, 'a');
    assertNdClose(r.b!, ref.pad(x, 0, 0, 2), {}, 'b');
    await checkVjp({ wrt: { x: rng.nd([2, 3]) }, build: (t) => op.pad(t.x!, 0, 1, 2) });
  });

  it('concat forward and VJP', async () => {
    const [a, b, c] = [rng.nd([2, 1, 3]), rng.nd([2, 4, 3]), rng.nd([2, 2, 3])];
    const r = await run({ a: f64(a), b: f64(b), c: f64(c) }, (t) => op.concat([t.a!, t.b!, t.c!], 1));
    assertNdClose(r.y!, ref.concat([a, b, c], 1), {}, 'concat');
    await checkVjp({
      wrt: { a: rng.nd([2, 2]), b: rng.nd([1, 2]) },
      build: (t) => op.mul(op.concat([t.a!, t.b!, t.a!], 0), op.concat([t.b!, t.a!, t.a!], 0)),
    });
  });

  it('concat keeps symbolic dims on the other axes', async () => {
    const g = new Graph();
    const a = g.input('a', 'float64', ['batch', 2]);
    const b = g.input('b', 'float64', ['batch', 1]);
    const y = op.concat([a, b], -1);
    assert.deepEqual(y.shape, ['batch', 3]);
    const compiled = await compile({ graph: g, outputs: { y } });
    const r = await compiled.run({ a: f64(ref.nd([1, 2, 3, 4], [2, 2])), b: f64(ref.nd([9, 8], [2, 1])) });
    assert.deepEqual(toNumbers(r.y!.data), [1, 2, 9, 3, 4, 8]);
  });

  it('broadcastLike forward and VJP (sums back to the input shape)', async () => {
    const x = rng.nd([2, 1]);
    const like = rng.nd([3, 2, 4]);
    const r = await run({ x: f64(x), l: f64(like) }, (t) => op.broadcastLike(t.x!, t.l!));
    assertNdClose(
      r.y!,
      ref.zip([x, like], (v) => v),
      {},
      'broadcastLike',
    );
    await checkVjp({
      wrt: { x: rng.nd([3]) },
      fixed: { l: f64(rng.nd([2, 2, 3])) },
      build: (t) => op.broadcastLike(t.x!, t.l!),
    });
  });
});

describe('constants', () => {
  it('scalar, constantOf, initializer, zerosLike', async () => {
    const r = await run({ x: f64(ref.nd([1, 2, 3, 4, 5, 6], [2, 3])) }, (t, g) => {
      const table = g.initializer('table', Float64Array.from([10, 20, 30]), [3]);
      const ids = op.constantOf(g, BigInt64Array.from([2n, 0n]), [2]);
      return {
        s: op.add(t.x!, op.scalar(g, 0.5, 'float64')),
        z: op.add(t.x!, op.zerosLike(t.x!)),
        picked: op.gather(table, ids),
        i: op.scalar(g, 7, 'int64'),
      };
    });
    assert.deepEqual(toNumbers(r.s!.data), [1.5, 2.5, 3.5, 4.5, 5.5, 6.5]);
    assert.deepEqual(toNumbers(r.z!.data), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(toNumbers(r.picked!.data), [30, 10]);
    assert.deepEqual([...r.i!.dims], []);
    assert.deepEqual(Array.from(r.i!.data as BigInt64Array), [7n]);
  });

  it('a tensor that the output does not depend on gets a zero gradient', async () => {
    const g = new Graph();
    const x = g.input('x', 'float64', [2]);
    const unused = g.input('u', 'float64', [3]);
    const [gx, gu] = grad(op.sum(op.mul(x, x)), [x, unused]);
    const r = await (await compile({ graph: g, outputs: { gx: gx!, gu: gu! } })).run({
      x: f64(ref.nd([1, -2], [2])),
      u: f64(ref.nd([1, 2, 3], [3])),
    });
    assert.deepEqual(toNumbers(r.gx!.data), [2, -4]);
    assert.deepEqual(toNumbers(r.gu!.data), [0, 0, 0]);
  });
});
