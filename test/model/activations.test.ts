/**
 * Named activations (TransformerLens's hook points) against a float64 GPT-NeoX written from the
 * definitions (test/support/reference.ts), on the HF fixtures with a parallel and a sequential
 * residual; hook_resid_pre against HF's own hidden_states; Σ over heads of hook_result + the dense
 * bias against hook_attn_out; which names exist, globs, one-line errors, one graph per name set.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ActivationRunner } from '../../src/model/activations.js';
import { activationNames, activationShape, resolveActivationNames } from '../../src/model/hooks.js';
import { ConfigError } from '../../src/util/errors.js';
import { assertActivationClose, fixtureModel } from '../support/activations.js';
import { referenceGptNeoX } from '../support/reference.js';

for (const fixture of ['parallel-r25', 'sequential-r100']) {
  describe(`named activations, fixture ${fixture}`, () => {
    const m = fixtureModel(fixture);
    const batch = m.rows.length;
    const seq = m.rows[0]!.length;
    const runner = new ActivationRunner(m.config, m.params, { threads: 1 });
    after(() => runner.release());
    const reference = referenceGptNeoX(m.config, m.params, m.rows);
    const all = activationNames(m.config);

    test('every name, through the decomposed attention, equals the float64 reference', async () => {
      const { cache, logits } = await runner.run(m.ids, batch, { names: all, logits: 'all' });
      assert.deepEqual([...cache.keys()], all);
      for (const name of all) {
        const got = cache.get(name)!;
        assert.deepEqual(got.dims, activationShape(m.config, name, batch, seq), `${name}: shape`);
        assertActivationClose(got, reference.activations.get(name)!, name);
      }
      assertActivationClose(logits!, reference.logits, 'logits');
    });

    test('every name the fused attention materialises equals the float64 reference', async () => {
      const names = all.filter((n) => !/hook_(attn_scores|pattern)$/.test(n));
      const { cache } = await runner.run(m.ids, batch, { names });
      for (const name of names) assertActivationClose(cache.get(name)!, reference.activations.get(name)!, name);
    });

    test("hook_resid_pre equals HF's hidden_states[0..L-1]", async () => {
      const { cache } = await runner.run(m.ids, batch, { names: ['blocks.*.hook_resid_pre'] });
      assert.equal(cache.size, m.config.numLayers);
      for (let i = 0; i < m.config.numLayers; i++) {
        const ours = cache.get(`blocks.${i}.hook_resid_pre`)!;
        const hf = m.hiddenStates[i]!;
        let diff = 0;
        for (let k = 0; k < hf.length; k++) diff = Math.max(diff, Math.abs(ours.data[k]! - hf[k]!));
        assert.ok(diff <= 1e-4, `blocks.${i}.hook_resid_pre vs hidden_states.${i}: max |Δ| ${diff}`);
      }
    });

    test('Σ over heads of hook_result + the dense bias = hook_attn_out', async () => {
      const { cache } = await runner.run(m.ids, batch, {
        names: ['blocks.*.attn.hook_result', 'blocks.*.hook_attn_out'],
      });
      const H = m.config.hiddenSize;
      const nh = m.config.numHeads;
      for (let i = 0; i < m.config.numLayers; i++) {
        const result = cache.get(`blocks.${i}.attn.hook_result`)!.data;
        const out = cache.get(`blocks.${i}.hook_attn_out`)!.data;
        const bias = m.params.get(`gpt_neox.layers.${i}.attention.dense.bias`)!;
        let diff = 0;
        for (let bt = 0; bt < batch * seq; bt++)
          for (let o = 0; o < H; o++) {
            let sum = bias[o]!;
            for (let h = 0; h < nh; h++) sum += result[(bt * nh + h) * H + o]!;
            diff = Math.max(diff, Math.abs(sum - out[bt * H + o]!));
          }
        assert.ok(diff <= 1e-5, `layer ${i}: max |Σ result + b − attn_out| ${diff}`);
      }
    });

    test('only the names asked for come back, for any batch and length, from one compiled graph', async () => {
      const names = resolveActivationNames(m.config, ['blocks.*.attn.hook_pattern', 'hook_embed']);
      const first = await runner.run(m.ids, batch, { names });
      assert.deepEqual([...first.cache.keys()], names);
      assert.equal(first.logits, undefined);
      const compiled = runner.compiledGraphs;
      const short = BigInt64Array.from(m.ids.subarray(0, 5));
      const again = await runner.run(short, 1, { names: [...names].reverse() });
      assert.equal(runner.compiledGraphs, compiled);
      const pattern = again.cache.get('blocks.0.attn.hook_pattern')!;
      assert.deepEqual(pattern.dims, [1, m.config.numHeads, 5, 5]);
      // A prefix sees what the full row saw at the same positions (causal attention).
      const full = first.cache.get('blocks.0.attn.hook_pattern')!;
      for (let d = 0; d < 5; d++)
        for (let s = 0; s < 5; s++)
          assert.ok(Math.abs(pattern.data[d * 5 + s]! - full.data[d * seq + s]!) < 1e-6, `pattern[0, 0, ${d}, ${s}]`);
    });
  });
}

describe('activation names', () => {
  const parallel = fixtureModel('parallel-r25').config;
  const sequential = fixtureModel('sequential-r100').config;

  test("TransformerLens's names; hook_resid_mid only with a sequential residual", () => {
    const names = activationNames(parallel);
    assert.equal(names[0], 'hook_embed');
    assert.deepEqual(names.slice(-2), ['ln_final.hook_scale', 'ln_final.hook_normalized']);
    assert.ok(names.includes('blocks.1.attn.hook_rot_k'));
    assert.ok(!names.some((n) => n.endsWith('hook_resid_mid')));
    assert.equal(names.length, 1 + 19 * parallel.numLayers + 2);
    assert.equal(activationNames(sequential).filter((n) => n.endsWith('hook_resid_mid')).length, sequential.numLayers);
  });

  test('globs pick names in forward order; one that matches nothing is one line that says how to list them', () => {
    assert.deepEqual(resolveActivationNames(parallel, ['blocks.*.hook_resid_post', 'hook_embed']), [
      'hook_embed',
      'blocks.0.hook_resid_post',
      'blocks.1.hook_resid_post',
    ]);
    assert.equal(resolveActivationNames(parallel, ['blocks.0.*']).length, 19);
    assert.throws(
      () => resolveActivationNames(parallel, ['blocks.0.attn.hook_patern']),
      (e: Error) => e instanceof ConfigError && /hook_patern.*--list/.test(e.message) && !e.message.includes('\n'),
    );
    assert.throws(() => resolveActivationNames(parallel, ['blocks.0.hook_resid_mid']), /parallel residual/);
    assert.throws(() => resolveActivationNames(parallel, ['blocks.9.*']), ConfigError);
  });
});
