import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse } from 'yaml';
import { saveIters } from '../../src/train/checkpoint-schedule.js';
import { applyNeoxConfig, neoxConfigYaml, parseNeoxConfig } from '../../src/train/neox-config.js';
import { modelPreset, nanoModelPresets, PYTHIA_SIZE_NAMES, pythiaModelPreset } from '../../src/train/recipes.js';

test('exported configs read back to the same architecture, recipe and checkpoint schedule', () => {
  const presets = [...PYTHIA_SIZE_NAMES.map(pythiaModelPreset), ...nanoModelPresets()];
  for (const preset of presets) {
    const yaml = neoxConfigYaml(preset, { dataPrefix: 'data/x_text_document', vocabFile: 'data/tok.json' });
    const values = parseNeoxConfig(yaml, `${preset.name}.yml`);
    assert.deepEqual(values.warnings, [], preset.name);
    // Lay the file over an unrelated base: everything but the vocabulary must come from the file.
    const other = preset.name === 'nano-25k' ? modelPreset('pythia-12b') : modelPreset('nano-25k');
    const base = { ...other, config: { ...other.config, vocabSize: preset.config.vocabSize } };
    const back = applyNeoxConfig(base, values, 'x.yml');
    assert.deepEqual(back.config, preset.config, preset.name);
    assert.deepEqual(back.recipe, preset.recipe, preset.name);
    assert.deepEqual(values.data, {
      trainDataPaths: ['data/x_text_document'],
      vocabFile: 'data/tok.json',
      modelParallelSize: preset.cluster?.modelParallelSize ?? 1,
    });
  }
});

test("the 70m export uses Pythia's key names and values", () => {
  const doc = parse(neoxConfigYaml(pythiaModelPreset('70m'))) as Record<string, unknown>;
  assert.equal(doc['num-layers'], 6);
  assert.equal(doc['hidden-size'], 512);
  assert.equal(doc['num-attention-heads'], 8);
  assert.equal(doc['rotary-pct'], 0.25);
  assert.equal(doc['gpt-j-residual'], true);
  assert.equal(doc['no-weight-tying'], true);
  assert.equal(doc.init_method, 'small_init');
  assert.equal(doc.output_layer_init_method, 'wang_init');
  assert.deepEqual(doc.optimizer, { type: 'Adam', params: { lr: 0.001, betas: [0.9, 0.95], eps: 1e-8 } });
  assert.equal(doc.min_lr, 0.0001);
  assert.equal(doc.train_micro_batch_size_per_gpu, 32);
  assert.equal(doc['weight-decay'], 0.1);
  assert.equal(doc.gradient_clipping, 1.0);
  assert.equal(doc['train-iters'], 143000);
  assert.equal(doc['lr-decay-style'], 'cosine');
  assert.equal(doc.warmup, 0.01);
  assert.equal(doc['checkpoint-factor'], 1000);
  assert.deepEqual(doc['extra-save-iters'], [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512]);
  assert.equal(doc.seed, 1234);
  assert.equal((doc.fp16 as Record<string, unknown>).initial_scale_power, 12);
  assert.equal(doc['tokenizer-type'], 'HFTokenizer');
  const doc12b = parse(neoxConfigYaml(pythiaModelPreset('12b'))) as Record<string, unknown>;
  assert.equal(doc12b['model-parallel-size'], 4);
  assert.equal(doc12b.init_method, 'normal');
  assert.equal(doc12b['num-layers'], 36);
  assert.equal(doc12b['num-attention-heads'], 40);
});

// Written here in the style of the Pythia repo's models/*.yml: JSON with comments, `True`, trailing
// commas, keys with `-` and `_` mixed.
const PYTHIA_STYLE = `{
  # parallelism settings
  "pipe-parallel-size": 1,
  "model-parallel-size": 1,
  "num-layers": 12,
  "hidden-size": 768,
  "num-attention-heads": 12,
  "seq-length": 2048,
  "max-position-embeddings": 2048,
  "pos-emb": "rotary",
  "rotary-pct": 0.25,
  "no-weight-tying": true,
  "gpt-j-residual": true,
  "init_method": "small_init",
  "output_layer_init_method": "wang_init",
  "optimizer": { "type": "Adam", "params": { "lr": 0.0006, "betas": [0.9, 0.95], "eps": 1.0e-8, } },
  "min_lr": 0.00006,
  "zero_optimization": { "stage": 1, "cpu_offload": False },
  "train_micro_batch_size_per_gpu": 32,
  "gas": 1,
  "gradient_clipping": 1.0,
  "weight-decay": 0.1,
  "hidden-dropout": 0,
  "attention-dropout": 0,
  "train-iters": 143000,
  "lr-decay-iters": 143000,
  "lr-decay-style": "cosine",
  "warmup": 0.01,
  "save-interval": 1000,
  "extra-save-iters": [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
  "train-data-paths": ["/data/pile_text_document"],
  "vocab-file": "/data/20B_tokenizer.json",
  "launcher": "openmpi",
  "deepspeed_mpi": True,
}`;

test('a Pythia-style JSON-with-comments file is read', () => {
  const values = parseNeoxConfig(PYTHIA_STYLE, 'pythia-160m.yml');
  assert.deepEqual(values.architecture, {
    numLayers: 12,
    hiddenSize: 768,
    numHeads: 12,
    maxPositions: 2048,
    rotaryPct: 0.25,
    tieWordEmbeddings: false,
    parallelResidual: true,
  });
  assert.equal(values.recipe.lr, 6e-4);
  assert.equal(values.recipe.minLr, 6e-5);
  assert.equal(values.recipe.checkpointFactor, 1000);
  assert.deepEqual(values.data, {
    trainDataPaths: ['/data/pile_text_document'],
    vocabFile: '/data/20B_tokenizer.json',
    modelParallelSize: 1,
  });
  // No train_batch_size: one process cannot know the cluster's data-parallel width, so it says so.
  assert.equal(values.warnings.length, 1);
  assert.match(values.warnings[0]!, /train_batch_size is not set/);
  const preset = applyNeoxConfig(pythiaModelPreset('160m'), values, 'pythia-160m.yml');
  assert.equal(preset.recipe.trainBatchSize, 32);
  assert.equal(saveIters(preset.recipe.trainIters, preset.recipe.checkpoint).length, 154);
});

test('bad values name the key; unknown keys warn; broken files fail in one line', () => {
  assert.throws(
    () => parseNeoxConfig('"num-layers": -2', 'a.yml'),
    /^ConfigError: a\.yml: num_layers: expected a positive integer, got -2$/m,
  );
  assert.throws(
    () => parseNeoxConfig('lr-decay-style: step', 'a.yml'),
    /lr_decay_style: expected one of constant, linear, cosine, exponential/,
  );
  assert.throws(() => parseNeoxConfig('optimizer: {type: SGD}', 'a.yml'), /optimizer\.type: expected Adam/);
  assert.throws(() => parseNeoxConfig('hidden-dropout: 0.1', 'a.yml'), /hidden_dropout: expected 0/);
  assert.throws(
    () => parseNeoxConfig('{"a": 1\n "b": 2}', 'b.yml'),
    (e: Error) => /^b\.yml: not valid YAML or JSON at line 1/.test(e.message) && !e.message.includes('\n'),
  );
  assert.throws(() => parseNeoxConfig('- 1\n- 2', 'c.yml'), /expected a mapping/);
  assert.deepEqual(parseNeoxConfig('flash-attention: true\nseed: 3', 'd.yml').warnings, [
    'flash_attention: unknown GPT-NeoX key, ignored',
  ]);
  const values = parseNeoxConfig('train_micro_batch_size_per_gpu: 3\ntrain_batch_size: 16', 'e.yml');
  assert.throws(
    () => applyNeoxConfig(modelPreset('nano-25k'), values, 'e.yml'),
    /e\.yml: train-batch-size 16 is not a multiple/,
  );
});
