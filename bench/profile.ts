/**
 * `npm run bench:profile -- [shape]`: where a training step's time goes, from onnxruntime's own
 * per-node profile of the step graph (forward, backward and the loss; not the optimizer, which runs
 * in JavaScript). Prints the time by operator type and the most expensive nodes, as shares of the
 * kernel time of the profiled steps. Shapes: the labels of bench/common.ts (default pythia-70m).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrainStep } from '../src/model/train-step.js';
import { benchSetupThreads, configFor, randomParams, randomTokens, SHAPES, table } from './common.js';

interface TraceEvent {
  cat: string;
  name: string;
  dur: number;
  args?: { op_name?: string };
}

const label = process.argv[2] ?? 'pythia-70m';
const shape = SHAPES.find((s) => s.label === label);
if (!shape) {
  console.error(`bench:profile: unknown shape ${label} (one of ${SHAPES.map((s) => s.label).join(', ')})`);
  process.exit(2);
}
const threads = benchSetupThreads(`bench:profile ${label}`);
const config = configFor(shape);
const params = randomParams(config);
const tokens = Int32Array.from(randomTokens(shape.B * (shape.T + 1), shape.V), Number);

const dir = mkdtempSync(join(tmpdir(), 'pythia-profile-'));
const step = await TrainStep.create(config, { batch: shape.B, seq: shape.T }, { threads, profile: join(dir, 'step') });
const steps = 3;
const t0 = performance.now();
for (let i = 0; i < steps + 1; i++) await step.run(params, tokens);
const wall = (performance.now() - t0) / (steps + 1);
step.endProfiling();
const file = readdirSync(dir).find((f) => f.endsWith('.json'));
if (!file) throw new Error(`onnxruntime wrote no profile in ${dir}`);
const events = JSON.parse(readFileSync(join(dir, file), 'utf8')) as TraceEvent[];
rmSync(dir, { recursive: true, force: true });

const kernels = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
const total = kernels.reduce((a, e) => a + e.dur, 0);
const byOp = new Map<string, { us: number; calls: number }>();
const byNode = new Map<string, { op: string; us: number }>();
for (const e of kernels) {
  const op = e.args?.op_name ?? '?';
  const o = byOp.get(op) ?? { us: 0, calls: 0 };
  o.us += e.dur;
  o.calls += 1;
  byOp.set(op, o);
  const node = e.name.replace(/_kernel_time$/, '');
  const n = byNode.get(node) ?? { op, us: 0 };
  n.us += e.dur;
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
