import { describe, it } from 'node:test';
import * as op from '../../src/graph/ops.js';
import type { HostTensor } from '../../src/runtime/session.js';
import { assertNdClose, checkVjp, f64, i64, run } from '../support/check.js';
import { Rng } from '../support/random.js';
import * as ref from '../support/reference.js';

function i32(values: readonly number[], dims: readonly number[] = [values.length]): HostTensor {
  return { data: Int32Array.from(values), dims };
}

describe('gather and scatterAdd (rows along axis 0)', () => {
  const rng = new Rng(51);
  const ids = [3, 1, 3, 0, 3, 2]; // repeated on purpose: the embedding gradient must accumulate

  for (const [name, feed] of [
    ['int64', i64],
    ['int32', i32],
  ] as const) {
    it(`gather with ${name} indices of rank 2`, async () => {
      const table = rng.nd([5, 3]);
      const r = await run({ t: f64(table), i: feed(ids, [2, 3]) }, (x) => op.gather(x.t!, x.i!));
      assertNdClose(r.y!, ref.gather(table, ref.nd(ids, [2, 3])), {}, 'gather');
    });
  }

  it('gather along axis 1 and with negative indices', async () => {
    const table = rng.nd([2, 4, 3]);
    const r = await run({ t: f64(table), i: i64([3, -1, 0, 2], [2, 2]) }, (x) => ({
      a1: op.gather(x.t!, x.i!, 1),
      a2: op.gather(x.t!, op.sub(x.i!, 1), -1),
    }));
    assertNdClose(r.a1!, ref.gather(table, ref.nd([3, -1, 0, 2], [2, 2]), 1), {}, 'axis 1');
    assertNdClose(r.a2!, ref.gather(table, ref.nd([2, -2, -1, 1], [2, 2]), 2), {}, 'axis -1');
  });

  it('scatterAdd accumulates repeated indices', async () => {
    const data = rng.nd([4, 2]);
    const updates = rng.nd([2, 3, 2]);
    const r = await run({ d: f64(data), i: i64(ids, [2, 3]), u: f64(updates) }, (x) => op.scatterAdd(x.d!, x.i!, x.u!));
    assertNdClose(r.y!, ref.scatterAdd(data, ref.nd(ids, [6]), updates), { rtol: 1e-15 }, 'scatterAdd');
  });

  it('gather VJP: repeated rows accumulate', async () => {
    await checkVjp({ wrt: { t: rng.nd([4, 2]) }, fixed: { i: i64(ids, [2, 3]) }, build: (x) => op.gather(x.t!, x.i!) });
  });

  it('gather VJP with int32 indices', async () => {
    await checkVjp({ wrt: { t: rng.nd([4, 3]) }, fixed: { i: i32([1, 1, 0]) }, build: (x) => op.gather(x.t!, x.i!) });
  });

  it('gather VJP along inner axes, rank-2 repeated and negative indices', async () => {
    const idx = i64([2, -1, 0, 2], [2, 2]);
    await checkVjp({ wrt: { t: rng.nd([2, 3, 2]) }, fixed: { i: idx }, build: (x) => op.gather(x.t!, x.i!, 1) });
    await checkVjp({ wrt: { t: rng.nd([2, 2, 3]) }, fixed: { i: idx }, build: (x) => op.gather(x.t!, x.i!, -1) });
    await checkVjp({ wrt: { t: rng.nd([4, 2]) }, fixed: { i: i64([-1, 3, 0]) }, build: (x) => op.gather(x.t!, x.i!) });
  });

  it('scatterAdd VJP for data and updates', async () => {
    await checkVjp({
      wrt: { d: rng.nd([4, 2]), u: rng.nd([6, 2]) },
      fixed: { i: i64(ids) },
      build: (x) => op.scatterAdd(x.d!, x.i!, x.u!),
    });
  });
});

describe('gatherElements and scatterElementsAdd', () => {
  const rng = new Rng(52);
  for (const axis of [0, 1, -1]) {
    it(`forward along axis ${axis}`, async () => {
      const x = rng.nd([3, 4]);
      const a = (axis + 2) % 2;
      const idxDims = a === 0 ? [2, 4] : [3, 2];
      const n = idxDims[0]! * idxDims[1]!;
      const idx = Array.from({ length: n }, () => rng.int(0, x.dims[a]!));
      const updates = rng.nd(idxDims);
      const r = await run({ x: f64(x), i: i64(idx, idxDims), u: f64(updates) }, (t) => ({
        g: op.gatherElements(t.x!, t.i!, axis),
        s: op.scatterElementsAdd(t.x!, t.i!, t.u!, axis),
      }));
      const idxNd = ref.nd(idx, idxDims);
      assertNdClose(r.g!, ref.gatherElements(x, idxNd, a), {}, 'gatherElements');
      assertNdClose(r.s!, ref.scatterElementsAdd(x, idxNd, updates, a), { rtol: 1e-15 }, 'scatterElementsAdd');
    });
  }

  it('VJPs with repeated indices', async () => {
    const idx = i64([2, 2, 0, 1, 1, 1], [3, 2]);
    await checkVjp({ wrt: { x: rng.nd([3, 3]) }, fixed: { i: idx }, build: (t) => op.gatherElements(t.x!, t.i!, 1) });
    await checkVjp({
      wrt: { d: rng.nd([3, 3]), u: rng.nd([3, 2]) },
      fixed: { i: idx },
      build: (t) => op.scatterElementsAdd(t.d!, t.i!, t.u!, 1),
    });
  });
});
