/**
 * fromPretrained's maxMemory and weights options: a budget too small for the float32 weights opens
 * the checkpoint for layer streaming, whose scores, activations and lens equal the resident model's;
 * weights 'int8' loads straight to int8, scoring and generating as the Scorer and Decoder do on the
 * quantized float32 load. What cannot run on either refuses in one line.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GPTNeoX } from '../../src/api/gpt-neox.js';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import { Decoder } from '../../src/model/decoder.js';
import { generate } from '../../src/model/generate.js';
import { Scorer } from '../../src/model/score.js';
import { writeShardedCheckpoint } from '../model/sharded-checkpoint.js';
import { fixtureDir } from '../support/paths.js';

const work = mkdtempSync(join(tmpdir(), 'pythia-memory-api-'));
const dir = join(work, 'sharded');
const pairs = [
  [
    [5, 9, 2, 6, 5],
    [3, 5],
  ],
  [
    [8, 9],
    [7, 9, 3],
  ],
] as const;

before(async () => {
  const { config, params } = loadCheckpoint(join(fixtureDir('parallel-r25'), 'model'));
  await writeShardedCheckpoint(dir, config, params, 'float16', 4);
});
after(() => rmSync(work, { recursive: true, force: true }));

describe('fromPretrained maxMemory', () => {
  it('streams under a small budget, with the resident numbers; forward and generate refuse', async () => {
    const resident = await GPTNeoX.fromPretrained(dir, { threads: 1 });
    const streamed = await GPTNeoX.fromPretrained(dir, { threads: 1, maxMemory: 1000 });
    assert.equal(resident.streamed, false);
    assert.equal(streamed.streamed, true);
    assert.equal(streamed.params.size, 0);
    const close = (a: number, b: number) => Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));
    const [s, r] = [await streamed.score(pairs), await resident.score(pairs)];
    for (const [i, x] of s.entries())
      assert.ok(close(x.logprob, r[i]!.logprob), `pair ${i}: ${x.logprob} vs ${r[i]!.logprob}`);
    const ids = [3, 1, 4, 1, 5, 9];
    const names = ['blocks.1.hook_resid_post', 'blocks.0.attn.hook_pattern'];
    const [a, b] = [await streamed.runWithCache(ids, { names }), await resident.runWithCache(ids, { names })];
    for (const name of names) {
      const [x, y] = [a.cache.get(name)!.data, b.cache.get(name)!.data];
      assert.equal(x.length, y.length);
      for (const [k, v] of x.entries()) assert.ok(close(v, y[k]!), `${name}[${k}]`);
    }
    const [lensS, lensR] = [await streamed.logitLens(ids), await resident.logitLens(ids)];
    for (const [i, l] of lensS.entries()) assert.ok(close(l.kl, lensR[i]!.kl), `lens layer ${i}`);
    await assert.rejects(streamed.forward(ids), /^ConfigError: forward needs the float32 weights in memory/);
    await assert.rejects(streamed.generate(ids), /^ConfigError: generate needs the float32 weights in memory/);
    await streamed.dispose();
    await resident.dispose();
  });

  it('refuses a budget that is not a size in one line', async () => {
    await assert.rejects(GPTNeoX.fromPretrained(dir, { maxMemory: 'lots' }), /^ConfigError: memory size "lots"/);
    await assert.rejects(GPTNeoX.fromPretrained(dir, { maxMemory: -5 }), /^ConfigError: maxMemory: expected bytes/);
  });
});

describe("fromPretrained weights: 'int8'", () => {
  it('scores and generates as the quantized float32 load does; float32-only work refuses', async () => {
    const model = await GPTNeoX.fromPretrained(dir, { threads: 1, weights: 'int8' });
    assert.equal(model.weightFormat, 'int8');
    const { config, params } = loadCheckpoint(dir);
    const requests = pairs.map(([context, continuation]) => ({ context, continuation }));
    const expected = await (await Scorer.create(config, params, { threads: 1 }, 'int8')).score(requests);
    assert.deepEqual(await model.score(pairs), expected);
    const decoder = await Decoder.create(config, params, { threads: 1, weights: 'inputs', format: 'int8' });
    const [greedy] = await generate(decoder, [[3, 1, 4]], { maxNewTokens: 5 });
    assert.deepEqual(await model.generate([3, 1, 4], { maxNewTokens: 5 }), [3, 1, 4, ...greedy!.slice(3)]);
    await assert.rejects(model.forward([1, 2, 3]), /^ConfigError: forward needs float32 weights/);
    await assert.rejects(model.runWithCache([1, 2, 3]), /^ConfigError: runWithCache needs float32 weights/);
    await model.dispose();
    await assert.rejects(GPTNeoX.fromPretrained(dir, { weights: 'int4' as 'int8' }), /^ConfigError: weights: expected/);
  });
});
