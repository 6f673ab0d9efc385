/**
 * The package as users get it: `npm pack` (of the built tree), the tarball unpacked into a fresh
 * project's node_modules/pythia-ts beside links to the declared dependencies only (nothing is
 * fetched, nothing compiled), then docs/api.md's quick-start example, importing only 'pythia-ts',
 * run end to end on a checkpoint with a tokenizer, and type-checked against the package's
 * declarations. Its numbers must be the ones the repository's own build gives.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { GPTNeoX } from '../../src/index.js';
import { repoRoot } from '../support/paths.js';
import { writeTextCheckpoint } from './text-checkpoint.js';

const work = mkdtempSync(join(tmpdir(), 'pythia-package-'));
after(() => rmSync(work, { recursive: true, force: true }));
const project = join(work, 'project');
const modelDir = join(work, 'model');
let packed: string[] = [];

/** The first ```js block after the "tested by test/api/package.test.ts" marker in docs/api.md. */
function quickStart(): string {
  const doc = readFileSync(join(repoRoot, 'docs/api.md'), 'utf8');
  const m = /<!-- tested by test\/api\/package\.test\.ts -->\s*```js\n([\s\S]*?)```/.exec(doc);
  assert.ok(m, 'docs/api.md has no tested quick-start block');
  return m[1]!;
}

before(async () => {
  const pack = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  assert.equal(pack.status, 0, pack.stderr);
  const [info] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
  packed = info!.files.map((f) => f.path);
  const installed = join(project, 'node_modules', 'pythia-ts');
  mkdirSync(installed, { recursive: true });
  const untar = spawnSync('tar', ['-xzf', join(work, info!.filename), '-C', installed, '--strip-components=1'], {
    encoding: 'utf8',
  });
  assert.equal(untar.status, 0, untar.stderr);
  const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  for (const dep of Object.keys(manifest.dependencies)) {
    const link = join(project, 'node_modules', dep);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(join(repoRoot, 'node_modules', dep), link, 'dir');
  }
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'uses-pythia', private: true, type: 'module' }));
  writeFileSync(join(project, 'example.mjs'), quickStart());
  await writeTextCheckpoint(modelDir, work);
});

test('the tarball holds the built library, its declarations and docs, and no tests, benchmarks or fixtures', () => {
  for (const f of [
    'package.json',
    'README.md',
    'docs/api.md',
    'dist/src/index.js',
    'dist/src/index.d.ts',
    'dist/src/cli/main.js',
  ])
    assert.ok(packed.includes(f), `${f} is not packed`);
  assert.deepEqual(
    packed.filter((f) => /(^|\/)(test|bench|fixtures)\//.test(f)),
    [],
  );
});

test("the quick start, importing only 'pythia-ts' from the installed tarball, loads, generates and scores as the repository does", async () => {
  const run = spawnSync(process.execPath, ['example.mjs', modelDir], { cwd: project, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  const model = await GPTNeoX.fromPretrained(modelDir);
  try {
    const text = await model.generate('The cat', { maxNewTokens: 8 });
    const [a, b] = await model.score([
      { context: 'The cat sat on the', continuation: ' mat' },
      { context: 'The cat sat on the', continuation: ' dog' },
    ]);
    assert.deepEqual(lines.slice(1), [JSON.stringify(text), `${a!.logprob} ${b!.logprob}`]);
    assert.ok(text.startsWith('The cat'));
  } finally {
    await model.dispose();
  }
});

test("a TypeScript project type-checks against the package's declarations", () => {
  writeFileSync(
    join(project, 'check.ts'),
    [
      "import { GPTNeoX, Suite, TrainingOrder, train, resolveCheckpoint, type ScoreResult } from 'pythia-ts';",
      "const model: GPTNeoX = await GPTNeoX.fromPretrained('EleutherAI/pythia-70m-deduped@step3000', { threads: 2 });",
      "const text: string = await model.generate('Hello', { maxNewTokens: 4 });",
      'const ids: number[][] = await model.generate([[1, 2]], { temperature: 0.8, topK: 40, seed: 1 });',
      "const scores: ScoreResult[] = await model.score([{ context: 'a', continuation: ' b' }]);",
      "const steps: number[] = Suite.open('suite').steps('nano-25k');",
      "const order = await TrainingOrder.open({ data: 'pile', batchSize: 1024 });",
      'const batch: number[][] = order.batch(0);',
      "const result = await train({ preset: 'nano-25k', data: 'x', outDir: 'y' });",
      "console.log(text, ids, scores, steps, batch, result.finalStep, resolveCheckpoint('x').dir);",
      '',
    ].join('\n'),
  );
  const tsc = join(repoRoot, 'node_modules/typescript/bin/tsc');
  const args = [
    '--noEmit',
    '--strict',
    '--skipLibCheck',
    '--target',
    'ES2022',
    '--module',
    'NodeNext',
    '--moduleResolution',
    'NodeNext',
    '--types',
    'node',
    '--typeRoots',
    join(repoRoot, 'node_modules/@types'),
    'check.ts',
  ];
  const check = spawnSync(process.execPath, [tsc, ...args], { cwd: project, encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
});
