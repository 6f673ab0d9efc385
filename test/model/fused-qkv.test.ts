/**
 * The fused attention path reads HF's per-head query_key_value rows (the scorer, decoders with large
 * fed weights) and regrouped [q; k; v] rows (baked or small decoders) to the same result, with a cache.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { Graph } from '../../src/graph/graph.js';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import { headDim } from '../../src/model/config.js';
import { buildGptNeoX, lmHead } from '../../src/model/gpt-neox.js';
import { groupQkvRows, parameterFeeds, parameterInputs } from '../../src/model/params.js';
import { evaluate, type HostTensor } from '../../src/runtime/session.js';
import { cachedStepFeeds } from '../support/cached-feeds.js';
import { fixtureDir } from '../support/paths.js';
import { Rng } from '../support/random.js';

test('fused attention: per-head and regrouped qkv rows give the same logits and cache', async () => {
  const { config, params } = loadCheckpoint(join(fixtureDir('parallel-r25'), 'model'));
  const [batch, seq, past] = [2, 3, 4];
  const cacheDims = [batch, config.numHeads, past, headDim(config)];
  const rng = new Rng(5);
  const feeds = cachedStepFeeds(config, rng, [batch, seq, past]);
  async function run(groupedQkv: boolean): Promise<Record<string, HostTensor>> {
    const graph = new Graph();
    const { lookup } = parameterInputs(graph, config);
    const pastInputs = Array.from({ length: config.numLayers }, (_, i) => ({
      key: graph.input(`past.${i}.key`, 'float32', cacheDims),
      value: graph.input(`past.${i}.value`, 'float32', cacheDims),
    }));
    const out = buildGptNeoX(config, lookup, {
      ids: graph.input('ids', 'int64', [batch, seq]),
      positions: graph.input('positions', 'int64', [batch, seq]),
      attentionBias: graph.input('bias', 'float32', [batch, 1, seq, past + seq]),
      past: pastInputs,
      fused: true,
      groupedQkv,
    });
    const weights = groupedQkv ? groupQkvRows(config, params) : params;
    const outputs = {
      logits: lmHead(config, lookup, out.final),
      key: out.present.at(-1)!.key,
      value: out.present.at(-1)!.value,
    };
    return evaluate({ graph, outputs }, { ...parameterFeeds(config, weights), ...feeds });
  }
  const [perHead, grouped] = [await run(false), await run(true)];
  for (const name of ['logits', 'key', 'value']) {
    const [a, b] = [perHead[name]!.data as Float32Array, grouped[name]!.data as Float32Array];
    const diff = a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
    assert.ok(diff <= 1e-5, `${name}: max |Δ| ${diff}`);
  }
});
