/**
 * Weights across checkpoints: each group's norm, relative change and cosine against float64 sums
 * over the checkpoints' values read back from disk, and the hash of the weights' values: equal for
 * the same values in float16 shards and one float32 file, different when one value changes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parameterGroup, parameterGroups, weightStats, weightsSha256 } from '../../src/analysis/weight-stats.js';
import { f16ToF32, f32ToF16, writeSafetensors } from '../../src/formats/index.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/model/checkpoint.js';
import { parameterShapes } from '../../src/model/config.js';
import type { Params } from '../../src/model/params.js';
import { makeWorld, randomParams } from '../eval/support.js';

const dir = mkdtempSync(join(tmpdir(), 'pythia-weight-stats-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The group of a parameter, written out by hand for the 2-layer test model. */
function expectedGroup(name: string): string {
  if (name === 'gpt_neox.embed_in.weight') return 'embed_in';
  if (name === 'embed_out.weight') return 'embed_out';
  if (name.startsWith('gpt_neox.final_layer_norm')) return 'final_layer_norm';
  const i = name.split('.')[2];
  if (name.includes('layernorm')) return `layers.${i}.layer_norms`;
  if (name.includes('.attention.')) return `layers.${i}.attention`;
  return `layers.${i}.mlp`;
}

test('norms, relative changes and cosines equal float64 sums over the two checkpoints as stored', async () => {
  const world = await makeWorld(dir);
  await saveCheckpoint(join(dir, 'a'), world.config, randomParams(world.config, 1));
  // The second checkpoint a small step from the first, as consecutive training checkpoints are.
  const drift = randomParams(world.config, 2);
  const moved: Params = new Map(
    [...randomParams(world.config, 1)].map(([n, w]) => [n, w.map((v, i) => v + 0.01 * drift.get(n)![i]!)]),
  );
  await saveCheckpoint(join(dir, 'b'), world.config, moved);
  const a = loadCheckpoint(join(dir, 'a')).params;
  const b = loadCheckpoint(join(dir, 'b')).params;

  const sums = new Map<string, { bb: number; aa: number; ab: number; dd: number }>();
  for (const [name, wb] of b) {
    const wa = a.get(name)!;
    for (const g of [expectedGroup(name), 'all']) {
      const s = sums.get(g) ?? { bb: 0, aa: 0, ab: 0, dd: 0 };
      for (let i = 0; i < wb.length; i++) {
        s.bb += wb[i]! ** 2;
        s.aa += wa[i]! ** 2;
        s.ab += wb[i]! * wa[i]!;
        s.dd += (wb[i]! - wa[i]!) ** 2;
      }
      sums.set(g, s);
    }
  }
  const stats = weightStats(world.config, b, a);
  assert.deepEqual(
    stats.map((s) => s.group),
    parameterGroups(world.config),
  );
  assert.deepEqual([...sums.keys()].sort(), stats.map((s) => s.group).sort());
  for (const s of stats) {
    const e = sums.get(s.group)!;
    const close = (got: number | null, want: number, what: string) =>
      assert.ok(
        got !== null && Math.abs(got - want) <= 1e-12 * Math.abs(want),
        `${s.group} ${what}: ${got} vs ${want}`,
      );
    close(s.norm, Math.sqrt(e.bb), 'norm');
    close(s.relativeChange, Math.sqrt(e.dd) / Math.sqrt(e.aa), 'relative change');
    close(s.cosine, e.ab / Math.sqrt(e.aa * e.bb), 'cosine');
    assert.ok(s.relativeChange! > 0.001 && s.relativeChange! < 0.1, `${s.group}: ${s.relativeChange}`);
  }
  // Without a previous checkpoint: norms alone.
  for (const s of weightStats(world.config, b)) {
    assert.equal(s.relativeChange, null);
    assert.equal(s.cosine, null);
  }
  // The same weights: no change, cosine 1.
  for (const s of weightStats(world.config, a, a)) {
    assert.equal(s.relativeChange, 0);
    assert.ok(Math.abs(s.cosine! - 1) < 1e-12, `${s.group}: ${s.cosine}`);
  }
  // A group of zeros has a norm of 0 and no relative change or cosine.
  const zeroed: Params = new Map(
    [...a].map(([n, w]) => [n, n.includes('final_layer_norm') ? new Float32Array(w.length) : w]),
  );
  const finalNorm = weightStats(world.config, a, zeroed).find((s) => s.group === 'final_layer_norm')!;
  assert.deepEqual([finalNorm.relativeChange, finalNorm.cosine], [null, null]);
  const missing: Params = new Map([...a].filter(([n]) => n !== 'gpt_neox.embed_in.weight'));
  assert.throws(() => weightStats(world.config, a, missing), /embed_in\.weight: absent in the previous checkpoint/);
});

test("parameter groups: each of the model's parameters has one; other names are refused", async () => {
  const world = await makeWorld(dir);
  for (const { name } of parameterShapes(world.config)) assert.equal(parameterGroup(name), expectedGroup(name), name);
  assert.throws(() => parameterGroup('gpt_neox.layers.0.attention_extra'), /not a GPT-NeoX parameter/);
});

test('the weights hash: the definition, equal for float16 shards and one float32 file of equal values, changed by one value', async () => {
  // The definition on two tiny tensors, computed by hand.
  const tiny: Params = new Map([
    ['b', Float32Array.of(1)],
    ['a', Float32Array.of(-0, 2.5)],
  ]);
  const bytes = (name: string, values: number[]) => {
    const count = Buffer.alloc(8);
    count.writeBigUInt64LE(BigInt(values.length));
    const data = Buffer.alloc(4 * values.length);
    for (const [i, v] of values.entries()) data.writeFloatLE(v, 4 * i);
    return Buffer.concat([Buffer.from(name), Buffer.of(0), count, data]);
  };
  assert.equal(
    weightsSha256(tiny),
    createHash('sha256')
      .update(Buffer.concat([bytes('a', [-0, 2.5]), bytes('b', [1])]))
      .digest('hex'),
  );
  assert.notEqual(
    weightsSha256(
      new Map([
        ['b', Float32Array.of(1)],
        ['a', Float32Array.of(0, 2.5)],
      ]),
    ),
    weightsSha256(tiny),
  );

  const world = await makeWorld(dir);
  // Values a float16 holds exactly, so both files store the same numbers.
  const params: Params = new Map([...randomParams(world.config, 3)].map(([n, w]) => [n, f16ToF32(f32ToF16(w))]));
  await saveCheckpoint(join(dir, 'f32'), world.config, params);
  const sharded = join(dir, 'f16-sharded');
  await saveCheckpoint(sharded, world.config, params, { dtype: 'float16' });
  rmSync(join(sharded, 'model.safetensors'));
  const shapes = parameterShapes(world.config);
  const half = Math.floor(shapes.length / 2);
  const weightMap: Record<string, string> = {};
  for (const [file, part] of [
    ['model-00001-of-00002.safetensors', shapes.slice(half)],
    ['model-00002-of-00002.safetensors', shapes.slice(0, half)],
  ] as const) {
    await writeSafetensors(
      join(sharded, file),
      part.map(({ name, shape }) => ({ name, dtype: 'F16', shape, data: f32ToF16(params.get(name)!) })),
      { format: 'pt' },
    );
    for (const { name } of part) weightMap[name] = file;
  }
  writeFileSync(join(sharded, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  const fromF32 = loadCheckpoint(join(dir, 'f32'));
  const fromF16 = loadCheckpoint(sharded);
  assert.equal(fromF16.storedDTypes.get('embed_out.weight'), 'F16');
  assert.equal(weightsSha256(fromF16.params), weightsSha256(fromF32.params));
  assert.equal(weightsSha256(fromF32.params), weightsSha256(params));

  const changed: Params = new Map([...params].map(([n, w]) => [n, Float32Array.from(w)]));
  const w = changed.get('gpt_neox.layers.1.mlp.dense_4h_to_h.bias')!;
  w[3] = f16ToF32(f32ToF16(Float32Array.of(w[3]! + 0.5)))[0]!;
  await saveCheckpoint(join(dir, 'changed'), world.config, changed, { dtype: 'float16' });
  assert.notEqual(weightsSha256(loadCheckpoint(join(dir, 'changed')).params), weightsSha256(params));
});
