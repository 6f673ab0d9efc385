/**
 * Named activations read a layer at a time (`ActivationRunner` given a LayerStream) equal the
 * resident runner's within 1e-6 (relative to each activation's largest value): every name with the
 * decomposed attention, the names the lens and head studies read with the fused one, the logits
 * (all positions and the last), and under interventions (a patch, head ablations, zero and mean, a
 * scale, an edit of the embedding); on HF fixture checkpoints split into many float16 shards.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type ActivationRequest, type ActivationRun, ActivationRunner } from '../../src/model/activations.js';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import { headScores } from '../../src/model/head-detectors.js';
import type { Activation } from '../../src/model/hooks.js';
import { LayerStream } from '../../src/model/layer-stream.js';
import { logitLens } from '../../src/model/logit-lens.js';
import { Prng } from '../../src/util/prng.js';
import { FIXTURE_CASES } from '../support/hf-fixture-checks.js';
import { fixtureDir } from '../support/paths.js';
import { writeShardedCheckpoint } from './sharded-checkpoint.js';

const tmp = mkdtempSync(join(tmpdir(), 'pythia-stream-act-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function assertClose(got: Activation, want: Activation, label: string): void {
  assert.deepEqual(got.dims, want.dims, `${label}: dims`);
  let scale = 0;
  for (const v of want.data) if (Number.isFinite(v)) scale = Math.max(scale, Math.abs(v));
  want.data.forEach((w, i) => {
    const g = got.data[i]!;
    if (!Number.isFinite(w)) assert.equal(g, w, `${label}[${i}]`);
    else assert.ok(Math.abs(g - w) <= 1e-6 * Math.max(1, scale), `${label}[${i}]: ${g} vs ${w}`);
  });
}

function assertSameRun(got: ActivationRun, want: ActivationRun, label: string): void {
  assert.deepEqual([...got.cache.keys()], [...want.cache.keys()], `${label}: names in order`);
  for (const [name, w] of want.cache) assertClose(got.cache.get(name)!, w, `${label} ${name}`);
  assert.equal(got.logits === undefined, want.logits === undefined, `${label}: logits`);
  if (want.logits) assertClose(got.logits!, want.logits, `${label} logits`);
}

for (const name of FIXTURE_CASES) {
  test(`streamed activations equal resident ones: fixture ${name} in 6 float16 shards`, async () => {
    const { config, params } = loadCheckpoint(join(fixtureDir(name), 'model'));
    const dir = join(tmp, name);
    await writeShardedCheckpoint(dir, config, params, 'float16', 6);
    const resident = new ActivationRunner(config, loadCheckpoint(dir).params);
    const stream = LayerStream.open(dir);
    const streamed = new ActivationRunner(config, stream);
    assert.equal(streamed.streamed, true);
    try {
      const rng = new Prng(3);
      const [batch, seq] = [2, 9];
      const ids = BigInt64Array.from({ length: batch * seq }, () => BigInt(rng.int(config.vocabSize)));
      const clean = await resident.run(ids, batch, { names: ['blocks.0.hook_resid_post'] });
      const requests: [string, ActivationRequest][] = [
        ['every name, decomposed', { names: ['*'], logits: 'all' }],
        [
          'lens and heads names, fused',
          { names: ['hook_embed', 'blocks.*.hook_resid_post', 'blocks.*.attn.hook_z', 'ln_final.*'], logits: 'last' },
        ],
        ['one late name, no head', { names: [`blocks.${config.numLayers - 1}.mlp.hook_post`] }],
        ['logits only', { names: [], logits: 'all' }],
        [
          'interventions',
          {
            names: ['blocks.*.attn.hook_z', 'blocks.*.hook_resid_post'],
            logits: 'last',
            interventions: {
              patch: [
                {
                  name: 'blocks.1.hook_resid_pre',
                  value: clean.cache.get('blocks.0.hook_resid_post')!,
                  positions: [2, 5],
                },
              ],
              ablate: [
                { layer: 0, head: 1 },
                { layer: 1, head: 0, kind: 'mean', positions: [0, 3] },
              ],
              scale: [
                { name: 'hook_embed', factor: 0.5, positions: [1] },
                { name: `blocks.${config.numLayers - 1}.hook_mlp_out`, factor: 2 },
              ],
            },
          },
        ],
      ];
      for (const [label, request] of requests) {
        assertSameRun(
          await streamed.run(ids, batch, request),
          await resident.run(ids, batch, request),
          `${name} ${label}`,
        );
      }
    } finally {
      await streamed.release();
      await resident.release();
      await stream.close();
    }
  });
}

test('a streamed logit lens runs as many rows per pass as its budget holds, and the heads every layer in one pass', async () => {
  const { config, params } = loadCheckpoint(join(fixtureDir(FIXTURE_CASES[0]!), 'model'));
  const dir = join(tmp, 'passes');
  await writeShardedCheckpoint(dir, config, params, 'float16', 3);
  const resident = new ActivationRunner(config, loadCheckpoint(dir).params);
  const [rows, seq] = [5, 8];
  const rng = new Prng(9);
  const ids = BigInt64Array.from({ length: rows * seq }, () => BigInt(rng.int(config.vocabSize)));
  const want = await logitLens(resident, params, ids, rows);
  const residBytes = (config.numLayers + 1) * (seq - 1) * config.hiddenSize * 4;
  for (const [budget, passes] of [
    [10 * residBytes, 1],
    [2 * residBytes, 3],
    [1, 5],
  ] as const) {
    const stream = LayerStream.open(dir);
    try {
      const got = await logitLens(new ActivationRunner(config, stream, {}, budget), params, ids, rows);
      assert.equal(stream.passCount, passes, `budget ${budget}: passes`);
      got.forEach((layer, l) => {
        for (const key of ['kl', 'ce', 'entropy', 'top1'] as const)
          assert.ok(Math.abs(layer[key] - want[l]![key]) <= 1e-5 * Math.max(1, Math.abs(want[l]![key])), `${key} ${l}`);
      });
    } finally {
      await stream.close();
    }
  }
  const heads = [[1, 2, 3, 1, 2, 3]];
  const expected = await headScores(resident, heads);
  const patternBytes = config.numHeads * 6 * 6 * 4;
  for (const [budget, passes] of [
    [undefined, 1],
    [patternBytes, config.numLayers],
  ] as const) {
    const stream = LayerStream.open(dir);
    try {
      const got = await headScores(new ActivationRunner(config, stream, {}, budget), heads);
      assert.equal(stream.passCount, passes, `budget ${budget}: passes`);
      for (const [i, h] of got.entries())
        assert.ok(Math.abs(h.induction - expected[i]!.induction) <= 1e-5, `head ${i}`);
    } finally {
      await stream.close();
    }
  }
});
