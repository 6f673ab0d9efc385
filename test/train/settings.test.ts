import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from 'commander';
import { parse } from 'yaml';
import { addRecipeOptions, recipeOverrides } from '../../src/cli/commands/train.js';
import { neoxConfigYaml, parseNeoxConfig } from '../../src/train/neox-config.js';
import { overrideRecipe, resolveBatch } from '../../src/train/overrides.js';
import {
  modelPreset,
  nanoModelPresets,
  paddedVocabSize,
  pythiaModelPreset,
  withTokenizerVocab,
} from '../../src/train/recipes.js';
import { RECIPE_SETTINGS, settingOf } from '../../src/train/settings.js';

const at = (doc: Record<string, unknown>, key: string): unknown =>
  key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k], doc);

test('the table has one row per field, flag and GPT-NeoX key', () => {
  for (const column of ['field', 'flag', 'neoxKey'] as const) {
    const values = RECIPE_SETTINGS.map((s) => s[column]).filter((v) => v !== undefined);
    assert.equal(new Set(values).size, values.length, column);
  }
});

test('every flag of the table is an option of the command, parsed and checked by its row', () => {
  const cmd = addRecipeOptions(new Command('t').exitOverride().configureOutput({ writeErr: () => {} }));
  cmd.parse(
    [
      '--seq-length',
      '64',
      '--lr',
      '0.002',
      '--extra-save-iters',
      '0,1,3',
      '--lr-decay-style',
      'linear',
      '--train-micro-batch-size-per-gpu',
      '2',
    ],
    { from: 'user' },
  );
  assert.deepEqual(recipeOverrides(cmd.opts()), {
    seqLength: 64,
    lr: 0.002,
    extraSaveIters: [0, 1, 3],
    lrDecayStyle: 'linear',
    microBatchSize: 2,
  });
  for (const [flag, bad] of [
    ['--lr', 'abc'],
    ['--seq-length', '0'],
    ['--warmup', '1.5'],
    ['--extra-save-iters', '1,x'],
    ['--lr-decay-style', 'step'],
  ]) {
    const c = addRecipeOptions(new Command('t').exitOverride().configureOutput({ writeErr: () => {} }));
    assert.throws(() => c.parse([flag!, bad!], { from: 'user' }), flag);
  }
  const flags = cmd.options.map((o) => o.long);
  for (const s of RECIPE_SETTINGS) if (s.flag) assert.ok(flags.includes(s.flag.split(' ')[0]), s.flag);
});

test('every GPT-NeoX key of the table is written where the row says and read back by the same row', () => {
  const preset = modelPreset('nano-100k');
  const doc = parse(neoxConfigYaml(preset)) as Record<string, unknown>;
  const back = parseNeoxConfig(neoxConfigYaml(preset), 'x.yml').recipe;
  for (const s of RECIPE_SETTINGS) {
    if (!s.neoxKey) continue;
    assert.deepEqual(at(doc, s.neoxKey), s.get(preset.recipe), s.neoxKey);
    if (s.field !== 'gradientAccumulationSteps') assert.deepEqual(back[s.field], s.get(preset.recipe), s.neoxKey);
  }
});

test('batch arithmetic: whichever of global batch, micro-batch and accumulation steps are given', () => {
  const base = nanoModelPresets()[0]!.recipe; // 16 sequences, micro-batch 16
  assert.deepEqual(resolveBatch(base, { trainBatchSize: 32 }), { trainBatchSize: 32, microBatchSize: 16 });
  assert.deepEqual(resolveBatch(base, { trainBatchSize: 8 }), { trainBatchSize: 8, microBatchSize: 8 });
  assert.deepEqual(resolveBatch(base, { microBatchSize: 4, gradientAccumulationSteps: 3 }), {
    trainBatchSize: 12,
    microBatchSize: 4,
  });
  assert.deepEqual(resolveBatch(base, { trainBatchSize: 12, gradientAccumulationSteps: 3 }), {
    trainBatchSize: 12,
    microBatchSize: 4,
  });
  assert.deepEqual(resolveBatch(base, { gradientAccumulationSteps: 2 }), { trainBatchSize: 32, microBatchSize: 16 });
  assert.throws(
    () => resolveBatch(base, { trainBatchSize: 12, microBatchSize: 4, gradientAccumulationSteps: 2 }),
    /is not train-micro-batch-size-per-gpu 4 x gradient-accumulation-steps 2/,
  );
});

test('overrides set nested fields; train-iters carries lr-decay-iters unless it is given', () => {
  const base = nanoModelPresets()[0]!.recipe;
  const r = overrideRecipe(base, { trainIters: 100, lr: 0.01, extraSaveIters: [0, 5], initMethod: 'normal' });
  assert.equal(r.schedule.decayIters, 100);
  assert.equal(r.schedule.lr, 0.01);
  assert.deepEqual(r.checkpoint.extraSaveIters, [0, 5]);
  assert.equal(r.init.initMethod, 'normal');
  assert.equal(base.schedule.lr, settingOf('lr').get(nanoModelPresets()[0]!.recipe), 'the base is not changed');
  assert.equal(overrideRecipe(base, { trainIters: 100, lrDecayIters: 80 }).schedule.decayIters, 80);
});

test('vocabulary padded as GPT-NeoX pads: 128 x model-parallel size', () => {
  assert.equal(paddedVocabSize(50277), 50304);
  assert.equal(paddedVocabSize(50277, 2), 50432);
  assert.equal(paddedVocabSize(50277, 4), 50688);
  const expected: Record<string, number> = { '70m': 50304, '1b': 50304, '6.9b': 50432, '12b': 50688 };
  for (const [size, vocab] of Object.entries(expected))
    assert.equal(withTokenizerVocab(pythiaModelPreset(size), 50277).config.vocabSize, vocab, size);
  assert.equal(withTokenizerVocab(modelPreset('nano-25k'), 3000).config.vocabSize, 3072);
  // A GPT-NeoX config's own model-parallel size and divisor decide, as they would in GPT-NeoX.
  const { data } = parseNeoxConfig('model-parallel-size: 4\nmake_vocab_size_divisible_by: 64', 'c.yml');
  assert.deepEqual(data, { modelParallelSize: 4, makeVocabSizeDivisibleBy: 64 });
  assert.equal(
    withTokenizerVocab(pythiaModelPreset('70m'), 50277, {
      modelParallelSize: data.modelParallelSize,
      divisibleBy: data.makeVocabSizeDivisibleBy,
    }).config.vocabSize,
    50432,
  );
});

test("exports select bfloat16 through the fp16 block and carry Pythia's evaluation settings", () => {
  const oneB = parse(neoxConfigYaml(pythiaModelPreset('1b'))) as Record<string, Record<string, unknown>>;
  assert.equal(oneB.bf16, undefined);
  assert.equal(oneB.fp16!.type, 'bfloat16');
  assert.equal(oneB.fp16!.enabled, true);
  const seventy = parse(neoxConfigYaml(pythiaModelPreset('70m'))) as Record<string, Record<string, unknown>>;
  assert.equal(seventy.fp16!.type, undefined);
  const evalInterval: Record<string, number> = {
    '14m': 100000,
    '70m': 100000,
    '160m': 40000,
    '2.8b': 40000,
    '6.9b': 1000,
    '12b': 1000,
  };
  for (const [size, interval] of Object.entries(evalInterval)) {
    const doc = parse(neoxConfigYaml(pythiaModelPreset(size))) as Record<string, unknown>;
    assert.equal(doc['eval-interval'], interval, size);
    assert.equal(doc['eval-iters'], 10, size);
  }
});
