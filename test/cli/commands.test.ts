/** The command line as users expect it: one spelling per setting, stops and hints, JSON summaries, devices. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pipelineProgress } from '../../src/cli/commands/run.js';
import { runsProgress, trainingProgress } from '../../src/cli/progress.js';
import { IndexedDatasetWriter } from '../../src/data/indexed-dataset.js';
import { nanoModelPresets } from '../../src/train/recipes.js';
import { fixtureDir, repoRoot } from '../support/paths.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
const model = join(fixtureDir('parallel-r25'), 'model');
let work: string;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'pythia-commands-'));
  const writer = IndexedDatasetWriter.create(join(work, 'docs'), { vocabSize: 64 });
  for (let d = 0; d < 60; d++) writer.add(Array.from({ length: 5 + (d % 7) }, (_, t) => 2 + ((d * 5 + t) % 60)));
  await writer.finish();
});
after(() => rmSync(work, { recursive: true, force: true }));

/** stderr's lines that are errors (`pythia: ...`) or stack frames. */
const errorLines = (stderr: string): string[] =>
  stderr
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('pythia:') || l.includes('    at '));

test('pythia train without --preset, --config or --init-from refuses with a one-line hint', () => {
  const r = run('train', '--data', join(work, 'docs'), '--out', join(work, 'x'));
  assert.equal(r.status, 1);
  assert.deepEqual(errorLines(r.stderr), [
    'pythia: say what to train: --preset <name> (e.g. nano-25k, pythia-70m), --config <file.yml> or --init-from <checkpoint>',
  ]);
});

test("pythia train --split: GPT-NeoX's validation data, progress lines off a terminal, a JSON summary", () => {
  const r = run(
    'train',
    '--preset',
    'nano-25k',
    '--data',
    join(work, 'docs'),
    '--split',
    '8,2',
    '--out',
    join(work, 'split'),
    '--seq-length',
    '8',
    '--train-batch-size',
    '2',
    '--train-iters',
    '4',
    '--checkpoint-factor',
    '2',
    '--extra-save-iters',
    '0',
    '--eval-iters',
    '1',
    '--eval-interval',
    '2',
    '--threads',
    '1',
    '--vocab-file',
    join(fixtureDir('parallel-r25'), 'model', 'config.json').replace('config.json', 'missing.json'),
    '--json',
  );
  // --vocab-file is the alias of --tokenizer: a missing file is named in one line.
  assert.equal(r.status, 1);
  assert.match(errorLines(r.stderr)[0]!, /missing\.json/);
  const ok = run(
    'train',
    '--preset',
    'nano-25k',
    '--data',
    join(work, 'docs'),
    '--split',
    '8,2',
    '--out',
    join(work, 'split'),
    '--seq-length',
    '8',
    '--train-batch-size',
    '2',
    '--train-iters',
    '4',
    '--checkpoint-factor',
    '2',
    '--extra-save-iters',
    '0',
    '--eval-iters',
    '1',
    '--eval-interval',
    '2',
    '--threads',
    '1',
    '--json',
  );
  assert.equal(ok.status, 0, ok.stderr);
  const summary = JSON.parse(ok.stdout);
  assert.equal(summary.finalStep, 4);
  assert.deepEqual(summary.checkpoints, [0, 2, 4]);
  assert.equal(typeof summary.finalValLoss, 'number');
  // stderr is a pipe here: progress comes as lines, and the last step always gets one.
  assert.match(
    ok.stderr,
    /^pythia train: nano-25k: step 4\/4 \(100\.0%\), loss \d+\.\d{4}, [\d,]+ tokens\/s, ETA 0s$/m,
  );
  const log = readFileSync(join(work, 'split/nano-25k/log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    log.filter((e) => e.val_loss !== undefined).map((e) => e.step),
    [0, 2, 4],
  );
});

test('progress lines: at most one per interval, always the last step, with loss, tokens/s and ETA', () => {
  const lines: string[] = [];
  const p = trainingProgress('pythia train', 'm', { tty: false, everySeconds: 3600, write: (l) => lines.push(l) });
  for (let step = 1; step <= 10; step++) p.update({ step, trainIters: 10, loss: 2.5, tokensPerSecond: 12345.6 });
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^pythia train: m: step 1\/10 \(10\.0%\), loss 2\.5000, 12,346 tokens\/s, ETA \d+s\n$/);
  assert.match(lines[1]!, /step 10\/10 \(100\.0%\).*ETA 0s\n$/);
});

test('progress of models side by side: lines for each model, and lines between them', () => {
  const lines: string[] = [];
  const p = runsProgress('pythia suite', { tty: false, everySeconds: 3600, write: (l) => lines.push(l) });
  p.log('pythia suite: a, b side by side\n');
  for (let step = 1; step <= 2; step++)
    for (const name of ['a', 'b']) p.update(name, { step, trainIters: 2, loss: 1, tokensPerSecond: 10 });
  p.stop();
  assert.deepEqual(
    lines.map((l) => l.replace(/, ETA .*/, '')),
    [
      'pythia suite: a, b side by side\n',
      'pythia suite: a: step 1/2 (50.0%), loss 1.0000, 10 tokens/s\n',
      'pythia suite: b: step 1/2 (50.0%), loss 1.0000, 10 tokens/s\n',
      'pythia suite: a: step 2/2 (100.0%), loss 1.0000, 10 tokens/s\n',
      'pythia suite: b: step 2/2 (100.0%), loss 1.0000, 10 tokens/s\n',
    ],
  );
});

test('pythia run progress lines: the training schedule, and the share of runs side by side added up', () => {
  const lines: string[] = [];
  const p = pipelineProgress({ tty: false, everySeconds: 0, write: (l) => lines.push(l) });
  const [small, large] = nanoModelPresets();
  p.onEvent({ type: 'stage', stage: 'synth', status: 'skip', detail: 'there' });
  p.onEvent({ type: 'stage', stage: 'train', status: 'start' });
  p.onEvent({ type: 'train-schedule', description: 'a, b side by side' });
  const progress = { trainIters: 10, loss: 2, lr: 0, gradNorm: 0, tokensPerSecond: 1 };
  p.onEvent({ type: 'train', model: large!, run: 0, runs: 2, progress: { ...progress, step: 5 } });
  p.onEvent({ type: 'train', model: small!, run: 1, runs: 2, progress: { ...progress, step: 10 } });
  // synth 10%, then train's 55% times (0.5 + 1) / 2.
  assert.deepEqual(lines.slice(-3), [
    'pythia run: train: a, b side by side\n',
    'pythia run: [24%] train: nano-100k step 5/10, loss 2.000\n',
    'pythia run: [51%] train: nano-25k step 10/10, loss 2.000\n',
  ]);
});

test('pythia run progress lines: a study between eval cells keeps the eval share reached', () => {
  const lines: string[] = [];
  const p = pipelineProgress({ tty: false, everySeconds: 0, write: (l) => lines.push(l) });
  for (const stage of ['synth', 'train'] as const) {
    p.onEvent({ type: 'stage', stage, status: 'start' });
    p.onEvent({ type: 'stage', stage, status: 'done', seconds: 1 });
  }
  p.onEvent({ type: 'stage', stage: 'eval', status: 'start' });
  p.onEvent({ type: 'eval', event: { type: 'plan', cells: 10, skipped: 0, checkpoints: 2 } });
  p.onEvent({
    type: 'eval',
    event: {
      type: 'cell',
      cell: { model: 'm', step: 8, task: 'qa', shots: 0 },
      index: 5,
      total: 10,
      aggregates: [],
      seconds: 1,
    },
  });
  p.onEvent({ type: 'eval', event: { type: 'study', study: 'memorization', model: 'm', step: 8 } });
  // synth 10% and train 55% of the bar, then half of eval's 30%.
  assert.deepEqual(lines.slice(-3), [
    'pythia run: [65%] eval: 10 cells, 0 already there\n',
    'pythia run: [80%] eval: m step 8 qa 0-shot (5/10)\n',
    'pythia run: [80%] eval: memorization: m step 8\n',
  ]);
});

test('pythia generate stops at the end-of-text token unless --ignore-eos; --top-p samples', () => {
  const g = JSON.parse(readFileSync(join(fixtureDir('parallel-r25'), 'generate.json'), 'utf8'));
  // A copy of the fixture whose eos_token_id is the third generated token.
  const copy = join(work, 'eos-model');
  cpSync(model, copy, { recursive: true });
  const config = JSON.parse(readFileSync(join(copy, 'config.json'), 'utf8'));
  const eos = g.hf_generate[0][g.prompt.length + 2];
  writeFileSync(join(copy, 'config.json'), JSON.stringify({ ...config, eos_token_id: eos }));
  writeFileSync(join(work, 'p.json'), JSON.stringify([g.prompt]));
  const stopped = run('generate', copy, '--tokens', join(work, 'p.json'), '--max-new-tokens', String(g.max_new_tokens));
  assert.equal(stopped.status, 0, stopped.stderr);
  assert.deepEqual(JSON.parse(stopped.stdout), [g.hf_generate[0].slice(0, g.prompt.length + 3)]);
  const full = run(
    'generate',
    copy,
    '--tokens',
    join(work, 'p.json'),
    '--max-new-tokens',
    String(g.max_new_tokens),
    '--ignore-eos',
  );
  assert.deepEqual(JSON.parse(full.stdout), g.hf_generate);
  const sampled = (seed: string) =>
    run(
      'generate',
      model,
      '--tokens',
      join(work, 'p.json'),
      '--max-new-tokens',
      '6',
      '--temperature',
      '1',
      '--top-p',
      '0.9',
      '--seed',
      seed,
    ).stdout;
  assert.equal(sampled('4'), sampled('4'));
  assert.equal(run('generate', model, '--tokens', join(work, 'p.json'), '--top-p', '1.5').status, 1);
});

test('pythia generate --text takes one prompt and is repeated for several', () => {
  const r = run('generate', model, '--text', 'a b', '--text', 'c');
  // The fixture has no tokenizer.json: the error is about that, after both prompts were taken.
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^pythia: --text needs a tokenizer/);
  const help = run('generate', '--help').stdout;
  assert.match(help, /--text <prompt>/);
  assert.match(help, /--ignore-eos/);
  assert.match(help, /--top-p <p>/);
  assert.match(help, /--device <device>/);
});

test("pythia inspect --json uses Hugging Face's config keys", () => {
  const info = JSON.parse(run('inspect', model, '--json').stdout);
  assert.equal(info.config.model_type, 'gpt_neox');
  assert.equal(typeof info.config.num_hidden_layers, 'number');
  assert.equal(info.config.vocab_size, 211);
  assert.equal(info.config.numLayers, undefined);
});

test('--device names a provider; one that cannot start here is a one-line error', () => {
  writeFileSync(join(work, 't.json'), '[[1, 2, 3]]');
  assert.equal(
    run('forward', model, '--tokens', join(work, 't.json'), '--out', join(work, 'o.safetensors'), '--device', 'tpu')
      .status,
    1,
  );
  const cuda = run(
    'forward',
    model,
    '--tokens',
    join(work, 't.json'),
    '--out',
    join(work, 'o.safetensors'),
    '--device',
    'cuda',
  );
  if (cuda.status !== 0) assert.deepEqual(errorLines(cuda.stderr).length, 1, cuda.stderr);
  if (cuda.status !== 0) assert.match(cuda.stderr, /^pythia: --device cuda: /m);
  const cpu = run(
    'forward',
    model,
    '--tokens',
    join(work, 't.json'),
    '--out',
    join(work, 'o.safetensors'),
    '--device',
    'cpu',
  );
  assert.equal(cpu.status, 0, cpu.stderr);
});

test('pythia batch: --seq-length and --train-batch-size as in pythia train; the old spellings still work', () => {
  const common = ['batch', '--data', join(work, 'docs'), '--train-iters', '5', '--step', '2', '--json'];
  const now = run(...common, '--seq-length', '6', '--train-batch-size', '3');
  assert.equal(now.status, 0, now.stderr);
  const rows = JSON.parse(now.stdout);
  assert.equal(rows.length, 3);
  assert.equal(rows[0].length, 7);
  assert.equal(run(...common, '--seq-len', '6', '--batch-size', '3').stdout, now.stdout);
  assert.equal(run(...common, '--seq-length', '6', '--seq-len', '7').status, 1);
  assert.doesNotMatch(run('batch', '--help').stdout, /--seq-len\b|--batch-size\b/);
});

test('--json summaries of data tokenize and data dedup', () => {
  const corpus = join(work, 'c.jsonl');
  writeFileSync(
    corpus,
    `${['the cat sat on the mat today', 'the cat sat on the mat today', 'a different text entirely here']
      .map((t) => JSON.stringify({ text: t }))
      .join('\n')}\n`,
  );
  const dedup = run('data', 'dedup', '--input', corpus, '--out', join(work, 'kept.jsonl'), '--json');
  assert.equal(dedup.status, 0, dedup.stderr);
  const d = JSON.parse(dedup.stdout);
  assert.equal(d.documents, 3);
  assert.equal(d.removed, 1);
  const tokenizer = join(work, 'tok.json');
  assert.equal(run('tokenizer', 'train', '--input', corpus, '--vocab-size', '280', '--out', tokenizer).status, 0);
  const tok = run(
    'data',
    'tokenize',
    '--input',
    corpus,
    '--vocab-file',
    tokenizer,
    '--out',
    join(work, 'tok'),
    '--append-eod',
    '--json',
  );
  assert.equal(tok.status, 0, tok.stderr);
  const t = JSON.parse(tok.stdout);
  assert.equal(t.documents, 3);
  assert.equal(t.eodAppended, 0);
  assert.equal(t.bin, `${join(work, 'tok')}.bin`);
});

test('--json summaries of synth and suite', () => {
  const synth = run('synth', '--out', join(work, 'synth'), '--documents', '40', '--json');
  assert.equal(synth.status, 0, synth.stderr);
  const s = JSON.parse(synth.stdout);
  assert.equal(s.documents, 40);
  assert.ok(s.files.includes('tokenizer.json'));
  const suite = run(
    'suite',
    '--preset',
    'nano',
    '--models',
    'nano-25k',
    '--data',
    join(work, 'docs'),
    '--out',
    join(work, 'suite'),
    '--seq-length',
    '8',
    '--train-batch-size',
    '2',
    '--train-iters',
    '2',
    '--eval-iters',
    '0',
    '--threads',
    '1',
    '--json',
  );
  assert.equal(suite.status, 0, suite.stderr);
  const m = JSON.parse(suite.stdout);
  assert.equal(m.suite, 'nano');
  assert.deepEqual(
    m.models.map((r: { name: string }) => r.name),
    ['nano-25k'],
  );
  assert.equal(m.batchSha256.length, 2);
  assert.deepEqual(m, JSON.parse(readFileSync(join(work, 'suite/suite.json'), 'utf8')));
  assert.match(suite.stderr, /^pythia suite: nano-25k: step 2\/2 \(100\.0%\)/m);
});
