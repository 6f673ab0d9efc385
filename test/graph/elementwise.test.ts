import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Graph, type Tensor } from '../../src/graph/graph.js';
import * as op from '../../src/graph/ops.js';
import { assertClose, assertNdClose, checkVjp, f32, f64, run, toNumbers } from '../support/check.js';
import { Rng } from '../support/random.js';
import * as ref from '../support/reference.js';

type Operand = Tensor | number;

const BINARY: Record<string, [(a: Operand, b: Operand) => Tensor, (a: number, b: number) => number]> = {
  add: [op.add, (a, b) => a + b],
  sub: [op.sub, (a, b) => a - b],
  mul: [op.mul, (a, b) => a * b],
  div: [op.div, (a, b) => a / b],
  pow: [op.pow, (a, b) => a ** b],
};

/** Shape pairs covering same shapes, trailing-axis broadcast, both sides broadcasting, and rank 0. */
const BROADCASTS: [number[], number[]][] = [
  [
    [2, 3],
    [2, 3],
  ],
  [[2, 3], [3]],
  [
    [4, 1, 3],
    [2, 1],
  ],
  [[], [2, 2]],
  [
    [3, 1],
    [1, 4],
  ],
];

const UNARY: Record<string, [(x: Tensor) => Tensor, (x: number) => number, boolean]> = {
  // name: [builder, reference, needs positive input]
  neg: [op.neg, (x) => -x, false],
  exp: [op.exp, Math.exp, false],
  log: [op.log, Math.log, true],
  sqrt: [op.sqrt, Math.sqrt, true],
  tanh: [op.tanh, Math.tanh, false],
  erf: [op.erf, ref.erf, false],
  cos: [op.cos, Math.cos, false],
  sin: [op.sin, Math.sin, false],
};

describe('elementwise forward (float64, against the reference)', () => {
  const rng = new Rng(11);
  for (const [name, [build, f]] of Object.entries(BINARY)) {
    for (const [da, db] of BROADCASTS) {
      it(`${name} ${JSON.stringify(da)} ${JSON.stringify(db)}`, async () => {
        const a = rng.nd(da, 0.3, 1.5, name === 'pow');
        const b = rng.nd(db);
        const r = await run({ a: f64(a), b: f64(b) }, (x) => build(x.a!, x.b!));
        assertNdClose(r.y!, ref.zip([a, b], f), { rtol: 1e-14, atol: 1e-15 }, name);
      });
    }
  }

  it('scalar operands take the tensor dtype on either side', async () => {
    const a = rng.nd([2, 3]);
    const r = await run({ a: f64(a) }, (x) => ({
      s: op.sub(1.25, x.a!),
      d: op.div(x.a!, 4),
      p: op.pow(op.mul(x.a!, x.a!), 0.5),
    }));
    assertNdClose(
      r.s!,
      ref.map(a, (v) => 1.25 - v),
      {},
      'sub',
    );
    assertNdClose(
      r.d!,
      ref.map(a, (v) => v / 4),
      {},
      'div',
    );
    assertNdClose(r.p!, ref.map(a, Math.abs), { rtol: 1e-14 }, 'pow');
  });

  for (const [name, [build, f, positive]] of Object.entries(UNARY)) {
    it(name, async () => {
      const x = rng.nd([3, 5], positive ? 0.1 : 0.05, positive ? 4 : 3.5, positive);
      const r = await run({ x: f64(x) }, (t) => build(t.x!));
      assertNdClose(r.y!, ref.map(x, f), { rtol: 2e-14, atol: 2e-15 }, name);
    });
  }

  it('erf over its whole range (the float64 series decomposition)', async () => {
    const x = ref.nd(
      Array.from({ length: 161 }, (_, i) => -8 + i * 0.1),
      [161],
    );
    const r = await run({ x: f64(x) }, (t) => op.erf(t.x!));
    assertNdClose(r.y!, ref.map(x, ref.erf), { rtol: 1e-14, atol: 2e-15 }, 'erf');
  });

  it('less, greater, equal give bool with broadcasting', async () => {
    const a = ref.nd([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = ref.nd([2, 2, 6], [3]);
    const r = await run({ a: f64(a), b: f64(b) }, (x) => ({
      lt: op.less(x.a!, x.b!),
      gt: op.greater(x.a!, x.b!),
      eq: op.equal(x.a!, x.b!),
    }));
    assert.deepEqual(toNumbers(r.lt!.data), [1, 0, 1, 0, 0, 0]);
    assert.deepEqual(toNumbers(r.gt!.data), [0, 0, 0, 1, 1, 0]);
    assert.deepEqual(toNumbers(r.eq!.data), [0, 1, 0, 0, 0, 1]);
    assert.deepEqual([...r.lt!.dims], [2, 3]);
  });

  it('where picks by a broadcast condition, with a scalar branch', async () => {
    const cond = { data: Uint8Array.from([1, 0, 1]), dims: [3] };
    const a = rng.nd([2, 3]);
    const r = await run({ c: cond, a: f64(a) }, (x) => op.where(x.c!, x.a!, -7));
    assertClose(toNumbers(r.y!.data), ref.zip([ref.nd([1, 0, 1], [3]), a], (c, v) => (c ? v : -7)).data, {}, 'where');
  });
});

describe('cast', () => {
  it('float64 → float32 rounds to nearest float32', async () => {
    const x = ref.nd([0.1, -1 / 3, 1e10 + 1], [3]);
    const r = await run({ x: f64(x) }, (t) => op.cast(t.x!, 'float32'));
    assert.ok(r.y!.data instanceof Float32Array);
    assert.deepEqual(Array.from(r.y!.data as Float32Array), [
      Math.fround(0.1),
      Math.fround(-1 / 3),
      Math.fround(1e10 + 1),
    ]);
  });

  it('int64 and bool → float64, float64 → int64 truncates toward zero', async () => {
    const r = await run(
      {
        i: { data: BigInt64Array.from([-3n, 0n, 9007199254740991n]), dims: [3] },
        b: { data: Uint8Array.from([1, 0]), dims: [2] },
        x: f64(ref.nd([2.7, -2.7], [2])),
      },
      (t) => ({ fi: op.cast(t.i!, 'float64'), fb: op.cast(t.b!, 'float64'), ix: op.cast(t.x!, 'int64') }),
    );
    assert.deepEqual(Array.from(r.fi!.data as Float64Array), [-3, 0, 9007199254740991]);
    assert.deepEqual(Array.from(r.fb!.data as Float64Array), [1, 0]);
    assert.deepEqual(Array.from(r.ix!.data as BigInt64Array), [2n, -2n]);
  });

  it('float16 weights widen to float32 exactly', async () => {
    // IEEE half bit patterns: 0x3c00 = 1, 0xc000 = −2, 0x3555 = 0.333251953125, 0x7bff = 65504.
    const h = { data: Uint16Array.from([0x3c00, 0xc000, 0x3555, 0x7bff]), dims: [4] };
    const r = await run({ h }, (t) => op.cast(t.h!, 'float32'));
    assert.deepEqual(Array.from(r.y!.data as Float32Array), [1, -2, 0.333251953125, 65504]);
  });

  it('casting to the same dtype returns the tensor itself', () => {
    const x = new Graph().input('x', 'float64', [2]);
    assert.equal(op.cast(x, 'float64'), x);
  });
});

describe('float32 against float64', () => {
  const rng = new Rng(12);
  for (const name of ['exp', 'tanh', 'erf', 'sqrt'] as const) {
    it(name, async () => {
      const x = rng.nd([4, 6], 0.05, 3, name === 'sqrt');
      const [build] = UNARY[name]!;
      const r = await run({ x: f32(x) }, (t) => build(t.x!));
      assertNdClose(r.y!, ref.map(x, UNARY[name]![1]), { rtol: 1e-6, atol: 1e-7 }, name);
    });
  }
});

describe('elementwise VJPs (float64, central differences)', () => {
  const rng = new Rng(13);
  for (const [name, [build]] of Object.entries(BINARY)) {
    for (const [da, db] of BROADCASTS.slice(1)) {
      it(`${name} ${JSON.stringify(da)} ${JSON.stringify(db)}`, async () => {
        await checkVjp({
          wrt: { a: rng.nd(da, 0.4, 1.5, name === 'pow'), b: rng.nd(db, 0.4, 1.5) },
          build: (x) => build(x.a!, x.b!),
        });
      });
    }
  }

  it('binary ops with a scalar constant on either side', async () => {
    await checkVjp({
      wrt: { a: rng.nd([2, 3], 0.4, 1.5, true) },
      build: (x) => op.add(op.div(2, x.a!), op.mul(op.pow(x.a!, 1.5), op.sub(3, x.a!))),
    });
  });

  for (const [name, [build, , positive]] of Object.entries(UNARY)) {
    it(name, async () => {
      await checkVjp({ wrt: { x: rng.nd([2, 4], positive ? 0.2 : 0.1, 2, positive) }, build: (t) => build(t.x!) });
    });
  }

  it('a tensor used twice accumulates both gradients', async () => {
    await checkVjp({ wrt: { x: rng.nd([3, 2]) }, build: (t) => op.mul(op.exp(t.x!), op.tanh(t.x!)) });
  });

  it('where, with the condition from a comparison of the differentiated inputs', async () => {
    await checkVjp({
      wrt: { a: rng.nd([2, 3]), b: rng.nd([3]) },
      build: (x) => op.where(op.greater(x.a!, x.b!), op.mul(x.a!, 2), op.exp(x.b!)),
    });
  });

  it('where with a fixed broadcast mask and a scalar branch', async () => {
    await checkVjp({
      wrt: { a: rng.nd([1, 3]) },
      fixed: { m: { data: Uint8Array.from([1, 0, 0, 1, 1, 0]), dims: [2, 3] } },
      build: (x) => op.where(x.m!, x.a!, -5),
    });
  });

  it('cast to float32 and back passes the gradient through', async () => {
    // float32 in the middle: a wide step keeps rounding (~6e-8·|x|) small against it.
    await checkVjp({
      wrt: { x: rng.nd([5]) },
      build: (t) => op.mul(op.cast(op.cast(t.x!, 'float32'), 'float64'), 3),
      step: 1e-2,
      tol: { rtol: 1e-4, atol: 1e-4 },
    });
  });
});
