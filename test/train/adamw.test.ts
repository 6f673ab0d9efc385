import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parameterShapes } from '../../src/model/config.js';
import { pythiaArchitecture } from '../../src/model/presets.js';
import { type AdamFlavour, AdamW, type AdamWOptions, noWeightDecay } from '../../src/train/adamw.js';
import { clipGradNorm, globalGradNorm } from '../../src/train/grad-clip.js';

const p0 = [0.5, -1.25, 0.003, 2.0];
const grads = [
  [0.1, -0.2, 0.0, 3.0],
  [-0.05, 0.4, 1e-3, -2.5],
  [0.2, 0.2, -0.3, 0.01],
];
const lrs = [1e-3, 2e-3, 5e-4];

function options(flavour: AdamFlavour, weightDecay: number): AdamWOptions {
  return { betas: [0.9, 0.95], eps: 1e-8, weightDecay, flavour };
}

function run(flavour: AdamFlavour, weightDecay: number, name = 'gpt_neox.layers.0.mlp.dense_h_to_4h.weight') {
  const params = new Map([[name, Float32Array.from(p0)]]);
  const opt = new AdamW(options(flavour, weightDecay), params, new Set());
  grads.forEach((g, i) => {
    opt.step(params, new Map([[name, Float32Array.from(g)]]), lrs[i]!);
  });
  return { p: params.get(name)!, m: opt.state.expAvg.get(name)!, v: opt.state.expAvgSq.get(name)! };
}

function assertClose(actual: ArrayLike<number>, expected: number[], rel: number): void {
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    assert.ok(Math.abs(actual[i]! - e) <= rel * Math.max(Math.abs(e), 1e-3), `[${i}] ${actual[i]} vs ${e}`);
  }
}

test('first update from zero moments moves each weight by lr·(sign(g) + wd·p) (hand computation)', () => {
  for (const flavour of ['apex', 'torch'] as const) {
    const name = 'embed_out.weight';
    const params = new Map([[name, Float32Array.from([1, -2, 0.5])]]);
    const opt = new AdamW(options(flavour, 0.1), params, new Set());
    opt.step(params, new Map([[name, Float32Array.from([0.3, -0.01, 4])]]), 0.01);
    // m̂ = g and v̂ = g², so update = g/(|g| + 1e-8) + 0.1·p.
    const expected = [1 - 0.01 * (1 + 0.1 * 1), -2 - 0.01 * (-1 + 0.1 * -2), 0.5 - 0.01 * (1 + 0.1 * 0.5)];
    assertClose(params.get(name)!, expected, 1e-6);
  }
});

test('three apex steps match a float32 numpy transcription of FusedAdam ADAM_MODE_1', () => {
  // Golden values: numpy 2.4 float32, step by step as apex multi_tensor_adam.cu computes
  // (m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g; p -= lr*((m/bc1)/(sqrt(v/bc2)+eps) + wd*p)).
  const golden0 = [0.4981389045715332, -1.2499862909317017, 0.0018407754832878709, 1.9989078044891357];
  const golden1 = [0.49796420335769653, -1.249549150466919, 0.0018397991079837084, 1.9982081651687622];
  const m = [0.023600006476044655, 0.0398000106215477, -0.02991000935435295, 0.019000008702278137];
  const v = [0.002570000709965825, 0.011405003257095814, 0.004500049166381359, 0.7030051350593567];
  assertClose(run('apex', 0).p, golden0, 2e-7);
  const r = run('apex', 0.1);
  assertClose(r.p, golden1, 2e-7);
  assertClose(r.m, m, 2e-7);
  assertClose(r.v, v, 2e-7);
});

test('three torch steps match a float32 numpy transcription of torch.optim.AdamW', () => {
  // Golden values: numpy 2.4 float32 transcription of torch's _single_tensor_adam with
  // decoupled weight decay (scalars in float64, tensors in float32).
  const golden0 = [0.4981389045715332, -1.2499862909317017, 0.0018407755997031927, 1.9989078044891357];
  const golden1 = [0.49796420335769653, -1.2495490312576294, 0.001839799340814352, 1.9982081651687622];
  const m = [0.023600002750754356, 0.0398000031709671, -0.029910000041127205, 0.019000008702278137];
  const v = [0.002570000011473894, 0.01140500046312809, 0.004500047769397497, 0.7030050158500671];
  assertClose(run('torch', 0).p, golden0, 2e-7);
  const r = run('torch', 0.1);
  assertClose(r.p, golden1, 2e-7);
  assertClose(r.m, m, 2e-7);
  assertClose(r.v, v, 2e-7);
});

test('no weight decay on biases and LayerNorm parameters', () => {
  const specs = parameterShapes(pythiaArchitecture({ numLayers: 4, hiddenSize: 32, numHeads: 2, vocabSize: 16 }));
  const undecayed = noWeightDecay(specs);
  for (const name of [
    'gpt_neox.embed_in.weight',
    'gpt_neox.layers.3.attention.query_key_value.weight',
    'embed_out.weight',
  ]) {
    assert.equal(undecayed.has(name), false, name);
  }
  for (const name of [
    'gpt_neox.layers.3.attention.query_key_value.bias',
    'gpt_neox.layers.0.input_layernorm.weight',
    'gpt_neox.layers.0.post_attention_layernorm.weight',
    'gpt_neox.final_layer_norm.weight',
  ]) {
    assert.equal(undecayed.has(name), true, name);
  }
  // Exactly the biases and LayerNorm parameters, by their Hugging Face names.
  const byName = specs.map((p) => p.name).filter((n) => n.endsWith('.bias') || /layernorm\.|layer_norm\./.test(n));
  assert.deepEqual([...undecayed].sort(), byName.sort());
  // With a zero gradient a decayed weight shrinks, an undecayed one stays.
  const params = new Map([
    ['gpt_neox.final_layer_norm.weight', Float32Array.from([1])],
    ['embed_out.weight', Float32Array.from([1])],
  ]);
  const opt = new AdamW(options('apex', 0.1), params, undecayed);
  opt.step(params, new Map([...params.keys()].map((k) => [k, new Float32Array(1)])), 0.01);
  assert.equal(params.get('gpt_neox.final_layer_norm.weight')![0], 1);
  assert.equal(params.get('embed_out.weight')![0], Math.fround(1 - Math.fround(0.01 * Math.fround(0.1))));
});

test('an optimizer rebuilt from its state continues with identical bytes', () => {
  for (const flavour of ['apex', 'torch'] as const) {
    const name = 'w.weight';
    const straight = new Map([[name, Float32Array.from(p0)]]);
    const a = new AdamW(options(flavour, 0.1), straight, new Set());
    grads.forEach((g, i) => {
      a.step(straight, new Map([[name, Float32Array.from(g)]]), lrs[i]!);
    });

    const resumed = new Map([[name, Float32Array.from(p0)]]);
    const b = new AdamW(options(flavour, 0.1), resumed, new Set());
    b.step(resumed, new Map([[name, Float32Array.from(grads[0]!)]]), lrs[0]!);
    const saved = {
      step: b.state.step,
      expAvg: new Map([[name, b.state.expAvg.get(name)!.slice()]]),
      expAvgSq: new Map([[name, b.state.expAvgSq.get(name)!.slice()]]),
    };
    const c = new AdamW(options(flavour, 0.1), resumed, new Set(), saved);
    c.step(resumed, new Map([[name, Float32Array.from(grads[1]!)]]), lrs[1]!);
    c.step(resumed, new Map([[name, Float32Array.from(grads[2]!)]]), lrs[2]!);
    assert.deepEqual(resumed.get(name), straight.get(name));
  }
});

test('global-norm clipping: norm over all tensors, scale only above the limit', () => {
  const grads = new Map([
    ['a', Float32Array.from([3, 0])],
    ['b', Float32Array.from([0, 4])],
  ]);
  assert.equal(globalGradNorm(grads.values()), 5);
  const norm = clipGradNorm(grads, 1.0);
  assert.equal(norm, 5);
  assertClose(grads.get('a')!, [0.6, 0], 1e-6);
  assertClose(grads.get('b')!, [0, 0.8], 1e-6);
  const small = new Map([['a', Float32Array.from([0.3, 0.4])]]);
  // float64 norm of the float32 values (numpy): 0.500000011920929
  assert.equal(clipGradNorm(small, 1.0), 0.500000011920929);
  assert.deepEqual(small.get('a'), Float32Array.from([0.3, 0.4]));
});
