import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readConfig } from '../../src/model/checkpoint.js';
import { type ParameterSpec, parameterShapes } from '../../src/model/config.js';
import { initParameters, initStd, NEOX_DEFAULT_INIT, PYTHIA_INIT } from '../../src/train/init.js';
import { Prng } from '../../src/util/prng.js';
import { fixtureDir } from '../support/paths.js';

/**
 * The parameter specs of an HF checkpoint's config.json, checked against the names and shapes in
 * its safetensors header (8-byte length, then JSON).
 */
function hfSpecs(caseName: string): ParameterSpec[] {
  const dir = join(fixtureDir(caseName), 'model');
  const buf = readFileSync(join(dir, 'model.safetensors'));
  const header = JSON.parse(buf.subarray(8, 8 + Number(buf.readBigUInt64LE(0))).toString('utf8')) as Record<
    string,
    { shape: number[] }
  >;
  const stored = Object.entries(header)
    .filter(([name]) => name !== '__metadata__')
    .map(([name, { shape }]) => ({ name, shape }));
  const specs = parameterShapes(readConfig(dir));
  const sortByName = (xs: { name: string; shape: number[] }[]) => [...xs].sort((a, b) => (a.name < b.name ? -1 : 1));
  assert.deepEqual(sortByName(specs.map(({ name, shape }) => ({ name, shape }))), sortByName(stored));
  return specs;
}

/** GPT-NeoX's init rule for an HF parameter name, written out from megatron/model/transformer.py and gpt2_model.py. */
function expectedInit(name: string): ParameterSpec['init'] {
  if (name.endsWith('.bias')) return 'zeros';
  if (/(layernorm|layer_norm)\.weight$/.test(name)) return 'ones';
  if (/(attention\.dense|mlp\.dense_4h_to_h)\.weight$/.test(name)) return 'output';
  return 'input';
}

function stats(x: Float32Array): { mean: number; std: number; within1: number } {
  let s = 0;
  for (const v of x) s += v;
  const mean = s / x.length;
  let ss = 0;
  for (const v of x) ss += (v - mean) ** 2;
  const std = Math.sqrt(ss / x.length);
  let within = 0;
  for (const v of x) if (Math.abs(v - mean) <= std) within++;
  return { mean, std, within1: within / x.length };
}

test('prng: normals are standard normal and the state round-trips', () => {
  const rng = new Prng(7);
  const x = new Float32Array(200_000);
  rng.fillNormal(x, 1);
  const { mean, std, within1 } = stats(x);
  assert.ok(Math.abs(mean) < 0.01, `mean ${mean}`);
  assert.ok(Math.abs(std - 1) < 0.01, `std ${std}`);
  assert.ok(Math.abs(within1 - 0.6827) < 0.005, `P(|z|<1) ${within1}`);
  rng.normal(); // leave a spare pending
  const copy = new Prng(rng.state);
  for (let i = 0; i < 5; i++) assert.equal(copy.normal(), rng.normal());
});

test('init std formulas (GPT-NeoX init_functions.py: 70m small_init 0.0279508, wang_init 0.0147314; 6.9b 0.02 and 0.0025)', () => {
  const d70m = { hiddenSize: 512, numLayers: 6 };
  assert.ok(Math.abs(initStd('small_init', d70m) - 0.0279508) < 1e-7);
  assert.ok(Math.abs(initStd('wang_init', d70m) - 0.0147314) < 1e-7);
  const d69b = { hiddenSize: 4096, numLayers: 32 };
  assert.equal(initStd('normal', d69b), 0.02);
  assert.equal(initStd('scaled_normal', d69b), 0.0025);
});

test('each parameter group gets its distribution; biases zero; LayerNorm (1, 0)', () => {
  const specs = hfSpecs('parallel-r25');
  assert.equal(specs.length, 2 * 12 + 4);
  const dims = { hiddenSize: 64, numLayers: 2 };
  const params = initParameters(specs, dims, PYTHIA_INIT, 1234);
  const small = Math.sqrt(2 / (5 * 64));
  const wang = 2 / (2 * 8);
  for (const { name, shape, init } of specs) {
    assert.equal(init, expectedInit(name), name);
    const x = params.get(name)!;
    assert.equal(
      x.length,
      shape.reduce((a, b) => a * b, 1),
      name,
    );
    if (init === 'zeros')
      assert.ok(
        x.every((v) => v === 0),
        name,
      );
    else if (init === 'ones')
      assert.ok(
        x.every((v) => v === 1),
        name,
      );
    else {
      const sigma = init === 'input' ? small : wang;
      const { mean, std } = stats(x);
      const rel = 4 / Math.sqrt(2 * x.length); // four standard errors of a sample std
      assert.ok(Math.abs(std / sigma - 1) < rel, `${name}: std ${std} vs σ ${sigma}`);
      assert.ok(Math.abs(mean) < (4 * sigma) / Math.sqrt(x.length), `${name}: mean ${mean}`);
    }
  }
  const initOf = new Map(specs.map((p) => [p.name, p.init]));
  assert.equal(initOf.get('gpt_neox.layers.1.attention.dense.weight'), 'output');
  assert.equal(initOf.get('gpt_neox.layers.1.mlp.dense_4h_to_h.weight'), 'output');
  assert.equal(initOf.get('embed_out.weight'), 'input');
});

test('scaled_normal for the output layers with the GPT-NeoX defaults', () => {
  const shapes = [{ name: 'gpt_neox.layers.0.attention.dense.weight', shape: [256, 256], init: 'output' as const }];
  const x = initParameters(shapes, { hiddenSize: 256, numLayers: 8 }, NEOX_DEFAULT_INIT, 1).get(shapes[0]!.name)!;
  assert.ok(Math.abs(stats(x).std / 0.005 - 1) < 0.02);
});

test('same seed, same bytes; another seed, other bytes', () => {
  const shapes = hfSpecs('parallel-r25');
  const dims = { hiddenSize: 64, numLayers: 2 };
  const a = initParameters(shapes, dims, PYTHIA_INIT, 1234);
  const b = initParameters(shapes, dims, PYTHIA_INIT, 1234);
  const c = initParameters(shapes, dims, PYTHIA_INIT, 1235);
  for (const { name } of shapes) assert.deepEqual(a.get(name), b.get(name));
  assert.notDeepEqual(a.get('gpt_neox.embed_in.weight'), c.get('gpt_neox.embed_in.weight'));
});
