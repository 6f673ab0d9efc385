/**
 * A suite's models trained side by side in child processes, one thread each, each intervention
 * sibling a job of its own once its model has trained, give the bytes of the same models trained one
 * after another in this process at one thread (each followed by its sibling): checkpoints,
 * intervention siblings, logs (but for tokens/s) and the manifest. A model or a sibling interrupted
 * side by side resumes to the same bytes, and a child's user-facing error arrives as that error.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PreshuffledWriter } from '../../src/data/preshuffled.js';
import type { MemberSchedule } from '../../src/train/member-schedule.js';
import { runSuite, type SuiteOptions } from '../../src/train/suite.js';
import { isPythiaError } from '../../src/util/errors.js';
import { pronounCorpus, sampleAt } from './support.js';

const [SEQ, B, STEPS] = [16, 4, 4];
const MODELS = ['nano-25k', 'nano-100k'];
const RUNS = [...MODELS, ...MODELS.map((m) => `${m}-intervention`)];
let work: string;
let tokenizerPath: string;
let data: string;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'pythia-side-by-side-'));
  const corpus = await pronounCorpus(work);
  tokenizerPath = corpus.tokenizerPath;
  data = join(work, 'data');
  // The training batches, then one held-out validation batch.
  const writer = PreshuffledWriter.create(data, { vocabSize: 300, seqLength: SEQ });
  for (let s = 0; s < (STEPS + 1) * B; s++) writer.addSample(sampleAt(corpus.stream, s, SEQ));
  await writer.finish();
});

after(() => rmSync(work, { recursive: true, force: true }));

function suite(out: string, extra: Partial<SuiteOptions>): SuiteOptions {
  return {
    preset: 'nano',
    only: MODELS,
    data: { prefix: data, preshuffled: true },
    outDir: out,
    tokenizerPath,
    tokenizerVocab: 300,
    overrides: {
      seqLength: SEQ,
      trainBatchSize: B,
      trainIters: STEPS,
      checkpointFactor: 2,
      extraSaveIters: [0, STEPS - 1],
    },
    evalIters: 1,
    interventionFrom: { step: 2 },
    ...extra,
  };
}

/** Every file of every step folder of a run, and its log without the timing. */
function runBytes(modelDir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const step of readdirSync(modelDir).filter((f) => f.startsWith('step')))
    for (const f of readdirSync(join(modelDir, step))) files.set(`${step}/${f}`, readFileSync(join(modelDir, step, f)));
  const log = readFileSync(join(modelDir, 'log.jsonl'), 'utf8').trim().split('\n');
  const timeless = log.map((l) => JSON.stringify({ ...JSON.parse(l), tokens_per_s: undefined }));
  files.set('log.jsonl', Buffer.from(timeless.join('\n')));
  return files;
}

function assertSameRuns(a: string, b: string): void {
  for (const run of RUNS) {
    const [x, y] = [runBytes(join(a, run)), runBytes(join(b, run))];
    assert.deepEqual([...x.keys()].sort(), [...y.keys()].sort(), `${run}: the same files`);
    assert.ok(
      x.has(`step${STEPS}/model.safetensors`) && x.has(`step${STEPS}/optimizer.safetensors`),
      `${run}: checkpoints compared`,
    );
    for (const [f, bytes] of x) assert.ok(bytes.equals(y.get(f)!), `${run}/${f} differs`);
  }
}

test('side by side at 1 thread each: the bytes of one after another at 1 thread; an interrupted model resumes to them', async () => {
  const alone = join(work, 'alone');
  const together = join(work, 'together');
  const schedules: MemberSchedule[] = [];
  const manifestAlone = await runSuite(suite(alone, { threads: 1, onSchedule: (s) => schedules.push(s) }));
  const seen = new Set<string>();
  const events: string[] = [];
  const manifestTogether = await runSuite(
    suite(together, {
      threads: 1,
      parallelMembers: 2,
      onSchedule: (s) => schedules.push(s),
      onProgress: (model, p) => {
        seen.add(model.name);
        if (p.step === STEPS) events.push(`${model.name} trained`);
      },
      onInterventionStart: (start) => events.push(`${start.name} ${start.status} from ${start.baseline}`),
    }),
  );
  assert.deepEqual(
    schedules.map((s) => [s.parallel, s.sideBySide.map((m) => m.name), s.oneByOne.map((m) => m.name)]),
    [
      [1, [], MODELS],
      [2, ['nano-100k', 'nano-25k'], []],
    ],
  );
  assert.match(
    schedules[1]!.description,
    /side by side, 2 at a time, 1 thread each, each intervention sibling a job of its own .*\(--parallel-members 2\)/,
  );
  assert.deepEqual([...seen].sort(), [...RUNS].sort(), 'progress of every run, siblings included');
  for (const model of MODELS) {
    const [trained, started] = [`${model} trained`, `${model}-intervention fresh from ${model}`];
    assert.ok(events.includes(started), `${started} in ${events.join('; ')}`);
    assert.ok(events.indexOf(trained) < events.indexOf(started), `${model} trained before its sibling started`);
  }
  assert.deepEqual(manifestTogether, manifestAlone);
  assertSameRuns(together, alone);

  // Interrupted after step 3: its last checkpoint gone, as if killed while writing it.
  rmSync(join(together, 'nano-100k', `step${STEPS}`), { recursive: true });
  const starts: string[] = [];
  const resumed = await runSuite(
    suite(together, {
      threads: 1,
      parallelMembers: 2,
      onModelStart: (model, status, step) => starts.push(`${model.name} ${status} ${step}`),
    }),
  );
  assert.deepEqual(starts.sort(), [`nano-100k resume ${STEPS - 1}`, `nano-25k done ${STEPS}`]);
  assert.deepEqual(resumed, manifestAlone);
  assertSameRuns(together, alone);

  // A finished model whose sibling was interrupted: only the sibling trains, from its last checkpoint.
  const sibling = join(together, 'nano-25k-intervention');
  rmSync(join(sibling, `step${STEPS}`), { recursive: true });
  const again: string[] = [];
  const trained = new Set<string>();
  const resumedSibling = await runSuite(
    suite(together, {
      threads: 1,
      parallelMembers: 2,
      onModelStart: (model, status, step) => again.push(`${model.name} ${status} ${step}`),
      onInterventionStart: (start) => again.push(`${start.name} ${start.status} ${start.step}`),
      onProgress: (model) => trained.add(model.name),
    }),
  );
  assert.deepEqual(again.sort(), [
    `nano-100k done ${STEPS}`,
    `nano-100k-intervention done ${STEPS}`,
    `nano-25k done ${STEPS}`,
    `nano-25k-intervention resume ${STEPS - 1}`,
  ]);
  assert.deepEqual([...trained], ['nano-25k-intervention']);
  assert.deepEqual(resumedSibling, manifestAlone);
  assertSameRuns(together, alone);
});

test("a worker's user-facing error stops the suite as that error, named so the CLI prints one line", async () => {
  const out = join(work, 'mixed');
  await runSuite(suite(out, { only: ['nano-100k'], threads: 1, interventionFrom: undefined, evalIters: 0 }));
  for (const interventionFrom of [undefined, { step: 2 }]) {
    const longer = suite(out, { threads: 1, parallelMembers: 2, interventionFrom, evalIters: 0 });
    longer.overrides = { ...longer.overrides, trainIters: STEPS + 1 };
    await assert.rejects(runSuite(longer), (e: Error) => {
      assert.ok(isPythiaError(e), `${e.name}: ${e.message}`);
      assert.equal(e.name, 'ConfigError');
      assert.match(e.message, /nano-100k holds a run with another recipe/);
      return true;
    });
    // With siblings: the failed model's sibling, waiting for it, never started.
    assert.ok(!existsSync(join(out, 'nano-100k-intervention')));
  }
});
