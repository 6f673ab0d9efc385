/**
 * `npm run bench:profile -- [shape]`: where a training step's time goes, from onnxruntime's own
 * per-node profile of the step graph (forward, backward and the loss; not the optimizer, which runs
 * in JavaScript). Prints the time by operator type and the most expensive nodes, as shares of the
 * kernel time of the profiled steps. Shapes: the labels of bench/common.ts (default pythia-70m).
 */
import { benchSetupThreads, SHAPES, table } from './common.js';
import { profileTrainSteps } from './kernels.js';

const label = process.argv[2] ?? 'pythia-70m';
const shape = SHAPES.find((s) => s.label === label);
if (!shape) {
  console.error(`bench:profile: unknown shape ${label} (one of ${SHAPES.map((s) => s.label).join(', ')})`);
  process.exit(2);
}
const threads = benchSetupThreads(`bench:profile ${label}`);
const steps = 3;
const profile = await profileTrainSteps(shape, threads, steps + 1);
const wall = profile.wallMs;
const kernels = profile.calls;
const total = kernels.reduce((a, e) => a + e.us, 0);
const byOp = new Map<string, { us: number; calls: number }>();
const byNode = new Map<string, { op: string; us: number }>();
for (const { op, node, us } of kernels) {
  const o = byOp.get(op) ?? { us: 0, calls: 0 };
  o.us += us;
  o.calls += 1;
  byOp.set(op, o);
  const n = byNode.get(node) ?? { op, us: 0 };
  n.us += us;
  byNode.set(node, n);
}
const perStep = (us: number): string => (us / 1000 / (steps + 1)).toFixed(2);
const share = (us: number): string => `${((100 * us) / total).toFixed(1)}%`;
console.log(
  `step wall ${wall.toFixed(1)} ms, kernels ${perStep(total)} ms per step, ${kernels.length / (steps + 1)} kernel calls per step\n`,
);
const ops = [...byOp.entries()].sort((a, b) => b[1].us - a[1].us);
console.log(
  table(
    ['op', 'ms/step', 'share', 'calls/step'],
    ops.map(([op, o]) => [op, perStep(o.us), share(o.us), o.calls / (steps + 1)]),
  ),
);
console.log('');
const nodes = [...byNode.entries()].sort((a, b) => b[1].us - a[1].us).slice(0, 25);
console.log(
  table(
    ['node', 'op', 'ms/step', 'share'],
    nodes.map(([name, n]) => [name.slice(0, 60), n.op, perStep(n.us), share(n.us)]),
  ),
);
