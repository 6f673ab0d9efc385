import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countParameters } from '../../src/model/config.js';
import { saveIters } from '../../src/train/checkpoint-schedule.js';
import { initStd } from '../../src/train/init.js';
import {
  gradientAccumulationSteps,
  modelPreset,
  nanoModelPresets,
  paddedVocabSize,
  pythiaModelPreset,
  suitePreset,
  validateRecipe,
} from '../../src/train/recipes.js';

test('Pythia presets carry the published recipe and parameter counts (pythia-facts.md §1.2)', () => {
  // [size, lr, min_lr, non-embedding params, total params] from the facts table.
  const table: [string, number, number, number, number][] = [
    ['70m', 1e-3, 1e-4, 18_915_328, 70_426_624],
    ['160m', 6e-4, 6e-5, 85_056_000, 162_322_944],
    ['410m', 3e-4, 3e-5, 302_311_424, 405_334_016],
    ['1b', 2.5e-4, 2.5e-5, 805_736_448, 1_011_781_632],
    ['1.4b', 2e-4, 2e-5, 1_208_602_624, 1_414_647_808],
    ['2.8b', 1.6e-4, 1.6e-5, 2_517_652_480, 2_775_208_960],
    ['6.9b', 1.2e-4, 1.2e-5, 6_444_163_072, 6_857_302_016],
    ['12b', 1.2e-4, 1.2e-5, 11_327_027_200, 11_846_072_320],
  ];
  for (const [size, lr, minLr, nonEmbedding, total] of table) {
    const p = pythiaModelPreset(size);
    assert.equal(p.recipe.schedule.lr, lr, size);
    assert.equal(p.recipe.schedule.minLr, minLr, size);
    assert.deepEqual(countParameters(p.config), { total, nonEmbedding }, size);
    assert.equal(p.recipe.trainBatchSize, 1024);
    assert.equal(p.recipe.seqLength, 2048);
    assert.equal(p.recipe.trainIters, 143000);
    assert.equal(p.recipe.schedule.warmup, 0.01);
    assert.equal(p.recipe.weightDecay, 0.1);
    assert.equal(p.recipe.gradientClipping, 1.0);
    assert.deepEqual(p.recipe.betas, [0.9, 0.95]);
    assert.equal(saveIters(p.recipe.trainIters, p.recipe.checkpoint).length, 154);
    validateRecipe(p.recipe);
  }
  assert.equal(pythiaModelPreset('70m').recipe.init.initMethod, 'small_init');
  assert.equal(pythiaModelPreset('2.8b').recipe.init.outputLayerInitMethod, 'wang_init');
  assert.equal(pythiaModelPreset('6.9b').recipe.init.initMethod, 'normal');
  assert.equal(pythiaModelPreset('12b').recipe.init.outputLayerInitMethod, 'scaled_normal');
  const d69 = pythiaModelPreset('6.9b').config;
  assert.equal(initStd('scaled_normal', d69), 0.0025);
  assert.equal(pythiaModelPreset('12b').cluster!.modelParallelSize, 4);
});

test('nano suite: at least four sizes spanning ten times in non-embedding parameters, one data order', () => {
  const models = nanoModelPresets();
  assert.ok(models.length >= 4);
  const counts = models.map((m) => countParameters(m.config).nonEmbedding);
  for (let i = 1; i < counts.length; i++) assert.ok(counts[i]! > counts[i - 1]!);
  assert.ok(counts.at(-1)! / counts[0]! >= 10, `span ${counts.at(-1)! / counts[0]!}`);
  const first = models[0]!.recipe;
  for (const m of models) {
    // Same batches in the same order: everything that decides the data is shared.
    assert.equal(m.recipe.seqLength, first.seqLength);
    assert.equal(m.recipe.trainBatchSize, first.trainBatchSize);
    assert.equal(m.recipe.trainIters, first.trainIters);
    assert.equal(m.recipe.seed, first.seed);
    assert.equal(gradientAccumulationSteps(m.recipe), 1);
    validateRecipe(m.recipe);
  }
  assert.deepEqual(
    saveIters(first.trainIters, first.checkpoint),
    [0, 1, 2, 4, 8, 16, 32, 64, 96, 128, 160, 192, 224, 256],
  );
  assert.equal(suitePreset('nano', 512).models[0]!.config.vocabSize, 512);
});

test('preset lookup by name, padded vocabulary, and helpful errors', () => {
  assert.equal(modelPreset('pythia-410m').config.numLayers, 24);
  assert.equal(modelPreset('nano-100k').config.hiddenSize, 64);
  assert.equal(paddedVocabSize(50277), 50304);
  assert.equal(paddedVocabSize(4096), 4096);
  assert.throws(() => modelPreset('pythia-7b'), /unknown model pythia-7b/);
  assert.throws(() => suitePreset('tiny'), /unknown suite tiny/);
  assert.throws(() => validateRecipe({ ...nanoModelPresets()[0]!.recipe, microBatchSize: 5 }), /not a multiple/);
});
