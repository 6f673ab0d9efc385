/**
 * Built-in tasks: each row of the table turns its dataset's documents into exactly the requests
 * lm-evaluation-harness 0.4.12 makes (golden outputs of the release's own task files on made-up
 * documents in each dataset's schema); bad documents are refused naming the file, the row and the
 * column; a task's identity follows its dataset files.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildTask, type DatasetSource } from '../../src/eval/lm-eval/build.js';
import { harnessPrefixes, sameDocument } from '../../src/eval/lm-eval/fewshot.js';
import {
  BUILTIN_TASKS,
  builtinTask,
  evalSplit,
  fewshotExcludesEvalDoc,
  fewshotSplit,
  TASK_GROUPS,
} from '../../src/eval/lm-eval/tasks.js';
import { aggregate, type ItemResult } from '../../src/eval/metrics.js';
import { scoringPairs } from '../../src/eval/run-task.js';
import { golden, goldenSplit } from './lm-eval-golden.js';

const source = (task: string): DatasetSource => ({
  repository: `test/${task}`,
  config: 'default',
  revision: null,
  dir: `/cache/${task}`,
});

function build(name: string) {
  const def = builtinTask(name)!;
  return buildTask(def, source(name), goldenSplit(name, evalSplit(def)), goldenSplit(name, fewshotSplit(def)));
}

test("the table holds lm-eval's nine tasks; pythia is the paper's eight", () => {
  assert.deepEqual(
    BUILTIN_TASKS.map((t) => t.task),
    ['arc_challenge', 'arc_easy', 'lambada_openai', 'logiqa', 'piqa', 'sciq', 'wikitext', 'winogrande', 'wsc273'],
  );
  assert.deepEqual([...TASK_GROUPS.pythia!].sort(), [
    'arc_challenge',
    'arc_easy',
    'lambada_openai',
    'logiqa',
    'piqa',
    'sciq',
    'winogrande',
    'wsc273',
  ]);
});

test("each task's splits are lm-eval's: evaluated, few-shot, and whether a task's own document is dropped from its demonstrations", () => {
  for (const def of BUILTIN_TASKS) {
    const expected = golden.tasks[def.task]!;
    assert.equal(evalSplit(def), expected.evalSplit, def.task);
    assert.equal(fewshotSplit(def), expected.fewshotSplit, def.task);
  }
  const excluding = BUILTIN_TASKS.filter(fewshotExcludesEvalDoc).map((t) => t.task);
  assert.deepEqual(excluding, ['piqa', 'winogrande']);
});

test("every document becomes lm-eval's requests, byte for byte (0-shot): contexts, continuations, choices, gold, counts", () => {
  for (const def of BUILTIN_TASKS) {
    const task = build(def.task);
    const expected = golden.tasks[def.task]!;
    assert.equal(task.items.length, expected.docs.length, def.task);
    task.items.forEach((item, i) => {
      const want = expected.docs[i]!;
      const where = `${def.task} doc ${i}`;
      assert.equal(item.id, String(i));
      if (item.kind === 'loglikelihood_rolling') {
        assert.deepEqual([[item.text]], want.shots['0'], where);
        assert.deepEqual(item.counts, { words: want.words, bytes: want.bytes }, where);
        return;
      }
      const pairs = scoringPairs(item, '').map((p) => [p.context, p.continuation]);
      assert.deepEqual(pairs, want.shots['0'], where);
      if (item.kind === 'multiple_choice') {
        assert.deepEqual([item.choices, item.gold], [want.choices, want.gold], where);
      } else if (item.kind === 'partial') {
        assert.deepEqual([item.contexts, item.gold], [want.choices, want.gold], where);
      }
    });
  }
});

test("each task reports lm-eval's metrics, which are its kind's", () => {
  const fake: Record<string, ItemResult> = {
    multiple_choice: { itemId: 'a', acc: 1, accNorm: 0 },
    partial: { itemId: 'a', acc: 1 },
    loglikelihood: { itemId: 'a', acc: 1, loglikelihood: -1 },
    loglikelihood_rolling: { itemId: 'a', loglikelihood: -1, words: 1, bytes: 2 },
  };
  for (const def of BUILTIN_TASKS) {
    const task = build(def.task);
    assert.deepEqual(task.metrics, def.metrics);
    const produced = aggregate(task.outputType, [fake[def.kind]!]).map((a) => a.metric);
    assert.deepEqual([...produced].sort(), [...def.metrics].sort(), def.task);
  }
});

test('a document that does not fit is refused in one line naming the file, the row and the column', () => {
  const refuses = (name: string, split: string, change: (docs: Record<string, unknown>[]) => void, pattern: RegExp) => {
    const def = builtinTask(name)!;
    const evalDocs = goldenSplit(name, evalSplit(def));
    const pool = goldenSplit(name, fewshotSplit(def));
    change((split === evalDocs.split ? evalDocs : pool).docs as Record<string, unknown>[]);
    assert.throws(
      () => buildTask(def, source(name), evalDocs, pool),
      (e: Error) => {
        assert.equal(e.name, 'FormatError');
        assert.equal(e.message.split('\n').length, 1);
        assert.match(e.message, pattern);
        return true;
      },
    );
  };
  refuses(
    'piqa',
    'validation',
    (d) => {
      d[1]!.label = '1';
    },
    /^piqa\/validation\.parquet: row 1: label: expected an integer, got "1" \(task piqa, validation split\)$/,
  );
  refuses(
    'piqa',
    'train',
    (d) => {
      delete d[5]!.sol2;
    },
    /^piqa\/train\.parquet: row 5: sol2: expected a string, got nothing \(task piqa, train split\)$/,
  );
  refuses(
    'piqa',
    'validation',
    (d) => {
      d[0]!.label = 2;
    },
    /row 0: gold: 2 is out of range for 2 choices/,
  );
  refuses(
    'winogrande',
    'validation',
    (d) => {
      d[2]!.sentence = 'No blank here.';
    },
    /winogrande\/validation\.parquet: row 2: sentence: no "_" blank/,
  );
  refuses(
    'winogrande',
    'train',
    (d) => {
      d[0]!.answer = '3';
    },
    /winogrande\/train\.parquet: row 0: answer: expected "1" or "2", got "3"/,
  );
  refuses(
    'arc_easy',
    'test',
    (d) => {
      d[0]!.answerKey = 'Z';
    },
    /row 0: answerKey: "Z" is not among choices\.label \["A","B","C"\]/,
  );
  refuses(
    'arc_easy',
    'test',
    (d) => {
      d[1]!.choices = { text: ['a'], label: 'A' };
    },
    /row 1: choices\.label: expected a list of strings, got "A"/,
  );
  refuses(
    'logiqa',
    'test',
    (d) => {
      d[0]!.label = 'e';
    },
    /row 0: label: expected one of a, b, c, d, got "e"/,
  );
  refuses(
    'wsc273',
    'test',
    (d) => {
      d[3]!.pronoun_loc = 500;
    },
    /wsc273\/test\.parquet: row 3: pronoun_loc: 500 is outside the text/,
  );
  refuses(
    'wsc273',
    'test',
    (d) => {
      d[0]!.options = ['only one'];
    },
    /row 0: options: expected at least two options/,
  );
});

test("a built-in task's identity follows its definition's dataset files and nothing else", () => {
  const def = builtinTask('piqa')!;
  const make = (files?: { name: string; sha256: string }[], revision: string | null = null) => {
    const v = goldenSplit('piqa', 'validation');
    return buildTask(def, { ...source('piqa'), revision }, files ? { ...v, files } : v, goldenSplit('piqa', 'train'))
      .sha256;
  };
  const base = make();
  assert.match(base, /^[0-9a-f]{64}$/);
  assert.equal(make(), base);
  assert.notEqual(make([{ name: 'validation.parquet', sha256: '1'.repeat(64) }]), base);
  assert.notEqual(make(undefined, 'a'.repeat(40)), base);
  assert.notEqual(build('arc_easy').sha256, build('arc_challenge').sha256);
});

test("demonstrations are lm-eval's: one random.Random(1234) drawing in document order, byte for byte at 1 and 3 shots", () => {
  for (const def of BUILTIN_TASKS) {
    if (def.kind === 'loglikelihood_rolling') continue;
    const task = build(def.task);
    const expected = golden.tasks[def.task]!;
    for (const shots of [1, 3]) {
      const prefixes = harnessPrefixes(task.name, task.fewshot!, task.items, task.items.length, shots, 1234);
      task.items.forEach((item, i) => {
        const pairs = scoringPairs(item, prefixes[i]!).map((p) => [p.context, p.continuation]);
        assert.deepEqual(pairs, expected.docs[i]!.shots[String(shots)], `${def.task} doc ${i} ${shots}-shot`);
      });
      // Whatever --limit selects, a document's demonstrations are the same.
      const limit = Math.min(2, task.items.length);
      assert.deepEqual(
        harnessPrefixes(task.name, task.fewshot!, task.items, limit, shots, 1234),
        prefixes.slice(0, limit),
      );
    }
  }
});

test('a document equal to the evaluated one is dropped from its demonstrations (PIQA, WinoGrande); too few documents to draw is one line', () => {
  const task = build('winogrande');
  const prefixes = harnessPrefixes(task.name, task.fewshot!, task.items, task.items.length, 3, 1234);
  task.items.forEach((item, i) => {
    // A validation document that is also a training document never shows itself with its answer.
    if (task.fewshot!.pool.some((p) => sameDocument(p.meta, item.meta)) && item.kind === 'partial') {
      assert.ok(!prefixes[i]!.includes(`${item.contexts[item.gold]} ${item.continuation}`), `doc ${i}`);
    }
  });
  assert.ok(sameDocument({ a: [1, { b: 'x' }] }, { a: [1, { b: 'x' }] }));
  assert.ok(!sameDocument({ a: 1 }, { a: 1, b: 2 }));
  assert.throws(
    () => harnessPrefixes(task.name, task.fewshot!, task.items, 1, 6, 1234),
    /^ConfigError: task winogrande: 6-shot prompts draw 7 of the few-shot split's documents, which has 6$/,
  );
  const wsc = build('wsc273');
  assert.throws(
    () => harnessPrefixes(wsc.name, wsc.fewshot!, wsc.items, 1, 9, 1234),
    /draw 9 of the few-shot split's documents, which has 8/,
  );
});
