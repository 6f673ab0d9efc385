/** GPTNeoX.runWithCache: text or token rows in, the named activations asked for out, one-line errors. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError, GPTNeoX } from '../../src/index.js';
import { fixtureDir } from '../support/paths.js';
import { writeTextCheckpoint } from './text-checkpoint.js';

describe('GPTNeoX.runWithCache', () => {
  const work = mkdtempSync(join(tmpdir(), 'pythia-activations-api-'));
  let model: GPTNeoX;
  before(async () => {
    await writeTextCheckpoint(join(work, 'text'), work);
    model = await GPTNeoX.fromPretrained(join(work, 'text'), { threads: 1 });
  });
  after(async () => {
    await model.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  test('texts of one token length give the names asked for, with their shapes, and the last logits', async () => {
    const { cache, logits, tokens } = await model.runWithCache(['the cat sat', 'the dog ran'], {
      names: ['blocks.*.attn.hook_pattern', 'ln_final.hook_scale'],
      logits: 'last',
    });
    const [batch, seq] = [tokens.length, tokens[0]!.length];
    const { numHeads, numLayers, vocabSize } = model.config;
    assert.deepEqual(
      [...cache.keys()],
      [...Array.from({ length: numLayers }, (_, i) => `blocks.${i}.attn.hook_pattern`), 'ln_final.hook_scale'],
    );
    assert.deepEqual(cache.get('blocks.0.attn.hook_pattern')!.dims, [batch, numHeads, seq, seq]);
    assert.deepEqual(cache.get('ln_final.hook_scale')!.dims, [batch, seq, 1]);
    assert.deepEqual(logits!.dims, [batch, vocabSize]);
    // Each pattern row is a distribution over earlier positions.
    const pattern = cache.get('blocks.1.attn.hook_pattern')!.data;
    for (let row = 0; row < batch * numHeads * seq; row++) {
      const d = row % seq;
      const lane = pattern.subarray(row * seq, (row + 1) * seq);
      assert.ok(Math.abs(lane.reduce((a, b) => a + b, 0) - 1) < 1e-5);
      assert.ok(lane.subarray(d + 1).every((p) => p === 0));
    }
  });

  test('every name by default; token rows; the logits of the last position are those of all positions', async () => {
    const rows = [
      [5, 9, 17, 3],
      [8, 2, 2, 40],
    ];
    const all = await model.runWithCache(rows, { logits: 'all' });
    assert.deepEqual([...all.cache.keys()], model.activationNames());
    const last = await model.runWithCache(rows, { names: 'hook_embed', logits: 'last' });
    const V = model.config.vocabSize;
    for (let b = 0; b < 2; b++)
      for (let v = 0; v < V; v++)
        assert.ok(Math.abs(last.logits!.data[b * V + v]! - all.logits!.data[(b * 4 + 3) * V + v]!) < 1e-5);
  });

  test('runWithHooks: zero-ablating every head of layer 0 leaves its attention output at the dense bias', async () => {
    const heads = Array.from({ length: model.config.numHeads }, (_, head) => ({ layer: 0, head }));
    const { cache, logits } = await model.runWithHooks('the cat sat on the mat', {
      ablate: heads,
      names: 'blocks.0.hook_attn_out',
    });
    const bias = model.params.get('gpt_neox.layers.0.attention.dense.bias')!;
    const out = cache.get('blocks.0.hook_attn_out')!;
    const H = model.config.hiddenSize;
    assert.ok(out.data.every((v, i) => Math.abs(v - bias[i % H]!) < 1e-6));
    assert.deepEqual(logits!.dims.slice(-1), [model.config.vocabSize]);
    const plain = await model.runWithCache('the cat sat on the mat', { names: [], logits: 'all' });
    assert.ok(
      plain.logits!.data.some((v, i) => Math.abs(v - logits!.data[i]!) > 1e-3),
      'the ablation changes the logits',
    );
  });

  test('bad requests are one-line ConfigErrors', async () => {
    const fixture = await GPTNeoX.fromPretrained(join(fixtureDir('parallel-r25'), 'model'), { threads: 1 });
    const refuse = (p: Promise<unknown>, re: RegExp) =>
      assert.rejects(p, (e: Error) => e instanceof ConfigError && re.test(e.message) && !e.message.includes('\n'));
    await refuse(model.runWithCache(['the cat', 'a dog ran far']), /text 1 is \d+ tokens and text 0 is \d+/);
    await refuse(model.runWithCache([1, 2], { names: 'blocks.*.hook_nothing' }), /matches none.*--list/);
    await refuse(fixture.runWithCache('text'), /has no tokenizer\.json/);
    await refuse(fixture.runWithCache([[1, 2], [3]]), /row 1 has 1 tokens, row 0 has 2/);
    await refuse(fixture.runWithCache([1, 999]), /outside the vocabulary/);
    await fixture.dispose();
  });
});
