/**
 * Canary memorization: each canary of a truth.json tokenized as the corpus was and scored against
 * greedy generation by full recomputation; the summary by duplication count worked by hand.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { canaryMemorization, readCanaries, summarizeByCount } from '../../src/analysis/canaries.js';
import { trainBpe, writeTokenizerJson } from '../../src/data/bpe-trainer.js';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import { type NeoXConfig, parameterShapes } from '../../src/model/config.js';
import { Decoder } from '../../src/model/decoder.js';
import { pythiaArchitecture } from '../../src/model/presets.js';
import { initParameters, PYTHIA_INIT } from '../../src/train/init.js';
import { Prng } from '../../src/util/prng.js';
import { greedyByForward } from './greedy.js';

const dir = mkdtempSync(join(tmpdir(), 'canaries-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('each canary scores as its tokens do under greedy generation by forward', async () => {
  const rng = new Prng(9);
  const words = ['red', 'fox', 'jumps', 'over', 'lazy', 'dog', 'and', 'runs', 'home', 'fast'];
  const texts = Array.from({ length: 3 }, () =>
    Array.from({ length: 24 }, () => words[rng.int(words.length)]).join(' '),
  );
  const tokenizerPath = join(dir, 'tokenizer.json');
  await writeTokenizerJson(tokenizerPath, await trainBpe(texts, { vocabSize: 280 }));
  const tokenizer = await loadTokenizer(tokenizerPath);
  const truthPath = join(dir, 'truth.json');
  writeFileSync(
    truthPath,
    JSON.stringify({
      canaries: texts.map((text, id) => ({ id, count: [1, 4, 4][id], tokens: 0, documents: [], text })),
    }),
  );

  const config: NeoXConfig = {
    ...pythiaArchitecture({ numLayers: 2, hiddenSize: 32, numHeads: 2, vocabSize: 384, maxPositions: 64 }),
    dtype: 'float32',
  };
  const params = initParameters(parameterShapes(config), config, PYTHIA_INIT, 1);
  const decoder = await Decoder.create(config, params, { threads: 1 });
  const canaries = readCanaries(truthPath);
  const scores = await canaryMemorization(decoder, tokenizer, canaries, {
    promptLength: 8,
    continuationLength: 10,
    batchSize: 2,
  });
  await decoder.release();

  const tokens = await tokenizer.encodeBatch(texts);
  assert.ok(tokens.every((t) => t.length >= 18));
  const greedy = await greedyByForward(
    config,
    params,
    tokens.map((t) => t.slice(0, 8)),
    10,
  );
  const expected = tokens.map((t, i) => {
    let matched = 0;
    for (let k = 8; k < 18; k++) if (greedy[i]![k] === t[k]) matched++;
    return { id: i, count: [1, 4, 4][i]!, score: matched / 10, memorized: matched === 10 };
  });
  assert.deepEqual(scores, expected);

  await assert.rejects(
    canaryMemorization(decoder, tokenizer, canaries, { promptLength: 32, continuationLength: 32 }),
    /canary 0 has \d+ tokens, fewer than prompt \(32\) plus continuation \(32\)/,
  );
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ canaries: [{ id: 0, count: 1 }] }));
  assert.throws(
    () => readCanaries(bad),
    /bad\.json: canaries\[0\]: expected "id" and "count" numbers and a "text" string/,
  );
});

test('summary by duplication count', () => {
  const s = summarizeByCount([
    { id: 0, count: 4, score: 1, memorized: true },
    { id: 1, count: 1, score: 0.25, memorized: false },
    { id: 2, count: 4, score: 0.5, memorized: false },
  ]);
  assert.deepEqual(s, [
    { count: 1, canaries: 1, memorized: 0, meanScore: 0.25 },
    { count: 4, canaries: 2, memorized: 1, meanScore: 0.75 },
  ]);
});
