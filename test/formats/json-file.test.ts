import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readTrainingRecord } from '../../src/analysis/training-record.js';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import { parseJsonFile } from '../../src/formats/strict-json.js';

const BOM = '\ufeff';

test('parseJsonFile reads JSON and names a leading byte-order mark in words', () => {
  assert.deepEqual(parseJsonFile('{"a": [1, 2]}'), { a: [1, 2] });
  assert.throws(
    () => parseJsonFile(`${BOM}{"a": 1}`),
    /^SyntaxError: starts with a UTF-8 byte-order mark \(U\+FEFF\)$/,
  );
});

test('a BOM-prefixed tokenizer.json or trainer_state.json gets an error naming the file and the mark, not quoting it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pythia-bom-'));
  const tokenizer = join(dir, 'tokenizer.json');
  writeFileSync(tokenizer, `${BOM}{"model": {}}`);
  await assert.rejects(loadTokenizer(tokenizer), (e: Error) => {
    assert.match(e.message, /tokenizer\.json/);
    assert.match(e.message, /byte-order mark \(U\+FEFF\)/);
    assert.ok(!e.message.includes(BOM), e.message);
    return true;
  });
  writeFileSync(join(dir, 'trainer_state.json'), `${BOM}{"recipe": {}}`);
  assert.throws(
    () => readTrainingRecord(dir),
    (e: Error) => /trainer_state\.json/.test(e.message) && /U\+FEFF/.test(e.message) && !e.message.includes(BOM),
  );
});
