/**
 * `--device webgpu`: onnxruntime-node's bundled WebGPU provider (Dawn over Vulkan) runs the model's
 * graphs to the Hugging Face fixtures' tolerances, and places every compute node on the GPU (from
 * onnxruntime's own per-node profile). Needs a Vulkan device: a GPU, or Mesa's software one
 * (lavapipe, in Debian's mesa-vulkan-drivers from 23 on; .ci/run installs it from bookworm-backports).
 * Skipped, saying why, where onnxruntime finds no WebGPU adapter.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Graph } from '../../src/graph/graph.js';
import * as op from '../../src/graph/ops.js';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import { Decoder } from '../../src/model/decoder.js';
import { generate } from '../../src/model/generate.js';
import { Scorer } from '../../src/model/score.js';
import { TrainStep } from '../../src/model/train-step.js';
import { compile } from '../../src/runtime/session.js';
import { checkFixtureTraining } from '../support/fixture-training.js';
import { checkForwardFixture, checkGenerateFixture } from '../support/hf-fixture-checks.js';
import { fixtureDir } from '../support/paths.js';

async function webgpuMissing(): Promise<string | false> {
  const g = new Graph();
  const x = g.input('x', 'float32', [2]);
  try {
    const session = await compile({ graph: g, outputs: { y: op.exp(x) } }, { provider: 'webgpu', cache: false });
    await session.release();
    return false;
  } catch (e) {
    return (e as Error).message;
  }
}

const skip = await webgpuMissing();
const webgpu = { provider: 'webgpu' as const };

/** Ops onnxruntime keeps on the CPU on purpose: small integer shape and index arithmetic. */
const SHAPE_OPS = new Set(['Reshape', 'Slice', 'Squeeze', 'Unsqueeze', 'Shape']);

/** The op types of the profile's kernels that ran on the CPU provider. */
function cpuOps(dir: string): Set<string> {
  const file = readdirSync(dir).find((f) => f.endsWith('.json'));
  assert.ok(file, `onnxruntime wrote no profile in ${dir}`);
  const events = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { cat: string; name: string; args?: { op_name?: string; provider?: string } }[];
  const kernels = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
  assert.ok(kernels.some((e) => e.args?.provider === 'WebGpuExecutionProvider'), 'no kernel ran on WebGPU');
  return new Set(kernels.filter((e) => e.args?.provider === 'CPUExecutionProvider').map((e) => e.args!.op_name!));
}

async function profiled(run: (profile: string) => Promise<void>): Promise<Set<string>> {
  const dir = mkdtempSync(join(tmpdir(), 'pythia-webgpu-'));
  try {
    await run(join(dir, 'profile'));
    return cpuOps(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('WebGPU execution provider', { skip }, () => {
  test('forward: logits, hidden states, loss and every gradient match the HF fixtures', async () => {
    await checkForwardFixture('parallel-r25', webgpu);
    await checkForwardFixture('sequential-r100', webgpu);
  });

  test('greedy generation matches the HF fixture, with and without the KV cache', async () => {
    await checkGenerateFixture('parallel-r25', webgpu);
  });

  test('five training steps reproduce the fixture losses, gradient norms and final weights', async () => {
    await checkFixtureTraining('webgpu');
  });

  test('every compute node of the training step, scorer and decoder runs on the GPU', async () => {
    const { config, params } = loadCheckpoint(join(fixtureDir('parallel-r25'), 'model'));
    const tokens = Int32Array.from({ length: 2 * 9 }, (_, i) => (i * 7) % config.vocabSize);
    const training = await profiled(async (profile) => {
      const step = await TrainStep.create(config, { batch: 2, seq: 8 }, { ...webgpu, profile });
      await step.run(params, tokens);
      step.endProfiling();
    });
    const scoring = await profiled(async (profile) => {
      const scorer = await Scorer.create(config, params, { ...webgpu, profile, cache: false });
      await scorer.score([{ context: [0, 5, 6], continuation: [7, 8] }]);
      scorer.endProfiling();
    });
    const decoding = await profiled(async (profile) => {
      for (const weights of ['constants', 'inputs'] as const) {
        const decoder = await Decoder.create(config, params, { ...webgpu, weights, profile, cache: false });
        await generate(decoder, [[1, 2, 3]], { maxNewTokens: 3 });
        decoder.endProfiling();
        await decoder.release();
      }
    });
    for (const [graph, ops] of Object.entries({ training, scoring, decoding })) {
      const compute = [...ops].filter((o) => !SHAPE_OPS.has(o));
      assert.deepEqual(compute, [], `${graph}: ops on the CPU`);
    }
  });
});
