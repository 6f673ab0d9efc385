/**
 * klDivergence(logits, target): Σ_v e^target (target − log_softmax(logits)) along the last axis,
 * against a float64 reference from the definition, with the target shared across a leading axis;
 * its gradients against central differences; KL of a distribution from itself is 0.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Graph } from '../../src/graph/graph.js';
import * as op from '../../src/graph/ops.js';
import { GraphError } from '../../src/graph/shape.js';
import { assertNdClose, checkVjp, f64, run } from '../support/check.js';
import { Rng } from '../support/random.js';
import { logSoftmax, nd } from '../support/reference.js';

describe('klDivergence', () => {
  const rng = new Rng(41);
  const logits = rng.nd([2, 3, 5], 0.2, 2);
  const target = logSoftmax(rng.nd([3, 5], 0.1, 3));

  it('equals Σ e^t (t − log_softmax(z)) per row, one target shared by a leading axis', async () => {
    const r = await run({ z: f64(logits), t: f64(target) }, (x) => op.klDivergence(x.z!, x.t!));
    const q = logSoftmax(logits).data;
    const expected = new Float64Array(6);
    for (let row = 0; row < 6; row++)
      for (let v = 0; v < 5; v++) {
        const t = target.data[(row % 3) * 5 + v]!;
        expected[row]! += Math.exp(t) * (t - q[row * 5 + v]!);
      }
    assertNdClose(r.y!, nd(expected, [2, 3]), { rtol: 1e-13, atol: 1e-15 }, 'kl');
  });

  it('is 0 for a distribution against itself', async () => {
    const z = rng.nd([4, 7], 0.1, 4);
    const r = await run({ z: f64(z), t: f64(logSoftmax(z)) }, (x) => op.klDivergence(x.z!, x.t!));
    for (const v of r.y!.data as Float64Array) assert.ok(Math.abs(v) < 1e-15, `${v}`);
  });

  it('VJP with respect to the logits and the shared target', async () => {
    await checkVjp({ wrt: { z: logits, t: target }, build: (x) => op.klDivergence(x.z!, x.t!) });
  });

  it('refuses a target that would grow the logits', () => {
    const g = new Graph();
    assert.throws(
      () => op.klDivergence(g.input('z', 'float64', [3, 5]), g.input('t', 'float64', [2, 3, 5])),
      GraphError,
    );
  });
});
