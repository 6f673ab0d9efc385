/** A task for worker.test.ts: runs a matmul graph several times, reporting after each run. */
import { Graph } from '../../src/graph/graph.js';
import * as op from '../../src/graph/ops.js';
import { compile } from '../../src/runtime/session.js';
import type { TaskContext } from '../../src/runtime/worker.js';
import { ConfigError } from '../../src/util/errors.js';

export async function run(input: { n: number; runs: number; fail?: boolean }, context: TaskContext<number>): Promise<number> {
  if (input.fail) throw new ConfigError('task refused its input');
  const g = new Graph();
  const a = g.input('a', 'float32', [input.n, input.n]);
  const s = op.sum(op.matmul(a, a));
  const compiled = await compile({ graph: g, outputs: { s } }, { threads: 1 });
  const data = new Float32Array(input.n * input.n).fill(1);
  let last = 0;
  for (let i = 0; i < input.runs && !context.stopRequested(); i++) {
    last = ((await compiled.run({ a: { data, dims: [input.n, input.n] } })).s!.data as Float32Array)[0]!;
    context.report(i + 1);
  }
  return last;
}
