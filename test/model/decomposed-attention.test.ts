/**
 * The decomposed attention (training, forward and other differentiable graphs) rotates only the
 * first rotary_ndims columns of q and k. With none, a quarter, half and all of each head rotating:
 * its logits equal the float64 reference (test/support/reference.ts), and with explicit positions,
 * symbolic shapes and a KV cache its logits and present keys and values equal the fused attention's.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Graph, type Tensor } from '../../src/graph/graph.js';
import { headDim, type NeoXConfig, parameterShapes, rotaryDims } from '../../src/model/config.js';
import { forward } from '../../src/model/forward.js';
import { buildGptNeoX, lmHead } from '../../src/model/gpt-neox.js';
import type { Params } from '../../src/model/params.js';
import { parameterFeeds, parameterInputs } from '../../src/model/params.js';
import { pythiaArchitecture } from '../../src/model/presets.js';
import { evaluate, type HostTensor } from '../../src/runtime/session.js';
import { cachedStepFeeds } from '../support/cached-feeds.js';
import { Rng } from '../support/random.js';
import { referenceGptNeoX } from '../support/reference.js';

function tinyModel(rotaryPct: number): { config: NeoXConfig; params: Params } {
  const base = pythiaArchitecture({ vocabSize: 40, hiddenSize: 32, numLayers: 2, numHeads: 2, maxPositions: 64 });
  const config: NeoXConfig = { ...base, rotaryPct, dtype: 'float32' };
  const rng = new Rng(17);
  const params: Params = new Map();
  for (const { name, shape } of parameterShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const norm = name.includes('layernorm') || name.includes('layer_norm');
    const values = norm && name.endsWith('weight') ? rng.floats(n, 0.8, 1.2) : rng.floats(n, -0.3, 0.3);
    params.set(name, Float32Array.from(values));
  }
  return { config, params };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

for (const rotaryPct of [0, 0.25, 0.5, 1]) {
  describe(`decomposed attention, rotary_pct ${rotaryPct}`, () => {
    const { config, params } = tinyModel(rotaryPct);
    const rng = new Rng(3);

    test(`static shapes: logits equal the float64 reference (${rotaryDims(config)} of ${headDim(config)} dims rotate)`, async () => {
      const [batch, seq] = [2, 7];
      const rows = Array.from({ length: batch }, () => Array.from({ length: seq }, () => rng.int(0, config.vocabSize)));
      const { logits } = await forward(
        config,
        params,
        BigInt64Array.from(rows.flat(), BigInt),
        batch,
        {},
        { threads: 1 },
      );
      const reference = referenceGptNeoX(config, params, rows).logits;
      const d = maxDiff(logits!, reference.data);
      assert.ok(d <= 1e-4, `logits: max |Δ| ${d}`);
    });

    test('positions, symbolic shapes and a KV cache: logits and present keys and values equal the fused attention', async () => {
      const [batch, seq, past] = [2, 3, 5];
      const nh = config.numHeads;
      const hd = headDim(config);
      const feeds = cachedStepFeeds(config, rng, [batch, seq, past]);
      const run = async (fused: boolean): Promise<Record<string, HostTensor>> => {
        const graph = new Graph();
        const { lookup } = parameterInputs(graph, config);
        const out = buildGptNeoX(config, lookup, {
          ids: graph.input('ids', 'int64', ['batch', 'seq']),
          positions: graph.input('positions', 'int64', ['batch', 'seq']),
          attentionBias: graph.input('bias', 'float32', ['batch', 1, 'seq', 'past+seq']),
          past: Array.from({ length: config.numLayers }, (_, i) => ({
            key: graph.input(`past.${i}.key`, 'float32', ['batch', nh, 'past', hd]),
            value: graph.input(`past.${i}.value`, 'float32', ['batch', nh, 'past', hd]),
          })),
          fused,
        });
        const outputs: Record<string, Tensor> = { logits: lmHead(config, lookup, out.final) };
        out.present.forEach((c, i) => {
          outputs[`key.${i}`] = c.key;
          outputs[`value.${i}`] = c.value;
        });
        return evaluate({ graph, outputs }, { ...parameterFeeds(config, params), ...feeds }, { threads: 1 });
      };
      const [decomposed, fused] = [await run(false), await run(true)];
      assert.deepEqual(Object.keys(decomposed).sort(), Object.keys(fused).sort());
      for (const name of Object.keys(fused)) {
        assert.deepEqual(decomposed[name]!.dims, fused[name]!.dims, `${name}: dims`);
        const d = maxDiff(decomposed[name]!.data as Float32Array, fused[name]!.data as Float32Array);
        assert.ok(d <= 1e-5, `${name}: max |Δ| ${d}`);
      }
    });
  });
}
