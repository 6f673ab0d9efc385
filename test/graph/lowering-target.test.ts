/**
 * Lowering for the WebGPU provider: no FusedMatMul or LogSoftmax node (WebGPU has no kernel for
 * them, so onnxruntime would run them on the CPU), and the decompositions compute what the CPU
 * lowering computes. Both lowerings run here on onnxruntime's CPU provider.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import { Graph, type Tensor } from '../../src/graph/graph.js';
import { grad } from '../../src/graph/grad.js';
import { type LoweringTarget, toOnnx } from '../../src/graph/onnx.js';
import * as op from '../../src/graph/ops.js';
import { assertClose } from '../support/check.js';
import { Rng } from '../support/random.js';

const rng = new Rng(5);
const data = (n: number): Float32Array => Float32Array.from(rng.floats(n, -2, 2));
const x = data(2 * 3 * 8);
const w = data(6 * 8);
const labels = Int32Array.of(1, 5, 0, 2, 4, 3);

function spec(): { graph: Graph; outputs: Record<string, Tensor> } {
  const g = new Graph();
  const xs = g.input('x', 'float32', [2, 3, 8]);
  const ws = g.input('w', 'float32', [6, 8]);
  const ls = g.input('labels', 'int32', [6]);
  const logits = op.linear(xs, ws); // rank 3: FusedMatMul on the CPU
  const scores = op.matmul(xs, xs, { transB: true, alpha: 0.25 }); // [2, 3, 3]
  const flat = op.reshape(logits, [6, 6]);
  const loss = op.add(op.mean(op.crossEntropy(flat, ls)), op.meanLinearCrossEntropy(op.reshape(xs, [6, 8]), ws, ls, 12));
  const [dx, dw] = grad(op.add(loss, op.mean(op.logSoftmax(scores, -1))), [xs, ws]) as [Tensor, Tensor];
  return { graph: g, outputs: { logSoftmax: op.logSoftmax(logits, -1), scores, loss, dx, dw } };
}

const opTypes = (bytes: Uint8Array): Set<string> => new Set([...Buffer.from(bytes).toString('latin1').matchAll(/n\d+_([A-Za-z]+)/g)].map((m) => m[1]!));

async function runLowered(target: LoweringTarget, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array>> {
  const model = toOnnx(spec(), { target });
  const session = await ort.InferenceSession.create(model.bytes);
  const out = await session.run(feeds);
  await session.release();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
}

test('the WebGPU lowering has no FusedMatMul or LogSoftmax node; the CPU lowering uses both', () => {
  const cpu = opTypes(toOnnx(spec()).bytes);
  const webgpu = opTypes(toOnnx(spec(), { target: 'webgpu' }).bytes);
  assert.ok(cpu.has('FusedMatMul') && cpu.has('LogSoftmax'), `cpu lowering: ${[...cpu].join(' ')}`);
  assert.ok(!webgpu.has('FusedMatMul') && !webgpu.has('LogSoftmax'), `webgpu lowering: ${[...webgpu].join(' ')}`);
});

test('the WebGPU lowering computes what the CPU lowering does, gradients included', async () => {
  const feeds = {
    x: new ort.Tensor('float32', x, [2, 3, 8]),
    w: new ort.Tensor('float32', w, [6, 8]),
    labels: new ort.Tensor('int32', labels, [6]),
  };
  const cpu = await runLowered('cpu', feeds);
  const webgpu = await runLowered('webgpu', feeds);
  for (const name of Object.keys(cpu)) assertClose(webgpu[name]!, cpu[name]!, { rtol: 1e-5, atol: 1e-6 }, name);
});

test('the decomposed log-softmax stays finite where exp overflows: log softmax [1000, 0, −1000] = [0, −1000, −2000]', async () => {
  const g = new Graph();
  const v = g.input('v', 'float32', [1, 3]);
  const session = await ort.InferenceSession.create(toOnnx({ graph: g, outputs: { y: op.logSoftmax(v, -1) } }, { target: 'webgpu' }).bytes);
  const { y } = await session.run({ v: new ort.Tensor('float32', Float32Array.of(1000, 0, -1000), [1, 3]) });
  assert.deepEqual(Array.from(y!.data as Float32Array), [0, -1000, -2000]);
  await session.release();
});
