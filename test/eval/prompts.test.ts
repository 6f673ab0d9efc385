/**
 * Few-shot prompts byte-exact to lm-evaluation-harness's template, the harness's token boundaries,
 * its rolling windows, and the metrics on hand-computed values.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { encodePairs, rollingWindows } from '../../src/eval/encode.js';
import { drawDemonstrations, fewshotPrompt } from '../../src/eval/fewshot.js';
import { pythonLength } from '../../src/eval/lm-eval/python-str.js';
import {
  aggregate,
  argmax,
  countWords,
  cutAtStop,
  meanStderr,
  multipleChoiceResult,
  partialResult,
  ratioWithStderr,
} from '../../src/eval/metrics.js';
import type { TaskItem } from '../../src/eval/tasks.js';
import { type EvalWorld, makeWorld } from './support.js';

let world: EvalWorld;
const dir = mkdtempSync(join(tmpdir(), 'pythia-prompts-'));
before(async () => {
  world = await makeWorld(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const mc = (id: string, context: string, choices: string[], gold: number): TaskItem => ({
  kind: 'multiple_choice',
  id,
  meta: {},
  context,
  choices,
  gold,
  targetDelimiter: ' ',
});
const gen = (id: string, context: string, answer: string): TaskItem => ({
  kind: 'generate_until',
  id,
  meta: {},
  context,
  answer,
  until: ['\n'],
});

test('few-shot prompts: demonstrations joined by a blank line, then the item, byte for byte', () => {
  const items = [
    mc('a', 'Sky is', ['blue', 'green'], 0),
    mc('b', 'Grass is', ['blue', 'green'], 1),
    mc('c', 'Snow is', ['white', 'black'], 0),
  ];
  assert.equal(fewshotPrompt(items[0]!, [items[1]!, items[2]!]), 'Grass is green\n\nSnow is white\n\nSky is');
  assert.equal(fewshotPrompt(items[0]!, []), 'Sky is');
  const q = [gen('x', 'Q: What is 1 plus 1? A:', '2'), gen('y', 'Q: What is 2 plus 2? A:', '4')];
  assert.equal(fewshotPrompt(q[0]!, [q[1]!]), 'Q: What is 2 plus 2? A: 4\n\nQ: What is 1 plus 1? A:');
  const ll: TaskItem = { kind: 'loglikelihood', id: 'l', meta: {}, context: 'the big', target: ' dog' };
  assert.equal(fewshotPrompt(q[0]!, [ll]), 'the big dog\n\nQ: What is 1 plus 1? A:');
});

test('demonstrations: seeded, never the item itself, without replacement, independent of other items', () => {
  const pool = Array.from({ length: 20 }, (_, i) => gen(`q${i}`, `Q${i}`, `${i}`));
  const first = drawDemonstrations(pool[3]!, pool, 8, 1234, 'arith');
  assert.deepEqual(drawDemonstrations(pool[3]!, pool, 8, 1234, 'arith'), first);
  assert.equal(new Set(first.map((d) => d.id)).size, 8);
  assert.ok(!first.some((d) => d.id === 'q3'));
  assert.notDeepEqual(drawDemonstrations(pool[3]!, pool, 8, 1235, 'arith'), first);
  assert.notDeepEqual(drawDemonstrations(pool[3]!, pool, 8, 1234, 'other-task'), first);
  assert.throws(
    () => drawDemonstrations(pool[0]!, pool.slice(0, 3), 4, 1, 'arith'),
    /4-shot prompts need 4 other items, the few-shot pool has 2/,
  );
});

test('token boundaries: trailing spaces move to the continuation; an empty context is end-of-text', async () => {
  const tok = world.tokenizer;
  const [moved, plain, empty] = await encodePairs(tok, [
    { context: 'The cat sat on the ', continuation: 'mat' },
    { context: 'The cat sat on the', continuation: ' mat' },
    { context: '', continuation: 'The cat' },
  ]);
  assert.deepEqual(moved, plain);
  const context = await tok.encode('The cat sat on the');
  const whole = await tok.encode('The cat sat on the mat');
  assert.deepEqual(plain!.context, context);
  assert.deepEqual(plain!.continuation, whole.slice(context.length));
  assert.deepEqual(empty, { context: [tok.eodId], continuation: await tok.encode('The cat') });
  // Python's rstrip: U+0085 is whitespace and moves; U+FEFF is not and stays with the context.
  const [nel, bom] = await encodePairs(tok, [
    { context: 'The cat\u0085', continuation: ' sat' },
    { context: 'The cat\ufeff', continuation: ' sat' },
  ]);
  assert.deepEqual(nel!.context, await tok.encode('The cat'));
  assert.deepEqual(bom!.context, await tok.encode('The cat\ufeff'));
});

test('rolling windows: disjoint, covering every token once, each with at most max-length inputs', () => {
  const tokens = Array.from({ length: 10 }, (_, i) => 100 + i);
  // Hand-computed from lm-eval's get_rolling_token_windows(max_seq_len=4, context_len=1) + make_disjoint_window.
  assert.deepEqual(rollingWindows(tokens, 0, 4), [
    { context: [0], continuation: [100, 101, 102, 103] },
    { context: [103], continuation: [104, 105, 106, 107] },
    // The last, shorter window still sees max-length inputs: its context reaches back further.
    { context: [105, 106, 107], continuation: [108, 109] },
  ]);
  assert.deepEqual(rollingWindows([5, 6], 0, 4), [{ context: [0], continuation: [5, 6] }]);
  assert.deepEqual(rollingWindows([], 0, 4), []);
});

test('metrics: acc and acc_norm on hand-made log-likelihoods; exact match trims; stop strings cut', () => {
  // Choice 1 has the largest log-likelihood; per character, choice 0 ("abcdef", -6/6 = -1) beats "x" (-2/1).
  const r = multipleChoiceResult('i', ['abcdef', 'x', 'yy'], 0, [-6, -2, -5]);
  assert.deepEqual([r.acc, r.accNorm, r.prediction, r.loglikelihood], [0, 1, 'x', -6]);
  assert.deepEqual(cutAtStop(' 42\nQ: next', ['\n']), { text: ' 42', stopped: true });
  assert.deepEqual(cutAtStop(' 42 and', ['\n', ' and']), { text: ' 42', stopped: true });
  const [em] = aggregate('generate_until', [
    { itemId: 'a', exactMatch: 1 },
    { itemId: 'b', exactMatch: 0 },
    { itemId: 'c', exactMatch: 1 },
    { itemId: 'd', exactMatch: 1 },
  ]);
  // mean 0.75; sample sd = sqrt(0.25) = 0.5 -> se = 0.5 / 2.
  assert.deepEqual(em, { metric: 'exact_match', value: 0.75, stderr: 0.25, n: 4 });
  assert.equal(meanStderr([1]), null);
});

test("acc_norm divides by Python's len (code points), argmax is numpy's, words split at Python's whitespace", () => {
  // "😀" is 1 code point and 2 UTF-16 units: per code point -1.5/1 = -1.5 loses to "ab"'s -2.4/2 = -1.2;
  // per UTF-16 unit it would win (-0.75).
  const r = multipleChoiceResult('i', ['\u{1F600}', 'ab'], 1, [-1.5, -2.4]);
  assert.deepEqual([r.acc, r.accNorm], [0, 1]);
  assert.equal(pythonLength('a\u{1F600}b'), 3);
  // numpy.argmax returns the first NaN: an item whose log-likelihood is NaN is wrong, not silently skipped.
  assert.equal(argmax([-1, Number.NaN, -0.5]), 1);
  assert.equal(argmax([-3, -1, -1]), 1);
  // re.split(r"\s+") in Python splits at U+001C-U+001F and U+0085 and not at U+FEFF, unlike JavaScript's \s.
  assert.equal(countWords('a\x1cb\x85c\ufeffd'), 3);
  assert.equal(countWords(' a  b\n'), 4);
  assert.equal(countWords(''), 1);
});

test('partial evaluation: acc over the contexts, no acc_norm', () => {
  const r = partialResult('w', ['Anna gave Beth', 'Beth gave Anna'], 0, [-4, -3]);
  assert.deepEqual([r.acc, r.prediction, r.loglikelihood, r.accNorm], [0, 'Beth gave Anna', -4, undefined]);
  const aggregates = aggregate('multiple_choice', [r, partialResult('v', ['x', 'y'], 1, [-5, -1])]);
  assert.deepEqual(
    aggregates.map((a) => [a.metric, a.value]),
    [['acc', 0.5]],
  );
});

test('perplexities: exp(-mean) for last-word items; Σll over Σwords and Σbytes for documents', () => {
  const [acc, ppl] = aggregate('loglikelihood', [
    { itemId: 'a', acc: 1, loglikelihood: -1 },
    { itemId: 'b', acc: 0, loglikelihood: -3 },
  ]);
  assert.equal(acc!.value, 0.5);
  assert.ok(Math.abs(ppl!.value - Math.exp(2)) < 1e-12);
  // se(mean ll) = sqrt(2)/sqrt(2) = 1; delta method: ppl * 1.
  assert.ok(Math.abs(ppl!.stderr! - Math.exp(2)) < 1e-12);
  const docs = [
    { itemId: 'a', loglikelihood: -10, words: 5, bytes: 20 },
    { itemId: 'b', loglikelihood: -30, words: 5, bytes: 20 },
  ];
  const [word, byte, bpb] = aggregate('loglikelihood_rolling', docs);
  assert.ok(Math.abs(word!.value - Math.exp(40 / 10)) < 1e-9);
  assert.ok(Math.abs(byte!.value - Math.exp(40 / 40)) < 1e-12);
  assert.ok(Math.abs(bpb!.value - 1 / Math.LN2) < 1e-12);
  // R = -40/10 = -4; residuals -10+20 = 10 and -30+20 = -10; se = sqrt(2 * 200) / 10 = 2.
  assert.ok(Math.abs(ratioWithStderr([-10, -30], [5, 5]).stderr! - 2) < 1e-12);
});
