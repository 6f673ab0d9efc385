/**
 * Lowering for the WebGPU provider: no FusedMatMul or LogSoftmax node (WebGPU has no kernel for
 * them, so onnxruntime would run them on the CPU), and the decompositions compute what the CPU
 * lowering computes. Both lowerings run here on onnxruntime's CPU provider.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import { grad } from '../../src/graph/grad.js';
import { Graph, type Tensor } from '../../src/graph/graph.js';
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
  const loss = op.add(
    op.mean(op.crossEntropy(flat, ls)),
    op.meanLinearCrossEntropy(op.reshape(xs, [6, 8]), ws, ls, 12),
  );
  const [dx, dw] = grad(op.add(loss, op.mean(op.logSoftmax(scores, -1))), [xs, ws]) as [Tensor, Tensor];
  return { graph: g, outputs: { logSoftmax: op.logSoftmax(logits, -1), scores, loss, dx, dw } };
}

const opTypesList = (bytes: Uint8Array): string[] =>
  [
    ...Buffer.from(bytes)
      .toString('latin1')
      .matchAll(/n\d+_([A-Za-z]+)/g),
  ].map((m) => m[1]!);
const opTypes = (bytes: Uint8Array): Set<string> => new Set(opTypesList(bytes));

async function runLowered(
  target: LoweringTarget,
  feeds: Record<string, ort.Tensor>,
): Promise<Record<string, Float32Array>> {
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
  const session = await ort.InferenceSession.create(
    toOnnx({ graph: g, outputs: { y: op.logSoftmax(v, -1) } }, { target: 'webgpu' }).bytes,
  );
  const { y } = await session.run({ v: new ort.Tensor('float32', Float32Array.of(1000, 0, -1000), [1, 3]) });
  assert.deepEqual(Array.from(y!.data as Float32Array), [0, -1000, -2000]);
  await session.release();
});

test('a scatter-add into a table larger than WebGPU takes whole is done in blocks of rows, with the same result', async () => {
  const build = () => {
    const g = new Graph();
    const table = g.input('table', 'float32', [40, 8]);
    const index = g.input('index', 'int64', [7]);
    const rows = g.input('rows', 'float32', [7, 8]);
    return { graph: g, outputs: { y: op.scatterAdd(table, index, rows) } };
  };
  const feeds = {
    table: new ort.Tensor('float32', Float32Array.from(rng.floats(320, -1, 1)), [40, 8]),
    // Every block, a repeated row, and the first and last rows.
    index: new ort.Tensor('int64', BigInt64Array.of(0n, 39n, 9n, 9n, 10n, 21n, 30n), [7]),
    rows: new ort.Tensor('float32', Float32Array.from(rng.floats(56, -1, 1)), [7, 8]),
  };
  const whole = toOnnx(build());
  // 10 rows of 32 bytes fit 320 bytes: blocks of 9 rows plus the spare one.
  const blocks = toOnnx(build(), { target: 'webgpu', webgpuScatterBytes: 320 });
  assert.equal([...opTypesList(blocks.bytes)].filter((t) => t === 'ScatterND').length, 5);
  const results: Float32Array[] = [];
  for (const model of [whole, blocks]) {
    const session = await ort.InferenceSession.create(model.bytes);
    results.push((await session.run(feeds)).y!.data as Float32Array);
    await session.release();
  }
  assert.deepEqual(results[1], results[0]);
});

test('the CPU lowering scatter-adds through ScatterElements, not ScatterND, whose CPU kernel races across threads', () => {
  const cpu = opTypesList(toOnnx(spec()).bytes);
  const webgpu = opTypesList(toOnnx(spec(), { target: 'webgpu' }).bytes);
  assert.ok(!cpu.includes('ScatterND') && cpu.includes('ScatterElements'), `cpu lowering: ${cpu.join(' ')}`);
  assert.ok(webgpu.includes('ScatterND'), `webgpu lowering: ${webgpu.join(' ')}`);
});
