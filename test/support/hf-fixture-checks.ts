/**
 * The model against Hugging Face transformers' own outputs (test/fixtures/hf-gptneox, made by
 * GPTNeoXForCausalLM in float32), on any execution provider. Tolerances are the fixture README's.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openSafetensors } from '../../src/formats/index.js';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import { Decoder } from '../../src/model/decoder.js';
import { forward } from '../../src/model/forward.js';
import { generate } from '../../src/model/generate.js';
import type { RuntimeOptions } from '../../src/runtime/session.js';
import { relativeL2 } from './check.js';
import { fixtureDir } from './paths.js';

export const FIXTURE_CASES = ['parallel-r25', 'sequential-r100', 'fp16-long'];

function maxAbsDiff(actual: Float32Array, expected: Float32Array): { diff: number; scale: number } {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return { diff, scale };
}

/** Logits, hidden states, loss and every gradient. */
export async function checkForwardFixture(name: string, runtime: RuntimeOptions = {}): Promise<void> {
  const dir = fixtureDir(name);
  const checkpoint = loadCheckpoint(join(dir, 'model'));
  const expected = openSafetensors(join(dir, 'expected.safetensors'));
  const ids = expected.readRaw('input_ids');
  const idData = new BigInt64Array(ids.data.buffer, ids.data.byteOffset, ids.data.byteLength / 8);
  const [batch, seq] = ids.shape as [number, number];
  const r = await forward(
    checkpoint.config,
    checkpoint.params,
    idData,
    batch,
    { hiddenStates: true, loss: true, grads: true },
    runtime,
  );
  const logits = maxAbsDiff(r.logits!, expected.readFloat32('logits'));
  assert.ok(logits.diff <= 1e-4 * logits.scale, `logits max |Δ| ${logits.diff} vs scale ${logits.scale}`);
  assert.equal(r.hiddenStates!.length, checkpoint.config.numLayers + 1);
  r.hiddenStates!.forEach((h, i) => {
    const e = expected.readFloat32(`hidden_states.${i}`);
    assert.equal(h.length, batch * seq * checkpoint.config.hiddenSize);
    const d = maxAbsDiff(h, e);
    assert.ok(d.diff <= 1e-4 * Math.max(1, d.scale), `hidden_states.${i} max |Δ| ${d.diff}`);
  });
  const loss = expected.readFloat32('loss')[0]!;
  assert.ok(Math.abs(r.loss! - loss) <= 1e-5, `loss ${r.loss} vs ${loss}`);
  let compared = 0;
  for (const info of expected.list().filter((t) => t.name.startsWith('grad.'))) {
    const hfName = info.name.slice('grad.'.length);
    const ours = r.grads!.get(hfName === 'lm_head.weight' ? 'embed_out.weight' : hfName);
    assert.ok(ours, `no gradient for ${hfName}`);
    const err = relativeL2(ours, expected.readFloat32(info.name));
    assert.ok(err <= 1e-4, `gradient of ${hfName}: relative L2 error ${err}`);
    compared++;
  }
  assert.equal(compared, r.grads!.size);
  expected.close();
}

/** Greedy generation with the KV cache (weights fed and baked), without it, and left-padded beside a shorter row. */
export async function checkGenerateFixture(name: string, runtime: RuntimeOptions = {}): Promise<void> {
  const dir = fixtureDir(name);
  const checkpoint = loadCheckpoint(join(dir, 'model'));
  const g = JSON.parse(readFileSync(join(dir, 'generate.json'), 'utf8')) as {
    prompt: number[];
    argmax_loop: number[];
    hf_generate: number[][];
    max_new_tokens: number;
  };
  const fed = await Decoder.create(checkpoint.config, checkpoint.params, { ...runtime, weights: 'inputs' });
  assert.deepEqual((await generate(fed, [g.prompt], { maxNewTokens: g.max_new_tokens }))[0], g.hf_generate[0]);
  const decoder = await Decoder.create(checkpoint.config, checkpoint.params, runtime);
  const [cached] = await generate(decoder, [g.prompt], { maxNewTokens: g.max_new_tokens });
  assert.deepEqual(cached, g.hf_generate[0]);
  const [recomputed] = await generate(decoder, [g.prompt], { maxNewTokens: g.max_new_tokens, noCache: true });
  assert.deepEqual(recomputed, g.argmax_loop);
  // A shorter row beside it is left-padded; the full row must not change.
  const [short, full] = await generate(decoder, [g.prompt.slice(3), g.prompt], { maxNewTokens: g.max_new_tokens });
  assert.deepEqual(full, g.hf_generate[0]);
  const [alone] = await generate(decoder, [g.prompt.slice(3)], { maxNewTokens: g.max_new_tokens });
  assert.deepEqual(short, alone);
  await decoder.release();
}
