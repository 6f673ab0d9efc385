/**
 * Activation patching grids (TransformerLens's get_act_patch_resid_pre and
 * get_act_patch_attn_head_out_all_pos) on fixture parallel-r25: known answers when the corrupted
 * input differs from the clean one at one position, and cells against the same patch done by hand
 * in the float64 reference, whatever the batch size.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ActivationRunner } from '../../src/model/activations.js';
import { patchingGrid } from '../../src/model/patching.js';
import { ConfigError } from '../../src/util/errors.js';
import { fixtureModel } from '../support/activations.js';
import { type Nd, referenceGptNeoX } from '../support/reference.js';

describe('activation patching grids, fixture parallel-r25', () => {
  const m = fixtureModel('parallel-r25');
  const runner = new ActivationRunner(m.config, m.params, { threads: 1 });
  after(() => runner.release());
  const clean = m.rows[0]!.slice(0, 10);
  const k = 6;
  const corrupt = clean.map((id, t) => (t === k ? (id + 1) % m.config.vocabSize : id));
  const [answer, wrong] = [17, 42];
  const V = m.config.vocabSize;
  const lastDiff = (logits: Nd): number => logits.data[9 * V + answer]! - logits.data[9 * V + wrong]!;
  const cleanRef = referenceGptNeoX(m.config, m.params, [clean]);
  const corruptRef = lastDiff(referenceGptNeoX(m.config, m.params, [corrupt]).logits);
  const normalise = (d: number): number => (d - corruptRef) / (lastDiff(cleanRef.logits) - corruptRef);

  test('resid_pre: 1 where the inputs differ at layer 0, 0 before that position, the reference elsewhere', async () => {
    const { grid, cleanLogitDiff, corruptLogitDiff } = await patchingGrid(
      runner,
      clean,
      corrupt,
      answer,
      wrong,
      'resid_pre',
      {
        batchSize: 7,
      },
    );
    assert.equal(grid.length, m.config.numLayers);
    assert.ok(Math.abs(cleanLogitDiff - lastDiff(cleanRef.logits)) < 1e-4);
    assert.ok(Math.abs(corruptLogitDiff - corruptRef) < 1e-4);
    for (let l = 0; l < m.config.numLayers; l++) {
      assert.equal(grid[l]!.length, 10);
      for (let p = 0; p < k; p++) assert.ok(Math.abs(grid[l]![p]!) < 1e-5, `[${l}, ${p}] = ${grid[l]![p]}`);
    }
    assert.ok(Math.abs(grid[0]![k]! - 1) < 1e-5, `[0, ${k}] = ${grid[0]![k]}`);
    for (const p of [7, 9]) assert.ok(Math.abs(grid[0]![p]!) < 1e-5);
    for (const [l, p] of [
      [1, k],
      [1, 9],
    ] as const) {
      const source = cleanRef.activations.get(`blocks.${l}.hook_resid_pre`)!;
      const H = m.config.hiddenSize;
      const patched = referenceGptNeoX(m.config, m.params, [corrupt], (name, x) => {
        if (name !== `blocks.${l}.hook_resid_pre`) return undefined;
        const data = Float64Array.from(x.data);
        data.set(source.data.subarray(p * H, (p + 1) * H), p * H);
        return { data, dims: x.dims };
      });
      const expected = normalise(lastDiff(patched.logits));
      assert.ok(Math.abs(grid[l]![p]! - expected) < 1e-4, `[${l}, ${p}]: ${grid[l]![p]} vs ${expected}`);
    }
  });

  test('head_out: each cell the reference with that head’s z from the clean run; batch size does not matter', async () => {
    const one = await patchingGrid(runner, clean, corrupt, answer, wrong, 'head_out', { batchSize: 1 });
    const all = await patchingGrid(runner, clean, corrupt, answer, wrong, 'head_out');
    const nh = m.config.numHeads;
    const hd = m.config.hiddenSize / nh;
    for (let l = 0; l < m.config.numLayers; l++)
      for (let h = 0; h < nh; h++) {
        assert.ok(Math.abs(one.grid[l]![h]! - all.grid[l]![h]!) < 1e-5);
        const source = cleanRef.activations.get(`blocks.${l}.attn.hook_z`)!;
        const patched = referenceGptNeoX(m.config, m.params, [corrupt], (name, x) => {
          if (name !== `blocks.${l}.attn.hook_z`) return undefined;
          const data = Float64Array.from(x.data);
          for (let t = 0; t < 10; t++)
            data.set(source.data.subarray((t * nh + h) * hd, (t * nh + h + 1) * hd), (t * nh + h) * hd);
          return { data, dims: x.dims };
        });
        const expected = normalise(lastDiff(patched.logits));
        assert.ok(Math.abs(all.grid[l]![h]! - expected) < 1e-4, `[${l}, ${h}]: ${all.grid[l]![h]} vs ${expected}`);
      }
  });

  test('inputs of different lengths, answers outside the vocabulary and identical inputs are refused in one line', async () => {
    const refuse = (p: Promise<unknown>, re: RegExp) =>
      assert.rejects(p, (e: Error) => e instanceof ConfigError && re.test(e.message));
    await refuse(
      patchingGrid(runner, clean, corrupt.slice(1), answer, wrong, 'resid_pre'),
      /10 tokens and the corrupted one 9/,
    );
    await refuse(patchingGrid(runner, clean, corrupt, V, wrong, 'resid_pre'), /answer token 211 is outside/);
    await refuse(patchingGrid(runner, clean, clean, answer, wrong, 'resid_pre'), /same logit difference/);
  });
});
