import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { countParameters } from '../../src/model/config.js';
import { saveIters } from '../../src/train/checkpoint-schedule.js';
import { initStd } from '../../src/train/init.js';
import { neoxConfigYaml } from '../../src/train/neox-config.js';
import {
  gradientAccumulationSteps,
  modelPreset,
  nanoModelPresets,
  PYTHIA_MODEL_NAMES,
  paddedVocabSize,
  pythiaModelPreset,
  SUITE_NAMES,
  suitePreset,
  validateRecipe,
} from '../../src/train/recipes.js';
import { repoRoot } from '../support/paths.js';

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

/** The eight sizes Pythia also trained on the deduplicated Pile (README "Models"; no 14m or 31m). */
const DEDUPED_SIZES = ['70m', '160m', '410m', '1b', '1.4b', '2.8b', '6.9b', '12b'];

test("deduplicated presets: the sibling's architecture and recipe, in fp16, about 1.5 epochs of the deduplicated Pile", () => {
  // Every model saw 143,000 steps × 1024 × 2048 tokens; the deduplicated Pile holds 207B tokens an epoch (README).
  const tokens = 143000 * 1024 * 2048;
  assert.equal(tokens, 299_892_736_000);
  for (const size of DEDUPED_SIZES) {
    const deduped = modelPreset(`pythia-${size}-deduped`);
    const sibling = modelPreset(`pythia-${size}`);
    assert.equal(deduped.name, `pythia-${size}-deduped`);
    assert.deepEqual(deduped.config, sibling.config, size);
    assert.deepEqual(deduped.recipe, sibling.recipe, size);
    assert.deepEqual(deduped.evaluation, sibling.evaluation, size);
    // The README: "fp16 for all models except EleutherAI/pythia-1b which trained with bf16".
    assert.deepEqual(deduped.cluster, { ...sibling.cluster, precision: 'fp16' }, size);
    assert.equal(sibling.cluster!.precision, size === '1b' ? 'bf16' : 'fp16', size);
    assert.deepEqual(deduped.data, {
      corpus: 'pile-deduped',
      description: 'the Pile near-deduplicated (207B tokens an epoch), about 1.5 epochs',
      epochs: 1.5,
      neoxDataPath: '/fsx/pile_deduped/pile_0.87_deduped_text_document',
      preshuffledDataset: 'EleutherAI/pile-deduped-pythia-preshuffled',
      idxmapsDataset: 'EleutherAI/pythia_deduped_pile_idxmaps',
    });
    assert.deepEqual(sibling.data, {
      corpus: 'pile',
      description: 'the Pile, just under 1 epoch',
      epochs: 1,
      neoxDataPath: '/fsx/pile/pile_20B_tokenizer_text_document',
      preshuffledDataset: 'EleutherAI/pile-standard-pythia-preshuffled',
      idxmapsDataset: null,
    });
    assert.ok(Math.abs(tokens / 207e9 - deduped.data!.epochs) < 0.06);
    assert.deepEqual(modelPreset(`${size}-deduped`), deduped);
  }
  assert.deepEqual(
    PYTHIA_MODEL_NAMES.filter((n) => n.endsWith('-deduped')),
    DEDUPED_SIZES.map((s) => `pythia-${s}-deduped`),
  );
  assert.deepEqual(SUITE_NAMES, ['pythia', 'pythia-deduped', 'nano']);
  assert.deepEqual(
    suitePreset('pythia-deduped').models.map((m) => m.name),
    DEDUPED_SIZES.map((s) => `pythia-${s}-deduped`),
  );
  assert.equal(suitePreset('pythia').models.length, 10);
  for (const name of ['pythia-14m-deduped', '31m-deduped', 'pythia-70m-dedup'])
    assert.throws(
      () => modelPreset(name),
      new RegExp(`unknown model ${name} \\(expected one of 14m, .*, 70m-deduped, `),
    );
  assert.throws(() => pythiaModelPreset('pythia-14m-deduped'), /unknown Pythia model pythia-14m-deduped/);
});

/**
 * Pythia's own configs (test/fixtures/pythia-configs: models/<size>/pythia-<size>-deduped.yml of
 * EleutherAI/pythia at a19eecb8), keys spelt with `_` as GPT-NeoX reads either.
 */
function pythiaConfig(file: string): Record<string, unknown> {
  const text = readFileSync(join(repoRoot, 'test/fixtures/pythia-configs', file), 'utf8');
  return Object.fromEntries(Object.entries(parse(text) as object).map(([k, v]) => [k.replace(/-/g, '_'), v]));
}

test("pythia export neox-config of a deduplicated preset says what Pythia's deduplicated config says", () => {
  // Keys of Pythia's files that only run the cluster (kernels, workers, logging, launcher): not written.
  const notWritten = ['attention_config', 'num_workers', 'wall_clock_breakdown', 'launcher', 'deepspeed_slurm'];
  for (const size of DEDUPED_SIZES) {
    const preset = modelPreset(`pythia-${size}-deduped`);
    const theirs = pythiaConfig(`pythia-${size}-deduped.yml`);
    const yaml = neoxConfigYaml(preset, {
      dataPrefix: preset.data!.neoxDataPath,
      vocabFile: '/fsx/pile/20B_tokenizer.json',
    });
    const ours = Object.fromEntries(Object.entries(parse(yaml) as object).map(([k, v]) => [k.replace(/-/g, '_'), v]));
    for (const [key, value] of Object.entries(theirs)) {
      if (notWritten.includes(key)) continue;
      if (key === 'gas') assert.equal(ours.gradient_accumulation_steps, value, `${size} gas`);
      else if (key === 'zero_optimization')
        assert.deepEqual({ ...(ours[key] as object), cpu_offload: false }, value, size);
      else if (size === '12b' && (key === 'num_layers' || key === 'num_attention_heads'))
        // The file swaps the two (commit cd054b4); the model has 36 layers and 40 heads.
        assert.deepEqual([ours.num_layers, ours.num_attention_heads], [theirs.num_attention_heads, theirs.num_layers]);
      else assert.deepEqual(ours[key], value, `${size}: ${key}`);
    }
    // Without --data, the file name of Pythia's deduplicated data under data/.
    assert.deepEqual((parse(neoxConfigYaml(preset)) as Record<string, unknown>)['train-data-paths'], [
      'data/pile_0.87_deduped_text_document',
    ]);
  }
  assert.deepEqual((parse(neoxConfigYaml(modelPreset('pythia-70m'))) as Record<string, unknown>)['train-data-paths'], [
    'data/pile_20B_tokenizer_text_document',
  ]);
  // 1b: the deduplicated run in fp16, the standard one in bf16 (GPT-NeoX v1.0's fp16 block with type bfloat16).
  const fp16 = (name: string) =>
    (parse(neoxConfigYaml(modelPreset(name))) as Record<string, Record<string, unknown>>).fp16!;
  assert.equal(fp16('pythia-1b-deduped').fp16, true);
  assert.equal(fp16('pythia-1b-deduped').type, undefined);
  assert.equal(fp16('pythia-1b').type, 'bfloat16');
});
