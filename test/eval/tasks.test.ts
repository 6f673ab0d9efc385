/** Task files: each shape parsed, and every kind of bad line refused with file, line and field. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { resolveTaskPaths } from '../../src/eval/task-files.js';
import { type OutputType, readTask } from '../../src/eval/tasks.js';
import { MAX_JSON_DEPTH } from '../../src/formats/strict-json.js';
import { ConfigError, FormatError } from '../../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'pythia-tasks-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string | Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function refuses(text: string | Uint8Array, pattern: RegExp, outputType?: OutputType) {
  const path = file('bad.jsonl', text);
  assert.throws(
    () => readTask(path, outputType),
    (e: Error) => {
      assert.ok(e instanceof FormatError, e.message);
      assert.equal(e.message.split('\n').length, 1);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

/** Metadata as readTask returns it: an object with no prototype, so that any key is just a key. */
const record = (fields: object): Record<string, unknown> => Object.assign(Object.create(null), fields);

test('reads each kind, keeps extra fields as metadata, and defaults delimiters and stop strings', () => {
  const path = file(
    'mixed-meta.jsonl',
    '{"id": 7, "output_type": "multiple_choice", "context": "A", "choices": ["x", "y"], "gold": 1, "type": "pro"}\n\n',
  );
  const task = readTask(path);
  assert.equal(task.name, 'mixed-meta');
  assert.equal(task.outputType, 'multiple_choice');
  assert.deepEqual(task.items[0], {
    kind: 'multiple_choice',
    id: '7',
    meta: record({ type: 'pro' }),
    context: 'A',
    choices: ['x', 'y'],
    gold: 1,
    targetDelimiter: ' ',
  });
  const gen = readTask(file('gen.jsonl', '{"id": "g", "context": "Q:", "answer": "4", "x1": 2}\n'), 'generate_until');
  assert.deepEqual(gen.items[0], {
    kind: 'generate_until',
    id: 'g',
    meta: record({ x1: 2 }),
    context: 'Q:',
    answer: '4',
    until: ['\n'],
  });
  assert.match(task.sha256, /^[0-9a-f]{64}$/);
});

test('partial evaluation: a multiple_choice line with contexts, one continuation and gold', () => {
  const task = readTask(
    file(
      'wino.jsonl',
      '{"id": "w1", "output_type": "multiple_choice", "contexts": ["Anna gave Beth", "Beth gave Anna"], "continuation": "the book.", "gold": 1, "x": 3}\n' +
        '{"id": "w2", "output_type": "multiple_choice", "contexts": ["a", "b", "c"], "continuation": "", "gold": 2, "target_delimiter": "_"}\n',
    ),
  );
  assert.equal(task.outputType, 'multiple_choice');
  assert.deepEqual(task.items, [
    {
      kind: 'partial',
      id: 'w1',
      meta: record({ x: 3 }),
      contexts: ['Anna gave Beth', 'Beth gave Anna'],
      continuation: 'the book.',
      gold: 1,
      targetDelimiter: ' ',
    },
    {
      kind: 'partial',
      id: 'w2',
      meta: record({}),
      contexts: ['a', 'b', 'c'],
      continuation: '',
      gold: 2,
      targetDelimiter: '_',
    },
  ]);
});

test('partial evaluation lines are refused with the file, the line and the field', () => {
  const mc = '{"id": "a", "output_type": "multiple_choice", ';
  refuses(
    `${mc}"contexts": ["x"], "continuation": "c", "gold": 0}\n`,
    /bad\.jsonl:1: contexts: expected an array of at least two strings/,
  );
  refuses(
    `${mc}"contexts": ["x", 1], "continuation": "c", "gold": 0}\n`,
    /contexts: expected an array of at least two strings/,
  );
  refuses(`${mc}"contexts": ["x", "y"], "gold": 0}\n`, /bad\.jsonl:1: continuation: missing/);
  refuses(`${mc}"contexts": ["x", "y"], "continuation": "c", "gold": 2}\n`, /gold: 2 is out of range for 2 contexts/);
  refuses(
    `${mc}"contexts": ["x", "y"], "continuation": "", "gold": 0, "target_delimiter": ""}\n`,
    /continuation: empty/,
  );
  refuses(
    `${mc}"contexts": ["x", "y"], "context": "x", "continuation": "c", "gold": 0}\n`,
    /context: given with contexts/,
  );
  refuses(
    `${mc}"context": "x", "choices": ["y", "z"], "continuation": "c", "gold": 0}\n`,
    /continuation: belongs with contexts/,
  );
  refuses(
    `${mc}"context": "x", "choices": ["y", "z"], "gold": 0}\n{"id": "b", "output_type": "multiple_choice", "contexts": ["x", "y"], "continuation": "c", "gold": 0}\n`,
    /bad\.jsonl:2: contexts: line 1 has choices \(a multiple_choice file is all choices or all contexts\)/,
  );
});

test('refuses bad lines with the file, the line and the field', () => {
  refuses(
    '{"id": "a", "output_type": "multiple_choice", "context": "c", "choices": ["x", "y"], "gold": 0}\nnot json\n',
    /bad\.jsonl:2: not valid JSON/,
  );
  refuses(
    '{"id": "a", "output_type": "multiple_choice", "choices": ["x", "y"], "gold": 0}\n',
    /bad\.jsonl:1: context: missing/,
  );
  refuses(
    '{"id": "a", "output_type": "multiple_choice", "context": "c", "choices": ["x", "y"], "gold": 2}\n',
    /bad\.jsonl:1: gold: 2 is out of range for 2 choices/,
  );
  refuses(
    '{"id": "a", "output_type": "multiple_choice", "context": "c", "choices": ["x"], "gold": 0}\n',
    /choices: expected an array of at least two strings/,
  );
  refuses(
    '{"id": "a", "output_type": "ranking", "context": "c"}\n',
    /output_type: expected one of multiple_choice, loglikelihood, loglikelihood_rolling, generate_until/,
  );
  refuses('{"id": "a", "context": "c", "target": " t"}\n', /output_type: missing .*--output-type/);
  refuses('{"output_type": "loglikelihood", "context": "c", "target": " t"}\n', /bad\.jsonl:1: id: missing/);
  refuses(
    '{"id": "a", "output_type": "loglikelihood", "context": "c", "target": " t"}\n{"id": "a", "output_type": "loglikelihood", "context": "d", "target": " u"}\n',
    /bad\.jsonl:2: id: "a" already used on line 1/,
  );
  refuses(
    '{"id": "a", "output_type": "loglikelihood", "context": "c", "target": " t"}\n{"id": "b", "output_type": "generate_until", "context": "d", "answer": "u"}\n',
    /bad\.jsonl:2: output_type: "generate_until" differs/,
  );
  refuses(
    '{"id": "a", "output_type": "loglikelihood", "context": "c", "target": ""}\n',
    /target: expected a non-empty string/,
  );
  refuses(
    '{"id": "a", "output_type": "generate_until", "context": "c", "answer": "x", "until": []}\n',
    /until: expected a non-empty array/,
  );
  refuses('[1, 2]\n', /bad\.jsonl:1: expected a JSON object/);
  refuses('\n\n', /no items/);
  refuses(
    '{"id": "a", "context": "c", "choices": ["x", "y"], "gold": "0"}\n',
    /gold: expected an integer/,
    'multiple_choice',
  );
});

test('extra fields nested deeper than MAX_JSON_DEPTH, numbers beyond a double and keys given twice are refused', () => {
  const start = '{"id": "a", "output_type": "loglikelihood", "context": "c", "target": " t", "x": ';
  const line = (depth: number) => `${start}${'['.repeat(depth)}${']'.repeat(depth)}}\n`;
  assert.equal(readTask(file('deep-ok.jsonl', line(MAX_JSON_DEPTH - 1))).items.length, 1);
  // The line's object is the first level: the 64th array, at this character, is one too many.
  const at = start.length + MAX_JSON_DEPTH - 1;
  refuses(
    line(MAX_JSON_DEPTH),
    new RegExp(`bad\\.jsonl:1: not valid JSON \\(nested deeper than 64 arrays and objects at character ${at}\\)`),
  );
  refuses(line(1_000_000), /bad\.jsonl:1: not valid JSON \(nested deeper than 64 arrays and objects/);
  refuses(
    '{"id": "a", "output_type": "loglikelihood", "context": "c", "target": " t", "x1": -1e400}\n',
    /bad\.jsonl:1: not valid JSON \(number -1e400 is beyond the range of a double at character 82\)/,
  );
  refuses(
    '{"id": "a", "output_type": "loglikelihood", "context": "c", "target": " t", "context": "d"}\n',
    /bad\.jsonl:1: not valid JSON \(duplicate key "context" at character 76\)/,
  );
});

test('every extra key is kept as written, "__proto__" and "constructor" included', () => {
  const task = readTask(
    file(
      'proto.jsonl',
      '{"id": "a", "output_type": "loglikelihood", "context": "c", "target": " t", "__proto__": {"x": 1}, "constructor": "k", "term": "w"}\n',
    ),
  );
  const meta = task.items[0]!.meta;
  assert.deepEqual(Object.keys(meta), ['__proto__', 'constructor', 'term']);
  assert.deepEqual(Object.getOwnPropertyDescriptor(meta, '__proto__')?.value, record({ x: 1 }));
  assert.equal(JSON.stringify(meta), '{"__proto__":{"x":1},"constructor":"k","term":"w"}');
});

test('a term of the wrong type is refused, naming what a term is', () => {
  const line = (term: string) =>
    `{"id": "a", "output_type": "loglikelihood", "context": "c", "target": " t", "term": ${term}}\n`;
  for (const term of ['true', 'null', '["x"]', '{"w":1}', '""']) {
    refuses(
      line(term),
      new RegExp(
        `bad\\.jsonl:1: term: expected a non-empty string or a number \\(the item's key term\\), got ${term.replace(/[[\]{}]/g, '\\$&')}$`,
      ),
    );
  }
  assert.equal(readTask(file('term-number.jsonl', line('17'))).items[0]!.meta.term, 17);
});

test('invalid UTF-8 is refused with its line', () => {
  const good = '{"id": "a", "output_type": "loglikelihood", "context": "caf\u00e9", "target": " t"}\n';
  const bad = Buffer.concat([
    Buffer.from(good),
    Buffer.from('{"id": "b", "output_type": "loglikelihood", "context": "caf'),
    Buffer.from([0xc3, 0x28]),
    Buffer.from('", "target": " t"}\n'),
  ]);
  refuses(bad, /bad\.jsonl:2: not valid UTF-8$/);
  // A lone surrogate half, encoded (CESU-8 style), is not UTF-8 either.
  refuses(
    Buffer.concat([
      Buffer.from('{"id": "a", "output_type": "loglikelihood", "context": "'),
      Buffer.from([0xed, 0xa0, 0x80]),
      Buffer.from('", "target": " t"}\n'),
    ]),
    /bad\.jsonl:1: not valid UTF-8/,
  );
});

test('a UTF-8 byte-order mark may start a task file; anywhere else it is named, not quoted', () => {
  const line = (id: string) => `{"id": "${id}", "output_type": "loglikelihood", "context": "c", "target": " t"}\n`;
  const bytes = Buffer.from(`\uFEFF${line('a')}`);
  const task = readTask(file('bom.jsonl', bytes));
  assert.deepEqual(
    task.items.map((i) => i.id),
    ['a'],
  );
  assert.equal(task.sha256, createHash('sha256').update(bytes).digest('hex'));
  refuses(
    `${line('a')}\uFEFF${line('b')}`,
    /^[^\uFEFF]*bad\.jsonl:2: not valid JSON \(starts with a UTF-8 byte-order mark \(U\+FEFF\)\)$/,
  );
});

test('a missing task file and an unknown task name are one-line errors', () => {
  assert.throws(() => readTask(join(dir, 'absent.jsonl')), /absent\.jsonl: task file not found/);
  file('known.jsonl', '{"id": "a", "output_type": "loglikelihood", "context": "c", "target": " t"}\n');
  assert.deepEqual(resolveTaskPaths(['known'], [dir]), [join(dir, 'known.jsonl')]);
  assert.throws(
    () => resolveTaskPaths(['unknown'], [dir]),
    (e: Error) => e instanceof ConfigError && /unknown task "unknown".*known: .*known/.test(e.message),
  );
});
