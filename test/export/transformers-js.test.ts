/**
 * The real client: transformers.js (@huggingface/transformers, running onnxruntime-node) loads what
 * `exportOnnx` writes, from a local folder with remote models off, and its greedy generation and
 * logits must equal ours: our `generate` (the decoder) and our `forward` (the training graph).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AutoModelForCausalLM, AutoTokenizer, env, Tensor } from '@huggingface/transformers';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import { exportOnnx, type OnnxExportOptions } from '../../src/export/transformers-js.js';
import { openSafetensors } from '../../src/formats/index.js';
import { type Checkpoint, loadCheckpoint } from '../../src/model/checkpoint.js';
import { Decoder } from '../../src/model/decoder.js';
import { forward } from '../../src/model/forward.js';
import { generate } from '../../src/model/generate.js';
import { fixtureDir } from '../support/paths.js';
import { maxRelativeDiff, trainedCheckpoint, trainedTokenizer } from './support.js';

env.allowRemoteModels = false;
env.useBrowserCache = false;

let work: string;
before(() => {
  work = mkdtempSync(join(tmpdir(), 'pythia-onnx-'));
});
after(() => rmSync(work, { recursive: true, force: true }));

type CausalLM = Awaited<ReturnType<typeof AutoModelForCausalLM.from_pretrained>>;

/** Exports and loads with transformers.js; the export's folder name is its model id under env.localModelPath. */
async function exportAndLoad(
  checkpoint: string,
  name: string,
  options: OnnxExportOptions = {},
): Promise<{ dir: string; model: CausalLM }> {
  const dir = join(work, name);
  await exportOnnx(checkpoint, dir, options);
  env.localModelPath = `${dirname(dir)}/`;
  const model = await AutoModelForCausalLM.from_pretrained(basename(dir), {
    dtype: options.dtype ?? 'fp32',
    local_files_only: true,
  });
  return { dir, model };
}

function int64(rows: readonly (readonly number[])[]): Tensor {
  return new Tensor('int64', BigInt64Array.from(rows.flat(), BigInt), [rows.length, rows[0]!.length]);
}

/** transformers.js's greedy continuation of one prompt, as a row of ids (prompt included). */
async function theirGreedy(model: CausalLM, prompt: readonly number[], maxNewTokens: number): Promise<number[]> {
  const out = (await model.generate({
    input_ids: int64([prompt]),
    attention_mask: int64([prompt.map(() => 1)]),
    max_new_tokens: maxNewTokens,
    do_sample: false,
  })) as Tensor;
  return (out.tolist() as bigint[][])[0]!.map(Number);
}

async function ourGreedy(
  checkpoint: Checkpoint,
  prompts: readonly (readonly number[])[],
  maxNewTokens: number,
): Promise<number[][]> {
  const decoder = await Decoder.create(checkpoint.config, checkpoint.params, { threads: 1 });
  try {
    return await generate(decoder, prompts, { maxNewTokens, eosTokenId: checkpoint.config.eosTokenId });
  } finally {
    await decoder.release();
  }
}

async function theirLogits(model: CausalLM, rows: readonly (readonly number[])[]): Promise<Float32Array> {
  const out = (await model({ input_ids: int64(rows), attention_mask: int64(rows.map((r) => r.map(() => 1))) })) as {
    logits: Tensor;
  };
  return out.logits.data as Float32Array;
}

function fixtureIds(name: string): {
  rows: number[][];
  generate: { prompt: number[]; hf_generate: number[][]; max_new_tokens: number };
} {
  const dir = fixtureDir(name);
  const raw = openSafetensors(join(dir, 'expected.safetensors')).readRaw('input_ids');
  const ids = Array.from(new BigInt64Array(raw.data.buffer, raw.data.byteOffset, raw.data.byteLength / 8), Number);
  const [batch, seq] = raw.shape as [number, number];
  const rows = Array.from({ length: batch }, (_, b) => ids.slice(b * seq, (b + 1) * seq));
  return { rows, generate: JSON.parse(readFileSync(join(dir, 'generate.json'), 'utf8')) };
}

for (const [name, dtype] of [
  ['parallel-r25', 'fp32'],
  ['sequential-r100', 'fp32'],
  ['fp16-long', 'fp32'],
  ['fp16-long', 'fp16'],
] as const) {
  describe(`transformers.js runs the ${dtype} export of fixture ${name}`, () => {
    const checkpointDir = join(fixtureDir(name), 'model');
    const checkpoint = loadCheckpoint(checkpointDir);
    const { rows, generate: hf } = fixtureIds(name);
    let model: CausalLM;
    before(async () => {
      ({ model } = await exportAndLoad(checkpointDir, `${name}-${dtype}`, { dtype }));
    });
    after(() => model.dispose());

    test("greedy generation equals ours for several prompts, and HF's own on the fixture's prompt", async () => {
      assert.deepEqual(await theirGreedy(model, hf.prompt, hf.max_new_tokens), hf.hf_generate[0]);
      const prompts = [rows[0]!.slice(0, 1), rows[0]!.slice(0, 5), rows.at(-1)!.slice(3, 14)];
      const ours = await ourGreedy(checkpoint, prompts, 12);
      for (const [i, prompt] of prompts.entries())
        assert.deepEqual(await theirGreedy(model, prompt, 12), ours[i], `prompt ${i}`);
    });

    test('logits of every position match our forward pass within 1e-4 relative', async () => {
      const theirs = await theirLogits(model, rows);
      const ours = await forward(
        checkpoint.config,
        checkpoint.params,
        BigInt64Array.from(rows.flat(), BigInt),
        rows.length,
        {},
      );
      const diff = maxRelativeDiff(theirs, ours.logits!);
      assert.ok(diff <= 1e-4, `max |Δ| / max |logit| = ${diff}`);
    });
  });
}

describe('transformers.js and the export of a trained checkpoint', () => {
  let checkpoint: Checkpoint;
  let model: CausalLM;
  before(async () => {
    const dir = await trainedCheckpoint(join(work, 'train'));
    checkpoint = loadCheckpoint(dir);
    ({ model } = await exportAndLoad(dir, 'counting', { externalData: true }));
  });
  after(() => model.dispose());

  test('with the weights in external data, greedy generation equals ours', async () => {
    const data = join(work, 'counting', 'onnx', 'model.onnx_data');
    assert.ok(statSync(data).size > 4 * 64 * 32, 'the weights are in model.onnx_data');
    assert.ok(
      statSync(join(work, 'counting', 'onnx', 'model.onnx')).size < 64 * 1024,
      'model.onnx holds the graph only',
    );
    const config = JSON.parse(readFileSync(join(work, 'counting', 'config.json'), 'utf8'));
    assert.deepEqual(config['transformers.js_config'].use_external_data_format, { 'model.onnx': 1 });
    const prompts = [[3, 10, 17], [5], [1, 3, 5, 7, 9]];
    const ours = await ourGreedy(checkpoint, prompts, 20);
    for (const [i, prompt] of prompts.entries())
      assert.deepEqual(await theirGreedy(model, prompt, 20), ours[i], `prompt ${i}`);
  });

  test('a left-padded batch: padding is masked and positions count real tokens only, as in our generate', async () => {
    const prompts = [[3, 10, 17, 24, 31], [7, 14], [40]];
    const width = 5;
    const pad = 1;
    const padded = prompts.map((p) => [...new Array<number>(width - p.length).fill(pad), ...p]);
    const mask = prompts.map((p) => [...new Array<number>(width - p.length).fill(0), ...p.map(() => 1)]);
    const out = (await model.generate({
      input_ids: int64(padded),
      attention_mask: int64(mask),
      max_new_tokens: 10,
      do_sample: false,
    })) as Tensor;
    const theirs = (out.tolist() as bigint[][]).map((row, b) => row.map(Number).slice(width - prompts[b]!.length));
    const ours = await ourGreedy(checkpoint, prompts, 10);
    const eos = checkpoint.config.eosTokenId;
    // transformers.js keeps finished rows going with padding; ours end at the end-of-text token.
    theirs.forEach((row, b) => {
      assert.deepEqual(row.slice(0, ours[b]!.length), ours[b], `row ${b}`);
    });
    for (const row of ours) assert.ok(row.indexOf(eos, 1) < 0 || row.at(-1) === eos);
  });

  test('logits of a batch match our forward pass within 1e-4 relative', async () => {
    const rows = [
      [3, 10, 17, 24, 31, 38],
      [5, 6, 7, 8, 9, 10],
    ];
    const ours = await forward(
      checkpoint.config,
      checkpoint.params,
      BigInt64Array.from(rows.flat(), BigInt),
      rows.length,
      {},
    );
    const diff = maxRelativeDiff(await theirLogits(model, rows), ours.logits!);
    assert.ok(diff <= 1e-4, `max |Δ| / max |logit| = ${diff}`);
  });
});

describe("transformers.js's tokenizer and text generation on an export with our trained tokenizer", () => {
  const prompts = ['The capital of', 'Q: What is 12 plus 7? A:', 'Nadia plays the lute and'];
  let dir: string;
  let model: CausalLM;
  before(async () => {
    const tokenizerPath = await trainedTokenizer(join(work, 'tokenizer.json'), 1024);
    ({ dir, model } = await exportAndLoad(join(fixtureDir('fp16-long'), 'model'), 'fp16-long-text', { tokenizerPath }));
  });
  after(() => model.dispose());

  test('tokenizer_config.json names the special tokens; ids and decoded text equal our tokenizer', async () => {
    const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    assert.equal(config.tokenizer_class, 'GPTNeoXTokenizer');
    assert.equal(config.eos_token, '<|endoftext|>');
    assert.ok(existsSync(join(dir, 'generation_config.json')));
    const theirs = await AutoTokenizer.from_pretrained(basename(dir), { local_files_only: true });
    const ours = await loadTokenizer(join(dir, 'tokenizer.json'));
    for (const text of prompts) {
      const ids = await ours.encode(text);
      assert.deepEqual(theirs.encode(text), ids, text);
      assert.equal(theirs.decode(ids), ours.decode(ids), text);
    }
  });

  test('greedy continuations of text prompts equal ours', async () => {
    const tokenizer = await AutoTokenizer.from_pretrained(basename(dir), { local_files_only: true });
    const checkpoint = loadCheckpoint(join(fixtureDir('fp16-long'), 'model'));
    const ids = prompts.map((text) => tokenizer.encode(text));
    const ours = await ourGreedy(checkpoint, ids, 16);
    for (const [i, prompt] of ids.entries())
      assert.deepEqual(await theirGreedy(model, prompt, 16), ours[i], prompts[i]);
  });
});
