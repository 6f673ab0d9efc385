/** The export graph's own pieces: the attention bias from the mask, the declared inputs and outputs, the external data file. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { maskToBias } from '../../src/export/onnx-model.js';
import { writeOnnxModel } from '../../src/export/transformers-js.js';
import { f32ToF16 } from '../../src/formats/index.js';
import { Graph } from '../../src/graph/graph.js';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import { MASK_VALUE } from '../../src/model/gpt-neox.js';
import { evaluate } from '../../src/runtime/session.js';
import { fixtureDir } from '../support/paths.js';

test('the bias hides later slots and padding: 2 new tokens after 3 cached slots, the first row left-padded by 2', async () => {
  const graph = new Graph();
  const mask = graph.input('attention_mask', 'int64', ['batch', 'total']);
  const ids = graph.input('input_ids', 'int64', ['batch', 'seq']);
  const feeds = {
    attention_mask: { data: BigInt64Array.from([0, 0, 1, 1, 1, 1, 1, 1, 1, 1].map(BigInt)), dims: [2, 5] },
    input_ids: { data: new BigInt64Array(4), dims: [2, 2] },
  };
  const { bias } = await evaluate({ graph, outputs: { bias: maskToBias(mask, ids) } }, feeds);
  assert.deepEqual([...bias!.dims], [2, 1, 2, 5]);
  const M = MASK_VALUE;
  // Queries sit in slots 3 and 4; slot 4 is hidden from the query in slot 3.
  const expected = [
    [M, M, 0, 0, M],
    [M, M, 0, 0, 0],
    [0, 0, 0, 0, M],
    [0, 0, 0, 0, 0],
  ].flat();
  assert.deepEqual([...(bias!.data as Float32Array)], expected.map(Math.fround));
});

test("the model declares transformers.js's names, with symbolic batch, sequence and past dimensions", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pythia-onnx-model-'));
  try {
    const { config, params } = loadCheckpoint(join(fixtureDir('sequential-r100'), 'model'));
    await writeOnnxModel(dir, config, params, 'fp32', false);
    const session = await ort.InferenceSession.create(readFileSync(join(dir, 'onnx', 'model.onnx')));
    const layers = Array.from({ length: config.numLayers }, (_, i) => i);
    assert.deepEqual(session.inputNames, [
      'input_ids',
      'attention_mask',
      'position_ids',
      ...layers.flatMap((i) => [`past_key_values.${i}.key`, `past_key_values.${i}.value`]),
    ]);
    assert.deepEqual(session.outputNames, [
      'logits',
      ...layers.flatMap((i) => [`present.${i}.key`, `present.${i}.value`]),
    ]);
    const past = session.inputMetadata.find((m) => m.name === 'past_key_values.0.key')!;
    assert.ok(past.isTensor);
    assert.deepEqual(past.shape, [
      'batch_size',
      config.numHeads,
      'past_sequence_length',
      config.hiddenSize / config.numHeads,
    ]);
    await session.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('external data: the weights leave model.onnx for model_fp16.onnx_data, and onnxruntime reads them back', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pythia-onnx-model-'));
  try {
    const { config, params } = loadCheckpoint(join(fixtureDir('parallel-r25'), 'model'));
    const files = await writeOnnxModel(dir, config, params, 'fp16', true);
    assert.deepEqual(files, ['onnx/model_fp16.onnx', 'onnx/model_fp16.onnx_data']);
    const model = readFileSync(join(dir, 'onnx', 'model_fp16.onnx'));
    const data = readFileSync(join(dir, 'onnx', 'model_fp16.onnx_data'));
    // The embedding (211 × 64 float16) is stored first, at offset 0, as its float16 bits.
    const embed = params.get('gpt_neox.embed_in.weight')!;
    const bytes = new Uint16Array(data.buffer, data.byteOffset, embed.length);
    assert.equal(bytes[0], f32ToF16(embed.subarray(0, 1))[0]);
    assert.ok(model.length < 32 * 1024, `model.onnx is ${model.length} bytes`);
    assert.ok(model.includes(Buffer.from('model_fp16.onnx_data')));
    const session = await ort.InferenceSession.create(join(dir, 'onnx', 'model_fp16.onnx'));
    const n = 3;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from([5n, 6n, 7n]), [1, n]),
      attention_mask: new ort.Tensor('int64', BigInt64Array.from([1n, 1n, 1n]), [1, n]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from([0n, 1n, 2n]), [1, n]),
    };
    for (let i = 0; i < config.numLayers; i++) {
      for (const part of ['key', 'value'])
        feeds[`past_key_values.${i}.${part}`] = new ort.Tensor('float32', new Float32Array(0), [
          1,
          config.numHeads,
          0,
          16,
        ]);
    }
    const out = await session.run(feeds);
    assert.deepEqual(out.logits!.dims, [1, n, config.vocabSize]);
    assert.deepEqual(out['present.1.value']!.dims, [1, config.numHeads, n, 16]);
    await session.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
