/**
 * Evaluating a checkpoint on each kind of task, against the model's own log-softmax and greedy
 * decoding computed here separately from full forward passes (no scorer, no cache, float64 sums).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { drawDemonstrations, fewshotPrompt } from '../../src/eval/fewshot.js';
import { buildTask } from '../../src/eval/lm-eval/build.js';
import { builtinTask, evalSplit, fewshotSplit } from '../../src/eval/lm-eval/tasks.js';
import { runTask } from '../../src/eval/run-task.js';
import { readTask } from '../../src/eval/tasks.js';
import { forward, tokenMatrix } from '../../src/model/forward.js';
import type { Params } from '../../src/model/params.js';
import { golden, goldenSplit } from './lm-eval-golden.js';
import { type EvalWorld, makeWorld, randomParams, writeJsonl, writeTasks } from './support.js';

let world: EvalWorld;
let params: Params;
let tasks: Record<string, string>;
const dir = mkdtempSync(join(tmpdir(), 'pythia-run-task-'));
before(async () => {
  world = await makeWorld(dir);
  params = randomParams(world.config, 7);
  tasks = writeTasks(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** log p(tokens[from..] | tokens[..from]) and whether each is the argmax, from one full forward pass. */
async function reference(tokens: readonly number[], from: number): Promise<{ ll: number; greedy: boolean }> {
  const V = world.config.vocabSize;
  const { logits } = await forward(world.config, params, tokenMatrix([tokens.slice(0, -1)], V), 1);
  let ll = 0;
  let greedy = true;
  for (let t = from - 1; t < tokens.length - 1; t++) {
    const row = logits!.subarray(t * V, (t + 1) * V);
    let max = -Infinity;
    let arg = 0;
    row.forEach((x, v) => {
      if (x > max) [max, arg] = [x, v];
    });
    let sum = 0;
    for (const x of row) sum += Math.exp(x - max);
    ll += row[tokens[t + 1]!]! - max - Math.log(sum);
    if (arg !== tokens[t + 1]) greedy = false;
  }
  return { ll, greedy };
}

async function pairLoglikelihood(context: string, continuation: string) {
  const tok = world.tokenizer;
  const ctx = await tok.encode(context);
  const whole = await tok.encode(context + continuation);
  return reference([...ctx, ...whole.slice(ctx.length)], ctx.length);
}

const options = { shots: 0, seed: 1234, batchSize: 3, maxGenTokens: 8 };

test('multiple choice: acc and acc_norm from each choice log-likelihood, checked against log-softmax', async () => {
  const task = readTask(tasks.choice!);
  const run = await runTask({ config: world.config, params, tokenizer: world.tokenizer }, task, options);
  let accs = 0;
  let norms = 0;
  for (const [i, item] of task.items.entries()) {
    if (item.kind !== 'multiple_choice') throw new Error('expected multiple choice');
    const lls = await Promise.all(item.choices.map(async (c) => (await pairLoglikelihood(item.context, ` ${c}`)).ll));
    const got = run.items[i]!;
    got.choiceLoglikelihoods!.forEach((ll, j) => {
      assert.ok(Math.abs(ll - lls[j]!) < 1e-4, `${item.id} choice ${j}: ${ll} vs ${lls[j]}`);
    });
    const best = lls.indexOf(Math.max(...lls));
    const norm = lls.map((ll, j) => ll / item.choices[j]!.length);
    const bestNorm = norm.indexOf(Math.max(...norm));
    assert.equal(got.acc, best === item.gold ? 1 : 0, item.id);
    assert.equal(got.accNorm, bestNorm === item.gold ? 1 : 0, item.id);
    accs += got.acc!;
    norms += got.accNorm!;
  }
  assert.deepEqual(
    run.aggregates.map((a) => [a.metric, a.value]),
    [
      ['acc', accs / 4],
      ['acc_norm', norms / 4],
    ],
  );
});

test('partial evaluation: the continuation scored after each context, acc over the contexts, against log-softmax', async () => {
  const path = writeJsonl(join(dir, 'tasks', 'partial.jsonl'), [
    {
      id: 'p1',
      output_type: 'multiple_choice',
      contexts: ['The cat sat on', 'The fox sat on'],
      continuation: 'the mat.',
      gold: 0,
    },
    {
      id: 'p2',
      output_type: 'multiple_choice',
      contexts: ['The nurse said she', 'The nurse said he'],
      continuation: 'was busy.',
      gold: 1,
    },
    {
      id: 'p3',
      output_type: 'multiple_choice',
      contexts: ['Paris is', 'Rome is', 'The river is'],
      continuation: 'a city.',
      gold: 2,
    },
  ]);
  const task = readTask(path);
  const model = { config: world.config, params, tokenizer: world.tokenizer };
  for (const shots of [0, 1]) {
    const run = await runTask(model, task, { ...options, shots });
    let accs = 0;
    for (const [i, item] of task.items.entries()) {
      if (item.kind !== 'partial') throw new Error('expected partial evaluation');
      const demos = drawDemonstrations(item, task.items, shots, options.seed, task.name);
      // Written out by hand: a demonstration is the gold context, a space and the continuation.
      const prefix = demos
        .map((d) => (d.kind === 'partial' ? `${d.contexts[d.gold]} ${d.continuation}\n\n` : ''))
        .join('');
      const lls = await Promise.all(
        item.contexts.map(async (c) => (await pairLoglikelihood(prefix + c, ` ${item.continuation}`)).ll),
      );
      const got = run.items[i]!;
      got.choiceLoglikelihoods!.forEach((ll, j) => {
        assert.ok(Math.abs(ll - lls[j]!) < 1e-4, `${item.id} ${shots}-shot context ${j}: ${ll} vs ${lls[j]}`);
      });
      const best = lls.indexOf(Math.max(...lls));
      assert.equal(got.acc, best === item.gold ? 1 : 0, item.id);
      assert.equal(got.prediction, item.contexts[best]);
      assert.equal(got.accNorm, undefined);
      accs += got.acc!;
    }
    assert.deepEqual(
      run.aggregates.map((a) => [a.metric, a.value]),
      [['acc', accs / 3]],
    );
  }
});

test("built-in tasks: lm-eval's 3-shot requests (golden) scored as written, whatever the limit; a few-shot file is refused", async () => {
  // A longer context than the world's 64, so that no prompt is cut (rotary positions: the weights are the same).
  const model = { config: { ...world.config, maxPositions: 1024 }, params, tokenizer: world.tokenizer };
  for (const name of ['winogrande', 'piqa', 'lambada_openai']) {
    const def = builtinTask(name)!;
    const task = buildTask(
      def,
      { repository: 'golden', config: 'golden', revision: null, dir: '' },
      goldenSplit(name, evalSplit(def)),
      goldenSplit(name, fewshotSplit(def)),
    );
    const run = await runTask(model, task, { ...options, shots: 3, limit: 3, batchSize: 2 });
    assert.equal(run.items.length, 3);
    for (const [i, got] of run.items.entries()) {
      const pairs = golden.tasks[name]!.docs[i]!.shots['3']!;
      // lm-eval's _encode_pair: the context's trailing whitespace starts the continuation.
      const moved = pairs.map(([c, x]) => [c!.replace(/\s+$/, ''), c!.slice(c!.replace(/\s+$/, '').length) + x!]);
      const lls = await Promise.all(moved.map(async ([c, x]) => (await pairLoglikelihood(c!, x!)).ll));
      const scored = got.choiceLoglikelihoods ?? [got.loglikelihood!];
      assert.equal(scored.length, lls.length);
      scored.forEach((ll, j) => {
        assert.ok(Math.abs(ll - lls[j]!) < 1e-3, `${name} doc ${i} request ${j}: ${ll} vs ${lls[j]}`);
      });
    }
    assert.deepEqual(run.aggregates.map((a) => a.metric).sort(), [...def.metrics].sort());
  }
  const piqa = buildTask(
    builtinTask('piqa')!,
    { repository: 'golden', config: 'golden', revision: null, dir: '' },
    goldenSplit('piqa', 'validation'),
    goldenSplit('piqa', 'train'),
  );
  await assert.rejects(
    runTask({ config: world.config, params, tokenizer: world.tokenizer }, piqa, {
      ...options,
      shots: 1,
      fewshotPool: readTask(tasks.choice!).items,
    }),
    /task piqa: a built-in task draws its demonstrations from its own few-shot split/,
  );
});

test('last word: log-likelihood, greedy accuracy and perplexity against log-softmax', async () => {
  const task = readTask(tasks.lambada!);
  const run = await runTask({ config: world.config, params, tokenizer: world.tokenizer }, task, options);
  let sum = 0;
  for (const [i, item] of task.items.entries()) {
    if (item.kind !== 'loglikelihood') throw new Error('expected loglikelihood');
    const ref = await pairLoglikelihood(item.context, item.target);
    assert.ok(Math.abs(run.items[i]!.loglikelihood! - ref.ll) < 1e-4);
    assert.equal(run.items[i]!.acc, ref.greedy ? 1 : 0);
    sum += ref.ll;
  }
  const ppl = run.aggregates.find((a) => a.metric === 'perplexity')!;
  assert.ok(Math.abs(ppl.value / Math.exp(-sum / 3) - 1) < 1e-4);
});

test('rolling: windows of the context length cover the document, log-likelihoods add up', async () => {
  const task = readTask(tasks.rolling!);
  // A context of 8 positions forces the long document into several windows.
  const config = { ...world.config, maxPositions: 8 };
  const run = await runTask({ config, params, tokenizer: world.tokenizer }, task, options);
  for (const [i, item] of task.items.entries()) {
    if (item.kind !== 'loglikelihood_rolling') throw new Error('expected rolling');
    const tokens = await world.tokenizer.encode(item.text);
    // Independently: blocks of 8 predicted tokens, each from the 8 positions before the block's end (end-of-text first).
    let ll = 0;
    for (let start = 0; start < tokens.length; start += 8) {
      const end = Math.min(start + 8, tokens.length);
      const inputs =
        start === 0 ? [world.tokenizer.eodId, ...tokens.slice(0, end)] : tokens.slice(Math.max(0, end - 9), end);
      ll += (await reference(inputs, inputs.length - (end - start))).ll;
    }
    assert.ok(
      Math.abs(run.items[i]!.loglikelihood! - ll) < 1e-3,
      `${item.id}: ${run.items[i]!.loglikelihood} vs ${ll}`,
    );
    assert.equal(run.items[i]!.words, item.text.split(/\s+/).length);
    assert.equal(run.items[i]!.bytes, Buffer.byteLength(item.text));
  }
  assert.deepEqual(
    run.aggregates.map((a) => a.metric),
    ['word_perplexity', 'byte_perplexity', 'bits_per_byte'],
  );
});

test('generate until: greedy continuation cut at the stop string, exact match, checked by full recomputation', async () => {
  const task = readTask(tasks.arithmetic!);
  for (const shots of [0, 2]) {
    const run = await runTask({ config: world.config, params, tokenizer: world.tokenizer }, task, {
      ...options,
      shots,
    });
    for (const [i, item] of task.items.entries()) {
      if (item.kind !== 'generate_until') throw new Error('expected generate_until');
      const prompt = fewshotPrompt(item, drawDemonstrations(item, task.items, shots, 1234, task.name));
      const tokens = await world.tokenizer.encode(prompt);
      const generated: number[] = [];
      for (let n = 0; n < 8; n++) {
        const all = [...tokens, ...generated];
        const V = world.config.vocabSize;
        const { logits } = await forward(world.config, params, tokenMatrix([all], V), 1);
        const last = logits!.subarray((all.length - 1) * V, all.length * V);
        const next = last.indexOf(Math.max(...last));
        if (next === world.tokenizer.eodId) break;
        generated.push(next);
        if (world.tokenizer.decode(generated).includes('\n')) break;
      }
      const expected = world.tokenizer.decode(generated).split('\n')[0]!;
      assert.equal(run.items[i]!.prediction, expected, `${item.id} ${shots}-shot`);
      assert.equal(run.items[i]!.exactMatch, expected.trim() === item.answer ? 1 : 0);
    }
  }
});

test('rolling tasks take no demonstrations', async () => {
  await assert.rejects(
    runTask({ config: world.config, params, tokenizer: world.tokenizer }, readTask(tasks.rolling!), {
      ...options,
      shots: 2,
    }),
    /takes no few-shot demonstrations/,
  );
});

test('generation never picks ids past the tokenizer when the model vocabulary is padded beyond it', async () => {
  const allowed = world.tokenizer.vocabSize;
  const config = { ...world.config, vocabSize: allowed + 64 };
  const padded = randomParams(config, 11);
  // Padding rows of the LM head scaled up, so that unrestricted greedy decoding would pick them.
  const head = padded.get('embed_out.weight')!;
  for (let i = allowed * config.hiddenSize; i < head.length; i++) head[i]! *= 8;
  const task = readTask(tasks.arithmetic!);
  const run = await runTask({ config, params: padded, tokenizer: world.tokenizer }, task, options);
  for (const [i, item] of task.items.entries()) {
    if (item.kind !== 'generate_until') throw new Error('expected generate_until');
    const tokens = await world.tokenizer.encode(item.context);
    const { logits } = await forward(config, padded, tokenMatrix([tokens], config.vocabSize), 1);
    const last = Array.from(logits!.subarray((tokens.length - 1) * config.vocabSize, tokens.length * config.vocabSize));
    assert.ok(last.indexOf(Math.max(...last)) >= allowed, 'the unrestricted argmax is a padding id');
    const best = last.slice(0, allowed);
    const first = best.indexOf(Math.max(...best));
    if (first === world.tokenizer.eodId) assert.equal(run.items[i]!.prediction, '');
    else assert.ok(run.items[i]!.prediction!.startsWith(world.tokenizer.decode([first]).split('\n')[0]!), item.id);
  }
});

test('runTask refuses bad numeric options in one line, naming the option, before any work', async () => {
  const task = readTask(tasks.choice!);
  const model = { config: world.config, params, tokenizer: world.tokenizer };
  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['maxGenTokens', { maxGenTokens: 0 }, /^maxGenTokens: expected a positive integer, got 0$/],
    ['maxGenTokens', { maxGenTokens: 2.5 }, /^maxGenTokens: expected a positive integer, got 2\.5$/],
    ['batchSize', { batchSize: 0 }, /^batchSize: expected a positive integer, got 0$/],
    ['shots', { shots: -1 }, /^shots: expected a non-negative integer, got -1$/],
    ['seed', { seed: '7' }, /^seed: expected a non-negative integer, got "7"$/],
    ['limit', { limit: Number.NaN }, /^limit: expected a positive integer, got NaN$/],
  ];
  for (const [name, change, message] of bad) {
    await assert.rejects(
      runTask(model, task, { ...options, ...change } as typeof options),
      (e: Error) => e.name === 'ConfigError' && message.test(e.message),
      name,
    );
  }
});
