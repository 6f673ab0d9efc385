/** Checks the float64 reference itself against known answers, so the other tests rest on truth. */
import { describe, it } from 'node:test';
import { assertClose } from '../support/check.js';
import * as ref from '../support/reference.js';

describe('reference library', () => {
  it('erf matches Python math.erf', () => {
    // [x, math.erf(x)] printed by Python 3 (repr) on this machine.
    const golden: [number, number][] = [
      [-6, -1.0],
      [-4.5, -0.9999999998033839],
      [-3.2, -0.9999939742388483],
      [-2.6, -0.9997639655834707],
      [-2.4, -0.999311486103355],
      [-1.3, -0.9340079449406524],
      [-0.7, -0.6778011938374184],
      [-0.1, -0.1124629160182849],
      [0.05, 0.05637197779701663],
      [0.3, 0.3286267594591274],
      [0.9, 0.7969082124228322],
      [1.7, 0.9837904585907745],
      [2.49, 0.9995707121322661],
      [2.51, 0.9996142945182758],
      [3.3, 0.9999969422902035],
      [4.2, 0.9999999971445058],
      [5.5, 0.9999999999999927],
    ];
    assertClose(
      golden.map(([x]) => ref.erf(x)),
      golden.map(([, y]) => y),
      { rtol: 2e-15, atol: 1e-16 },
      'erf',
    );
  });

  it('matmul, transpose and softmax match numpy', () => {
    // Golden values from numpy 1.x:
    //   a = np.arange(6.).reshape(2,3) / 4; b = np.arange(12.).reshape(3,4) - 5.5
    //   (a @ b).ravel(); e = np.exp(a); (e / e.sum(-1, keepdims=True)).ravel()
    const a = ref.nd([0, 0.25, 0.5, 0.75, 1, 1.25], [2, 3]);
    const b = ref.nd(
      Array.from({ length: 12 }, (_, i) => i - 5.5),
      [3, 4],
    );
    assertClose(ref.matmul(a, b).data, [0.875, 1.625, 2.375, 3.125, -2.5, 0.5, 3.5, 6.5], {}, 'matmul');
    const viaTransposes = ref.matmul(ref.transpose(b, [1, 0]), ref.transpose(a, [1, 0]), { alpha: 2 });
    assertClose(viaTransposes.data, ref.transpose(ref.matmul(a, b, { alpha: 2 }), [1, 0]).data, {}, '(ab)ᵀ = bᵀaᵀ');
    const softmax = [
      0.25427521259046565, 0.32649583579983665, 0.4192289516096977, 0.25427521259046565, 0.32649583579983665,
      0.41922895160969775,
    ];
    assertClose(ref.softmax(a).data, softmax, { rtol: 1e-15 }, 'softmax');
  });
});
