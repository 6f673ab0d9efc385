/**
 * The composite check: a small pre-norm transformer block (causal multi-head attention, layer
 * norm, gelu MLP, residuals) under a mean cross-entropy loss, weights fed as inputs. Every weight's
 * gradient and the input's are checked against central differences in float64.
 */
import { describe, it } from 'node:test';
import type { Graph, Tensor } from '../../src/graph/graph.js';
import * as op from '../../src/graph/ops.js';
import { checkVjp, i64 } from '../support/check.js';
import { Rng } from '../support/random.js';
import type { Nd } from '../support/reference.js';

const [B, T, D, H, V, F] = [2, 3, 4, 2, 5, 6]; // batch, sequence, width, heads, vocabulary, MLP width
const HD = D / H;

function heads(t: Tensor): Tensor {
  return op.transpose(op.reshape(t, [B, T, H, HD]), [0, 2, 1, 3]);
}

function block(x: Record<string, Tensor>, g: Graph): Tensor {
  const causal = g.initializer(
    'causal',
    Uint8Array.from({ length: T * T }, (_, i) => (i % T <= Math.floor(i / T) ? 1 : 0)),
    [T, T],
    'bool',
  );
  const h = op.layerNorm(x.x!, x.ln1w!, x.ln1b!, 1e-5);
  const qkv = op.add(op.matmul(h, x.wqkv!), x.bqkv!);
  const [q, k, v] = [0, 1, 2].map((i) => heads(op.slice(qkv, -1, i * D, (i + 1) * D))) as [Tensor, Tensor, Tensor];
  const scores = op.where(causal, op.matmul(q, k, { transB: true, alpha: 1 / Math.sqrt(HD) }), -1e4);
  const attended = op.matmul(op.softmax(scores, -1), v);
  const merged = op.reshape(op.transpose(attended, [0, 2, 1, 3]), [B, T, D]);
  const resid = op.add(x.x!, op.matmul(merged, x.wo!));
  const mlp = op.matmul(op.gelu(op.matmul(op.layerNorm(resid, x.ln2w!, x.ln2b!, 1e-5), x.w1!)), x.w2!);
  const out = op.add(resid, mlp);
  const logits = op.matmul(op.reshape(out, [B * T, D]), x.unembed!, { transB: true });
  return op.mean(op.crossEntropy(logits, x.labels!));
}

describe('composite: attention block with layer norm, gelu and cross-entropy', () => {
  it('every gradient matches central differences (float64)', async () => {
    const rng = new Rng(71);
    const w = (dims: number[], scale = 0.5): Nd => rng.nd(dims, 0.2 * scale, 1.5 * scale);
    await checkVjp({
      wrt: {
        x: w([B, T, D], 1),
        ln1w: w([D], 1),
        ln1b: w([D], 0.2),
        wqkv: w([D, 3 * D]),
        bqkv: w([3 * D], 0.2),
        wo: w([D, D]),
        ln2w: w([D], 1),
        ln2b: w([D], 0.2),
        w1: w([D, F]),
        w2: w([F, D]),
        unembed: w([V, D]),
      },
      fixed: { labels: i64([1, 4, 0, 2, 2, 3]) },
      build: block,
      tol: { rtol: 1e-6, atol: 1e-8 },
    });
  });
});
