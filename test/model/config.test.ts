import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  countParameters,
  parameterShapes,
  parameterTensorCount,
  parseHfConfig,
  rotaryDims,
} from '../../src/model/config.js';
import { matchPreset, PYTHIA_SIZES, pythiaPreset } from '../../src/model/presets.js';
import { fixtureDir } from '../support/paths.js';

const read = (name: string): unknown => JSON.parse(readFileSync(join(fixtureDir(name), 'model/config.json'), 'utf8'));

test('the current layout (rope_parameters, dtype) and the legacy one (rotary_pct, torch_dtype) both parse', () => {
  const current = parseHfConfig(read('parallel-r25'));
  assert.equal(current.rotaryPct, 0.25);
  assert.equal(current.rotaryBase, 10000);
  assert.equal(current.parallelResidual, true);
  assert.equal(current.dtype, 'float32');
  assert.equal(rotaryDims(current), 4);
  const legacy = parseHfConfig(read('sequential-r100'));
  assert.equal(legacy.rotaryPct, 1);
  assert.equal(legacy.parallelResidual, false);
  assert.equal(legacy.numHeads, 3);
  assert.equal(parseHfConfig(read('fp16-long')).dtype, 'float16');
});

test('unsupported settings get a clear one-line error naming the field', () => {
  const base = read('parallel-r25') as Record<string, unknown>;
  assert.throws(
    () => parseHfConfig({ ...base, hidden_act: 'relu' }, 'c.json'),
    /c\.json: hidden_act "relu" is not supported/,
  );
  assert.throws(
    () => parseHfConfig({ ...base, hidden_size: 'wide' }, 'c.json'),
    /c\.json: field hidden_size must be a number/,
  );
  assert.throws(
    () => parseHfConfig({ ...base, rope_parameters: { rope_type: 'yarn' } }, 'c.json'),
    /rope_type "yarn" is not supported/,
  );
  assert.throws(() => parseHfConfig({ ...base, model_type: 'llama' }, 'c.json'), /model_type "llama" is not gpt_neox/);
  assert.throws(() => parseHfConfig({ ...base, num_attention_heads: 5 }, 'c.json'), /not divisible/);
});

test('presets have the published parameter counts (pythia-facts.md §1.2)', () => {
  const published: Record<string, [number, number]> = {
    '14m': [14_067_712, 1_189_888],
    '70m': [70_426_624, 18_915_328],
    '160m': [162_322_944, 85_056_000],
    '410m': [405_334_016, 302_311_424],
    '1b': [1_011_781_632, 805_736_448],
    '1.4b': [1_414_647_808, 1_208_602_624],
    '2.8b': [2_775_208_960, 2_517_652_480],
    '6.9b': [6_857_302_016, 6_444_163_072],
    '12b': [11_846_072_320, 11_327_027_200],
  };
  for (const [size, [total, nonEmbedding]] of Object.entries(published)) {
    const c = pythiaPreset(size)!;
    assert.deepEqual(countParameters(c), { total, nonEmbedding }, size);
    assert.equal(matchPreset(c), `pythia-${size}`);
  }
  assert.equal(Object.keys(PYTHIA_SIZES).length, 10);
  assert.equal(rotaryDims(pythiaPreset('70m')!), 16);
  assert.equal(matchPreset(parseHfConfig(read('parallel-r25'))), undefined);
});

test('parameterTensorCount and countParameters agree with parameterShapes for every layout', () => {
  const base = parseHfConfig(read('parallel-r25'));
  for (const tieWordEmbeddings of [false, true]) {
    for (const attentionBias of [false, true]) {
      const c = { ...base, tieWordEmbeddings, attentionBias };
      const shapes = parameterShapes(c);
      assert.equal(parameterTensorCount(c), shapes.length);
      const total = shapes.reduce((sum, p) => sum + p.shape.reduce((a, b) => a * b, 1), 0);
      const embedding = shapes
        .filter((p) => /embed_(in|out)\.weight$/.test(p.name))
        .reduce((sum, p) => sum + p.shape.reduce((a, b) => a * b, 1), 0);
      assert.deepEqual(countParameters(c), { total, nonEmbedding: total - embedding });
    }
  }
});

test('sizes past the supported limits are refused before anything is built', () => {
  const base = read('parallel-r25') as Record<string, unknown>;
  for (const [key, limit] of [
    ['num_hidden_layers', 4096],
    ['hidden_size', 65536],
    ['vocab_size', 4194304],
    ['max_position_embeddings', 1048576],
    ['intermediate_size', 262144],
  ] as const) {
    assert.throws(
      () => parseHfConfig({ ...base, [key]: limit * 2 }, 'c.json'),
      new RegExp(`^ConfigError: c\\.json: ${key} is ${limit * 2}, more than the ${limit} we support$`),
    );
  }
  assert.throws(
    () => parseHfConfig({ ...base, eos_token_id: 1e6 }, 'c.json'),
    /c\.json: eos_token_id is 1000000, expected a token id in \[0, 211\)/,
  );
  // A config made from flags or a GPT-NeoX YAML, never parsed from config.json, is checked too.
  const fromFlags = { ...parseHfConfig(base), numLayers: 1e7 };
  assert.throws(
    () => parameterShapes(fromFlags),
    /^ConfigError: model config: num_hidden_layers is 10000000, more than the 4096 we support$/,
  );
});
