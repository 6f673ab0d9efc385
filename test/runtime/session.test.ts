import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { grad } from '../../src/graph/grad.js';
import { Graph, type Tensor } from '../../src/graph/graph.js';
import * as op from '../../src/graph/ops.js';
import { compile, type HostTensor, RuntimeError } from '../../src/runtime/session.js';
import { f32, i64 } from '../support/check.js';
import { Rng } from '../support/random.js';

/** A small float32 language-model-like step: embedding, matmul, layer norm, gelu, loss and gradients. */
function trainingGraph(name?: string): { spec: Parameters<typeof compile>[0] } {
  const g = new Graph();
  const ids = g.input('ids', 'int64', ['tokens']);
  const emb = g.input('emb', 'float32', [50, 16]);
  const w = g.input('w', 'float32', [16, 16]);
  const lnw = g.input('lnw', 'float32', [16]);
  const lnb = g.input('lnb', 'float32', [16]);
  const h = op.gelu(op.matmul(op.layerNorm(op.gather(emb, ids), lnw, lnb, 1e-5), w));
  const logits = op.matmul(h, emb, { transB: true });
  const loss = op.mean(op.crossEntropy(logits, ids));
  const [gEmb, gW] = grad(loss, [emb, w]) as [Tensor, Tensor];
  return { spec: { graph: g, outputs: { loss, gEmb, gW }, name } };
}

function feeds(tokens: number): Record<string, HostTensor> {
  const rng = new Rng(81);
  return {
    ids: i64(Array.from({ length: tokens }, () => rng.int(0, 50))),
    emb: f32(rng.nd([50, 16], 0.01, 0.5)),
    w: f32(rng.nd([16, 16], 0.01, 0.5)),
    lnw: f32(rng.nd([16], 0.5, 1.5, true)),
    lnb: f32(rng.nd([16], 0.01, 0.2)),
  };
}

function sameBits(a: Record<string, HostTensor>, b: Record<string, HostTensor>): void {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  for (const k of Object.keys(a)) {
    const [x, y] = [a[k]!.data, b[k]!.data];
    assert.deepEqual(
      Buffer.from(x.buffer, x.byteOffset, x.byteLength),
      Buffer.from(y.buffer, y.byteOffset, y.byteLength),
      `${k} bits`,
    );
  }
}

describe('runtime', () => {
  it('same inputs give the same bits across runs and across sessions', async () => {
    const first = await compile(trainingGraph().spec);
    const second = await compile(trainingGraph('another session').spec);
    assert.notEqual(first, second, 'a different model name compiles a second session');
    const input = feeds(37);
    const a = await first.run(input);
    const b = await first.run(input);
    const c = await second.run(input);
    sameBits(a, b);
    sameBits(a, c);
  });

  it('the session cache returns one compiled graph for the same graph, even rebuilt', async () => {
    const { spec } = trainingGraph();
    const a = await compile(spec);
    assert.equal(await compile(spec), a);
    assert.equal(await compile(trainingGraph().spec), a, 'an identical graph built again hits the cache');
    assert.notEqual(await compile(spec, { threads: 1 }), a, 'other options, other session');
  });

  it('symbolic dims accept different sizes in one compiled session', async () => {
    const compiled = await compile(trainingGraph().spec);
    for (const tokens of [1, 7, 64]) {
      const r = await compiled.run(feeds(tokens));
      assert.deepEqual([...r.loss!.dims], []);
      assert.deepEqual([...r.gEmb!.dims], [50, 16]);
      assert.ok(Number.isFinite((r.loss!.data as Float32Array)[0]));
    }
  });

  it('fetches a subset of outputs by name', async () => {
    const compiled = await compile(trainingGraph().spec);
    const r = await compiled.run(feeds(5), ['loss']);
    assert.deepEqual(Object.keys(r), ['loss']);
  });

  it('extra feeds are ignored', async () => {
    const compiled = await compile(trainingGraph().spec);
    const r = await compiled.run({ ...feeds(5), unrelated: f32({ data: Float64Array.of(1), dims: [1] }) });
    assert.ok('loss' in r);
  });
});

describe('runtime errors name the input, in one line', () => {
  const g = new Graph();
  const x = g.input('x', 'float32', [2, 3]);
  const a = g.input('a', 'float32', ['n', 3]);
  const b = g.input('b', 'float32', ['n', 3]);
  const spec = { graph: g, outputs: { y: op.add(op.sum(x), op.sum(op.mul(a, b))) } };
  const good = (): Record<string, HostTensor> => ({
    x: { data: new Float32Array(6), dims: [2, 3] },
    a: { data: new Float32Array(6), dims: [2, 3] },
    b: { data: new Float32Array(6), dims: [2, 3] },
  });
  const cases: [string, Record<string, HostTensor>, string][] = [
    ['missing input', { x: good().x!, a: good().a! }, 'missing input b (the graph needs: x, a, b)'],
    [
      'wrong dtype',
      { ...good(), x: { data: new Float64Array(6), dims: [2, 3] } },
      'input x: expected float32[2,3], got float64[2,3]',
    ],
    [
      'wrong static size',
      { ...good(), x: { data: new Float32Array(9), dims: [3, 3] } },
      'input x: expected float32[2,3], got float32[3,3]',
    ],
    [
      'wrong rank',
      { ...good(), x: { data: new Float32Array(6), dims: [6] } },
      'input x: expected float32[2,3], got float32[6]',
    ],
    [
      'symbolic size disagrees',
      { ...good(), b: { data: new Float32Array(9), dims: [3, 3] } },
      'input b: expected float32[n,3], got float32[3,3] (n is 2 in another input)',
    ],
    [
      'data does not fill dims',
      { ...good(), a: { data: new Float32Array(5), dims: [2, 3] } },
      'input a: 5 values do not fill dims [2,3]',
    ],
  ];
  for (const [label, input, message] of cases) {
    it(label, async () => {
      const compiled = await compile(spec);
      await assert.rejects(compiled.run(input), (e: unknown) => {
        assert.ok(e instanceof RuntimeError);
        assert.equal(e.message, message);
        return true;
      });
    });
  }

  it('outputs kept on the device need the webgpu provider', async () => {
    await assert.rejects(compile(spec, { deviceOutputs: ['y'] }), (e: unknown) => {
      assert.ok(e instanceof RuntimeError);
      assert.equal(e.message, 'outputs can stay on the device only with the webgpu provider, not cpu');
      return true;
    });
  });

  it('a failure inside onnxruntime is one line', async () => {
    const h = new Graph();
    const t = h.input('t', 'float32', [4, 2]);
    const ids = h.input('ids', 'int64', [3]);
    const compiled = await compile({ graph: h, outputs: { y: op.gather(t, ids) } });
    await assert.rejects(
      compiled.run({ t: { data: new Float32Array(8), dims: [4, 2] }, ids: i64([0, 9, 1]) }),
      (e: unknown) => {
        assert.ok(e instanceof RuntimeError);
        assert.match(e.message, /^onnxruntime: .*Gather/);
        assert.ok(!e.message.includes('\n'));
        return true;
      },
    );
  });
});
