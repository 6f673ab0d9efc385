/**
 * Hostile task files through `pythia eval`, as a user meets them: each is refused with one line
 * naming the file and the line before any checkpoint is scored, and nothing is written; what is
 * accepted reaches the results database as written.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { MAX_JSON_DEPTH } from '../../src/formats/strict-json.js';
import { ResultsStore } from '../../src/results/store.js';
import { repoRoot } from '../support/paths.js';
import { makeWorld, writeCheckpoint } from './support.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'pythia-hostile-tasks-'));
let checkpoint: string;

before(async () => {
  const world = await makeWorld(dir);
  checkpoint = join(dir, 'tiny', 'step0');
  await writeCheckpoint(world, checkpoint, 1);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const GOOD = '{"id": "a", "output_type": "loglikelihood", "context": "The cat sat on the", "target": " mat"}';

function taskFile(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

/** `pythia eval` of the checkpoint on one task file into a fresh database. */
function evaluate(task: string, db: string) {
  return spawnSync(process.execPath, [cli, 'eval', checkpoint, '--tasks', task, '--db', db, '--threads', '1'], {
    encoding: 'utf8',
  });
}

/** The eval fails with exactly one line matching `pattern`, and leaves no database behind. */
function refused(task: string, pattern: RegExp): void {
  const db = join(dir, `${task.slice(dir.length + 1)}.duckdb`);
  const r = evaluate(task, db);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^pythia: [^\n]*\n$/, 'one line, no stack');
  assert.match(r.stderr, pattern);
  assert.ok(!existsSync(db), 'nothing written');
}

const nested = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;

test('extra fields nested deeper than the limit are refused on read, naming the file and line', () => {
  const line = (depth: number) => GOOD.replace(/}$/, `, "deep": ${nested(depth)}}`);
  // The line's own object is one level: a field holds at most MAX_JSON_DEPTH − 1 more.
  const tooDeep = taskFile('deep.jsonl', `${GOOD.replace('"a"', '"b"')}\n${line(MAX_JSON_DEPTH)}\n`);
  refused(
    tooDeep,
    /^pythia: .*deep\.jsonl:2: not valid JSON \(nested deeper than 64 arrays and objects at character \d+\)$/m,
  );
  // Deep enough to overflow the stack of a recursive reader or writer.
  refused(taskFile('deeper.jsonl', `${line(100_000)}\n`), /deeper\.jsonl:1: not valid JSON \(nested deeper than 64/);
  const atLimit = taskFile('at-limit.jsonl', `${line(MAX_JSON_DEPTH - 1)}\n`);
  const r = evaluate(atLimit, join(dir, 'at-limit.duckdb'));
  assert.equal(r.status, 0, r.stderr);
});

test('a byte-order mark starts a task file unnoticed; later it is named in words', () => {
  const r = evaluate(taskFile('bom.jsonl', `\uFEFF${GOOD}\n`), join(dir, 'bom.duckdb'));
  assert.equal(r.status, 0, r.stderr);
  const twice = taskFile('bom-twice.jsonl', `\uFEFF${GOOD}\n\uFEFF${GOOD.replace('"a"', '"b"')}\n`);
  refused(
    twice,
    /^pythia: [^\uFEFF]*bom-twice\.jsonl:2: not valid JSON \(starts with a UTF-8 byte-order mark \(U\+FEFF\)\)$/m,
  );
});

test('invalid UTF-8 and a term of the wrong type are refused through pythia eval', () => {
  const invalid = Buffer.concat([
    Buffer.from(`${GOOD}\n${GOOD.replace('"a"', '"b"').replace('cat', 'c\xff')}\n`, 'latin1'),
  ]);
  refused(taskFile('latin1.jsonl', invalid), /^pythia: .*latin1\.jsonl:2: not valid UTF-8$/m);
  refused(
    taskFile('term.jsonl', `${GOOD.replace(/}$/, ', "term": false}')}\n`),
    /^pythia: .*term\.jsonl:1: term: expected a non-empty string or a number \(the item's key term\), got false$/m,
  );
});

test('metadata keys reach the results database as written, "__proto__" included', async () => {
  const line = GOOD.replace(
    /}$/,
    ', "__proto__": {"polluted": true}, "constructor": 1, "term": "mat", "x1": [1, {"y": null}]}',
  );
  const db = join(dir, 'proto.duckdb');
  const r = evaluate(taskFile('proto.jsonl', `${line}\n`), db);
  assert.equal(r.status, 0, r.stderr);
  const store = await ResultsStore.open(db, { readOnly: true });
  try {
    const [row] = await store.rows(
      "SELECT CAST(meta AS VARCHAR) AS meta, meta->>'$.__proto__.polluted' AS polluted FROM task_items",
    );
    assert.equal(row!.meta, '{"__proto__":{"polluted":true},"constructor":1,"term":"mat","x1":[1,{"y":null}]}');
    assert.equal(row!.polluted, 'true');
    assert.deepEqual(await store.rows('SELECT task, item_id, term FROM item_terms'), [
      { task: 'proto', item_id: 'a', term: 'mat' },
    ]);
  } finally {
    store.close();
  }
});
