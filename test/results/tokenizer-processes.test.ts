/**
 * Evaluating many checkpoints of one suite keeps one tokenizer process, not one per checkpoint:
 * every checkpoint folder carries its own copy of the same tokenizer.json, and a loaded tokenizer
 * keeps an encoding child process alive for the evaluation.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { evaluate } from '../../src/results/evaluate.js';
import { makeWorld, writeCheckpoint, writeTasks } from '../eval/support.js';

const dir = mkdtempSync(join(tmpdir(), 'pythia-tokenizer-processes-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The tokenizer processes this test's own process has started and not yet ended. */
function tokenizerChildren(): number {
  const out = execFileSync('ps', ['-o', 'args=', '--ppid', String(process.pid)], { encoding: 'utf8' });
  return out.split('\n').filter((line) => line.includes('tokenizer-process')).length;
}

test('four checkpoints with copies of one tokenizer.json share one tokenizer process', async () => {
  const world = await makeWorld(dir);
  const tasks = writeTasks(dir);
  const checkpoints = [1, 2, 3, 4].map((i) => join(dir, `model-${i}`));
  for (const [i, checkpoint] of checkpoints.entries()) await writeCheckpoint(world, checkpoint, i + 1);
  const before = tokenizerChildren();
  await evaluate({ sources: checkpoints, tasks: [tasks.choice!], db: join(dir, 'results.duckdb'), threads: 1 });
  assert.equal(tokenizerChildren() - before, 1);
});
