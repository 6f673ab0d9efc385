/**
 * The public API (src/index.ts) against independent truth: Hugging Face's logits and greedy tokens
 * for the fixture checkpoint, log-probabilities computed here from those logits, batches laid out
 * by construction, a suite folder written here.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PreshuffledWriter } from '../../src/data/preshuffled.js';
import { openSafetensors } from '../../src/formats/index.js';
import { ConfigError, GPTNeoX, Suite, TrainingOrder, train } from '../../src/index.js';
import { fixtureDir, repoRoot } from '../support/paths.js';
import { writeTextCheckpoint } from './text-checkpoint.js';

const work = mkdtempSync(join(tmpdir(), 'pythia-api-'));
after(() => rmSync(work, { recursive: true, force: true }));

const fixture = fixtureDir('parallel-r25');
const pythiaCli = join(repoRoot, 'dist/src/cli/main.js');
/** The value placeholder of each `pythia generate` flag, as commander names it in an error. */
const cliPlaceholder: Record<string, string> = {
  '--max-new-tokens': '<n>',
  '--temperature': '<t>',
  '--top-p': '<p>',
  '--top-k': '<k>',
  '--seed': '<n>',
};
const expected = openSafetensors(join(fixture, 'expected.safetensors'));
const ids = expected.readRaw('input_ids');
const inputIds = new BigInt64Array(ids.data.slice().buffer);
const hfLogits = expected.readFloat32('logits');
const [batch, seq] = ids.shape as [number, number];
const rows = Array.from({ length: batch }, (_, b) => Array.from(inputIds.subarray(b * seq, (b + 1) * seq), Number));

describe('GPTNeoX', () => {
  let model: GPTNeoX;
  before(async () => {
    model = await GPTNeoX.fromPretrained(join(fixture, 'model'), { threads: 1 });
  });
  after(() => model.dispose());

  test('fromPretrained: config from config.json; forward gives Hugging Face logits', async () => {
    assert.equal(model.config.vocabSize, 211);
    assert.equal(model.source.model, 'model');
    const r = await model.forward(rows, { loss: true });
    assert.deepEqual([r.batch, r.seq], [batch, seq]);
    const vocab = model.config.vocabSize;
    let maxDiff = 0;
    let maxAbs = 0;
    for (let i = 0; i < hfLogits.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(r.logits![i]! - hfLogits[i]!));
      maxAbs = Math.max(maxAbs, Math.abs(hfLogits[i]!));
    }
    assert.ok(maxDiff <= 1e-4 * maxAbs, `logits differ by ${maxDiff}`);
    assert.equal(r.logits!.length, batch * seq * vocab);
    assert.ok(Math.abs(r.loss! - expected.readFloat32('loss')[0]!) <= 1e-5);
  });

  test("generate continues token ids greedily as Hugging Face's generate does, one row or several", async () => {
    const g = JSON.parse(readFileSync(join(fixture, 'generate.json'), 'utf8')) as {
      prompt: number[];
      argmax_loop: number[];
      max_new_tokens: number;
    };
    const one = await model.generate(g.prompt, { maxNewTokens: g.max_new_tokens, stopAtEos: false });
    assert.deepEqual(one, g.argmax_loop);
    const two = await model.generate([g.prompt, g.prompt], { maxNewTokens: g.max_new_tokens, stopAtEos: false });
    assert.deepEqual(two, [g.argmax_loop, g.argmax_loop]);
    // A nucleus of one token leaves sampling nothing to choose: the greedy tokens, whatever the seed.
    assert.deepEqual(
      await model.generate(g.prompt, {
        maxNewTokens: g.max_new_tokens,
        stopAtEos: false,
        temperature: 1,
        topP: 1e-9,
        seed: 5,
      }),
      g.argmax_loop,
    );
    await assert.rejects(
      model.generate('text'),
      (e: Error) => e instanceof ConfigError && /has no tokenizer\.json/.test(e.message),
    );
  });

  test('score: summed log-softmax of the continuation under the context, from the Hugging Face logits', async () => {
    const vocab = model.config.vocabSize;
    const logSoftmax = (b: number, t: number, id: number): number => {
      const at = (b * seq + t) * vocab;
      let max = -Infinity;
      for (let v = 0; v < vocab; v++) max = Math.max(max, hfLogits[at + v]!);
      let sum = 0;
      for (let v = 0; v < vocab; v++) sum += Math.exp(hfLogits[at + v]! - max);
      return hfLogits[at + id]! - max - Math.log(sum);
    };
    const cut = 5;
    const pairs = rows.map((r) => ({ context: r.slice(0, cut), continuation: r.slice(cut, cut + 4) }));
    const scores = await model.score(pairs);
    scores.forEach((s, b) => {
      let want = 0;
      for (let t = cut; t < cut + 4; t++) want += logSoftmax(b, t - 1, rows[b]![t]!);
      assert.ok(Math.abs(s.logprob - want) < 1e-4, `row ${b}: ${s.logprob} vs ${want}`);
    });
    const tuple = await model.score([[rows[0]!.slice(0, cut), rows[0]!.slice(cut, cut + 4)]]);
    assert.equal(tuple[0]!.logprob, scores[0]!.logprob);
  });

  test('text in, text out with a tokenizer; scoring text splits tokens as lm-evaluation-harness does', async () => {
    await writeTextCheckpoint(join(work, 'text-model'), work);
    const withText = await GPTNeoX.fromPretrained(join(work, 'text-model'), { threads: 1 });
    try {
      const tokenizer = withText.tokenizer!;
      const out = await withText.generate('the cat', { maxNewTokens: 5, stopAtEos: false });
      const ids = await withText.generate(await tokenizer.encode('the cat'), { maxNewTokens: 5, stopAtEos: false });
      assert.equal(out, tokenizer.decode(ids));
      assert.deepEqual(await withText.generate(['the cat', 'a dog'], { maxNewTokens: 3, stopAtEos: false }), [
        tokenizer.decode(
          await withText.generate(await tokenizer.encode('the cat'), { maxNewTokens: 3, stopAtEos: false }),
        ),
        tokenizer.decode(
          await withText.generate(await tokenizer.encode('a dog'), { maxNewTokens: 3, stopAtEos: false }),
        ),
      ]);
      // The context's trailing space moves to the continuation; the whole string is encoded once.
      const whole = await tokenizer.encode('the cat sat');
      const context = await tokenizer.encode('the cat');
      const [text] = await withText.score([{ context: 'the cat ', continuation: 'sat' }]);
      const [byIds] = await withText.score([{ context, continuation: whole.slice(context.length) }]);
      assert.equal(text!.logprob, byIds!.logprob);
      const [empty, white] = await withText.score([
        ['', 'the cat'],
        ['  ', 'the cat'],
      ]);
      const [eod, eodSpaced] = await withText.score([
        [[tokenizer.eodId], context],
        [[tokenizer.eodId], await tokenizer.encode('  the cat')],
      ]);
      assert.equal(empty!.logprob, eod!.logprob);
      assert.equal(white!.logprob, eodSpaced!.logprob);
    } finally {
      await withText.dispose();
    }
  });

  test('bad options and a disposed model are one-line ConfigErrors', async () => {
    await assert.rejects(
      GPTNeoX.fromPretrained(join(fixture, 'model'), { dtype: 'float16' as 'float32' }),
      /dtype "float16": only float32/,
    );
    await assert.rejects(
      GPTNeoX.fromPretrained(join(work, 'nowhere')),
      (e: Error) => e instanceof ConfigError && /no such checkpoint folder/.test(e.message),
    );
    for (const [options, message] of [
      [{ threads: 0 }, 'threads: expected a positive integer, got 0'],
      [{ threads: '2' }, 'threads: expected a positive integer, got "2"'],
      [{ device: 'gpu' }, 'device: expected one of cpu, webgpu, cuda, got "gpu"'],
      [
        { thread: 2 },
        'fromPretrained: unknown option thread (options: revision, cacheDir, dtype, threads, device, tokenizer, maxMemory, weights)',
      ],
    ] as const) {
      const e = await rejection(() => GPTNeoX.fromPretrained(join(fixture, 'model'), options as object));
      assert.ok(e instanceof ConfigError, `${message}: ${e.stack}`);
      assert.equal(e.message, message);
    }
    const m = await GPTNeoX.fromPretrained(join(fixture, 'model'));
    await m.dispose();
    await assert.rejects(m.forward([1, 2, 3]), /the model was disposed/);
  });
});

/** The error a call rejects with, for asserting its class and whole message. */
async function rejection(call: () => Promise<unknown>): Promise<Error> {
  try {
    await call();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('generate and score refuse what the CLI refuses, in one line naming the option', () => {
  let model: GPTNeoX;
  before(async () => {
    model = await GPTNeoX.fromPretrained(join(fixture, 'model'), { threads: 1 });
  });
  after(() => model.dispose());
  const prompt = [1, 2, 3];

  // [library option, value, its text in the message, CLI flag, CLI value, what is expected]
  const numbers: [string, unknown, string, string, string, string][] = [
    ['maxNewTokens', -1, '-1', '--max-new-tokens', '-1', 'a positive integer'],
    ['maxNewTokens', 0, '0', '--max-new-tokens', '0', 'a positive integer'],
    ['maxNewTokens', 1.5, '1.5', '--max-new-tokens', '1.5', 'a positive integer'],
    ['maxNewTokens', Number.NaN, 'NaN', '--max-new-tokens', 'NaN', 'a positive integer'],
    ['maxNewTokens', '5', '"5"', '--max-new-tokens', 'five', 'a positive integer'],
    ['temperature', -1, '-1', '--temperature', '-1', 'a number >= 0'],
    ['temperature', Number.NaN, 'NaN', '--temperature', 'NaN', 'a number >= 0'],
    ['temperature', Number.POSITIVE_INFINITY, 'Infinity', '--temperature', 'Infinity', 'a number >= 0'],
    ['temperature', '1', '"1"', '--temperature', '', 'a number >= 0'],
    ['topP', 1.5, '1.5', '--top-p', '1.5', 'a number in (0, 1]'],
    ['topP', 0, '0', '--top-p', '0', 'a number in (0, 1]'],
    ['topP', -0.5, '-0.5', '--top-p', '-0.5', 'a number in (0, 1]'],
    ['topP', Number.NaN, 'NaN', '--top-p', 'NaN', 'a number in (0, 1]'],
    ['topK', -1, '-1', '--top-k', '-1', 'a non-negative integer'],
    ['topK', 2.5, '2.5', '--top-k', '2.5', 'a non-negative integer'],
    ['seed', -1, '-1', '--seed', '-1', 'an integer from 0 to 4294967295'],
    ['seed', 0.5, '0.5', '--seed', '0.5', 'an integer from 0 to 4294967295'],
    ['seed', 2 ** 32, '4294967296', '--seed', '4294967296', 'an integer from 0 to 4294967295'],
  ];

  test('generate: each numeric option, as a ConfigError with the expectation pythia generate prints', async () => {
    for (const [option, value, shown, flag, cliValue, expected] of numbers) {
      const e = await rejection(() => model.generate(prompt, { maxNewTokens: 2, [option]: value }));
      assert.ok(e instanceof ConfigError, `${option} ${shown}: ${e.stack}`);
      assert.equal(e.message, `${option}: expected ${expected}, got ${shown}`);
      const cli = spawnSync(process.execPath, [pythiaCli, 'generate', join(fixture, 'model'), `${flag}=${cliValue}`], {
        encoding: 'utf8',
      });
      assert.equal(cli.status, 1, `${flag}=${cliValue}`);
      assert.equal(
        cli.stderr.split('\n')[0],
        `error: option '${flag} ${cliPlaceholder[flag]}' argument '${cliValue}' is invalid. expected ${expected}.`,
      );
    }
  });

  test('generate: stopAtEos, unknown options, options and prompts of the wrong kind', async () => {
    const cases: [() => Promise<unknown>, string][] = [
      [
        () => model.generate(prompt, { stopAtEos: 'no' as unknown as boolean }),
        'stopAtEos: expected true or false, got "no"',
      ],
      [
        () => model.generate(prompt, { max_new_tokens: 2 } as object),
        'generate: unknown option max_new_tokens (options: maxNewTokens, temperature, topK, topP, seed, stopAtEos)',
      ],
      [() => model.generate(prompt, 5 as unknown as object), 'generate: options: expected an object, got 5'],
      [
        () => model.generate(5 as unknown as string),
        'generate: expected a prompt (text or token ids) or an array of prompts, got 5',
      ],
      [
        () => model.generate(null as unknown as string),
        'generate: expected a prompt (text or token ids) or an array of prompts, got null',
      ],
      [
        () => model.generate([[1, 2], 'a'] as unknown as number[][]),
        'generate: prompt 1: expected an array of token ids like prompt 0, got "a"',
      ],
      [
        () => model.generate([1, '2'] as unknown as number[]),
        'generate: prompt 0: token 1: expected a token id, got "2"',
      ],
      [
        () => model.generate([[1], [2, null]] as unknown as number[][]),
        'generate: prompt 1: token 1: expected a token id, got null',
      ],
      [() => model.generate(['a', 5] as unknown as string[]), 'generate: prompt 1: expected text like prompt 0, got 5'],
      [
        () => model.generate([{}] as unknown as string[]),
        'generate: prompt 0: expected text or an array of token ids, got an object',
      ],
    ];
    for (const [call, message] of cases) {
      const e = await rejection(call);
      assert.ok(e instanceof ConfigError, `${message}: ${e.stack}`);
      assert.equal(e.message, message);
    }
  });

  test('score: the pairs and batchSize', async () => {
    const pair = { context: [1, 2], continuation: [3] };
    const cases: [() => Promise<unknown>, string][] = [
      [
        () => model.score('the cat' as unknown as []),
        'score: expected an array of pairs ({ context, continuation } or [context, continuation]), got "the cat"',
      ],
      [
        () => model.score(undefined as unknown as []),
        'score: expected an array of pairs ({ context, continuation } or [context, continuation]), got undefined',
      ],
      [
        () => model.score([pair, null] as unknown as []),
        'score: pair 1: expected { context, continuation } or [context, continuation], got null',
      ],
      [
        () => model.score([[[1], [2], [3]]] as unknown as []),
        'score: pair 0: expected { context, continuation } or [context, continuation], got an array of 3',
      ],
      [
        () => model.score([{ context: [1], continuation: 'x' }] as unknown as []),
        'score: pair 0: expected context and continuation both as text or both as token ids',
      ],
      [() => model.score([pair], { batchSize: 0 }), 'batchSize: expected a positive integer, got 0'],
      [() => model.score([pair], { batchSize: -2 }), 'batchSize: expected a positive integer, got -2'],
      [() => model.score([pair], { batchSize: 1.5 }), 'batchSize: expected a positive integer, got 1.5'],
      [
        () => model.score([pair], { batchSize: '8' as unknown as number }),
        'batchSize: expected a positive integer, got "8"',
      ],
      [() => model.score([pair], { batch_size: 8 } as object), 'score: unknown option batch_size (options: batchSize)'],
    ];
    for (const [call, message] of cases) {
      const e = await rejection(call);
      assert.ok(e instanceof ConfigError, `${message}: ${e.stack}`);
      assert.equal(e.message, message);
    }
    // What is accepted still scores: an absent option takes its default.
    assert.equal((await model.score([pair], { batchSize: undefined })).length, 1);
  });
});

test('Suite.open lists models and steps from the folder; load gives a model', async () => {
  const dir = join(work, 'suite');
  for (const [model, steps] of [
    ['nano-a', [0, 1, 4]],
    ['nano-b', [0, 4]],
  ] as const) {
    for (const step of steps) cpSync(join(fixture, 'model'), join(dir, model, `step${step}`), { recursive: true });
    mkdirSync(join(dir, model, '.step8.abcd.tmp'), { recursive: true }); // a killed save's leftover: not a checkpoint
  }
  writeFileSync(
    join(dir, 'suite.json'),
    JSON.stringify({
      suite: 'nano',
      data: { prefix: 'x', preshuffled: true },
      models: [{ name: 'nano-a' }, { name: 'nano-b' }],
      batchSha256: [],
    }),
  );
  const suite = Suite.open(dir);
  assert.deepEqual(suite.models, ['nano-a', 'nano-b']);
  assert.deepEqual(suite.steps('nano-a'), [0, 1, 4]);
  assert.deepEqual(
    [...suite].map((c) => `${c.model}@${c.step}`),
    ['nano-a@0', 'nano-a@1', 'nano-a@4', 'nano-b@0', 'nano-b@4'],
  );
  assert.deepEqual(
    suite.checkpoints({ steps: [4] }).map((c) => c.dir),
    [join(dir, 'nano-a/step4'), join(dir, 'nano-b/step4')],
  );
  const m = await suite.load('nano-b', 4);
  assert.deepEqual(m.source, { dir: join(dir, 'nano-b/step4'), model: 'nano-b', step: 4 });
  await m.dispose();
  assert.throws(() => suite.steps('nano-z'), /no model nano-z in this suite \(nano-a, nano-b\)/);
  await assert.rejects(suite.load('nano-a', 2), /nano-a has no checkpoint at step 2 \(steps: 0, 1, 4\)/);
  assert.throws(() => Suite.open(work), /not a suite folder: suite\.json is missing/);
});

describe('TrainingOrder and train', () => {
  const data = join(work, 'data');
  const sample = (s: number): number[] => Array.from({ length: 17 }, (_, t) => (s + 3 * t) % 64);
  before(async () => {
    const writer = PreshuffledWriter.create(data, { vocabSize: 64, seqLength: 16 });
    for (let s = 0; s < 16; s++) writer.addSample(sample(s));
    await writer.finish();
  });

  test('TrainingOrder.open: step s of a preshuffled dataset is samples [s·B, (s+1)·B)', async () => {
    const order = await TrainingOrder.open({ data, preshuffled: true, batchSize: 4, seqLength: 16 });
    try {
      assert.deepEqual([order.length, order.sampleLength, order.steps], [16, 17, 4]);
      assert.deepEqual(order.batch(2), [8, 9, 10, 11].map(sample));
      assert.deepEqual(Array.from(order.sample(5)), sample(5));
      assert.throws(() => order.batch(4), /step 4 is past the end/);
    } finally {
      order.close();
    }
  });

  test('train runs a nano preset on the batches, writes checkpoints that load, and resumes', async () => {
    const out = join(work, 'run');
    const recipe = { seqLength: 16, trainBatchSize: 4, trainIters: 3, checkpointFactor: 2, extraSaveIters: [0] };
    const r = await train({
      preset: 'nano-25k',
      data,
      preshuffled: true,
      outDir: out,
      recipe,
      evalIters: 0,
      threads: 1,
    });
    assert.equal(r.finalStep, 3);
    assert.deepEqual(r.checkpoints, [0, 2, 3]);
    assert.ok(Number.isFinite(r.finalLoss));
    const m = await GPTNeoX.fromPretrained(join(out, 'nano-25k', 'step3'));
    assert.equal(m.source.step, 3);
    await m.dispose();
    const again = await train({
      resume: join(out, 'nano-25k', 'step2'),
      outDir: join(work, 'resumed'),
      evalIters: 0,
      threads: 1,
    });
    assert.equal(again.finalLoss, r.finalLoss);
    assert.ok(existsSync(join(work, 'resumed', 'nano-25k', 'step3')));
    await assert.rejects(train({ data, outDir: out }), /give a preset/);
    await assert.rejects(
      train({ resume: join(out, 'nano-25k', 'step2'), recipe }),
      /recipe cannot be combined with resume/,
    );
  });
});
