/**
 * Term counts against a direct count: the batches rebuilt with the data layer's own batch code
 * (`openTrainingOrder(...).source.batchTokens`) and every term form compared at every position
 * of every sample, one by one. A small corpus tokenized with a BPE trained on it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  type CountOrder,
  countTerms,
  parseSteps,
  readTerms,
  type TermPatterns,
  termPatterns,
  wordEdges,
} from '../../src/analysis/term-count.js';
import { openTrainingOrder, PreshuffledWriter } from '../../src/data/batches.js';
import { trainBpe, writeTokenizerJson } from '../../src/data/bpe-trainer.js';
import { IndexedDatasetWriter } from '../../src/data/indexed-dataset.js';
import { loadTokenizer, type TextTokenizer } from '../../src/data/tokenizer.js';
import { Prng } from '../../src/util/prng.js';
import { repoRoot } from '../support/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'term-count-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const WORDS = [
  'the',
  'cat',
  'sat',
  'on',
  'a',
  'mat',
  'catalog',
  'dog',
  'ran',
  '17',
  '170',
  '7',
  'New',
  'York',
  'is',
  'big',
  '.',
  '\n',
];
const RARE = ['catalogue', 'cats', 'concat', '1777', '17th', 'matte', 'New Yorker', 'the cattle', 'x7'];
const TERMS = ['cat', 'the cat', '17', '7', 'New York', 'mat', 'zebra', '.'];
const ORDER = { batchSize: 4, seqLength: 16, seed: 1234, trainIters: 30 };
let tokenizer: TextTokenizer;
let tokenizerPath: string;
let data: string;
let preshuffled: string;
let patterns: TermPatterns;
let termsPath: string;

before(async () => {
  const rng = new Prng(5);
  const documents = Array.from({ length: 160 }, () => {
    const n = rng.between(3, 20);
    return Array.from({ length: n }, () => WORDS[rng.int(WORDS.length)]!)
      .join(' ')
      .replace(/ \n /g, '\n');
  });
  tokenizerPath = join(dir, 'tokenizer.json');
  await writeTokenizerJson(tokenizerPath, await trainBpe(documents, { vocabSize: 300 }));
  tokenizer = await loadTokenizer(tokenizerPath);
  // Words the tokenizer never saw come out in pieces, some starting with a term's tokens.
  const withRare = documents.map((d) => (rng.chance(0.5) ? `${d} ${RARE[rng.int(RARE.length)]} ${d}` : d));
  data = join(dir, 'corpus');
  const w = IndexedDatasetWriter.create(data, { vocabSize: tokenizer.vocabSize });
  for (const doc of await tokenizer.encodeBatch(withRare)) w.add([...doc, tokenizer.eodId]);
  await w.finish();
  // The same training order written out as a preshuffled dataset.
  const order = await openTrainingOrder({ data, ...ORDER });
  preshuffled = join(dir, 'preshuffled');
  const p = PreshuffledWriter.create(preshuffled, { vocabSize: tokenizer.vocabSize, seqLength: ORDER.seqLength });
  for (let s = 0; s < ORDER.trainIters; s++) p.addBatch(order.source.batchTokens(s, ORDER.batchSize));
  await p.finish();
  order.source.close();
  termsPath = join(dir, 'terms.txt');
  writeFileSync(termsPath, `${TERMS.join('\n')}\n\n`);
  patterns = await termPatterns(readTerms(termsPath), tokenizer, termsPath);
});

/** The truth: batches 0 … step−1 from the batch code, each form of each term tried at every position. */
async function directCounts(order: CountOrder, steps: number[]): Promise<number[][]> {
  const forms = await Promise.all(TERMS.map(async (t) => [await tokenizer.encode(t), await tokenizer.encode(` ${t}`)]));
  const { source } = await openTrainingOrder(order);
  const L = source.sampleLength;
  const perStep: number[][] = [];
  for (let s = 0; s < Math.max(...steps); s++) {
    const batch = Array.from(source.batchTokens(s, order.batchSize));
    perStep.push(
      forms.map((termForms) => {
        let n = 0;
        for (let row = 0; row < order.batchSize; row++) {
          const sample = batch.slice(row * L, (row + 1) * L);
          for (let i = 0; i < L; i++) {
            const at = (f: number[]) => i + f.length <= L && f.every((id, k) => sample[i + k] === id);
            // A position where the spaced form matches also holds the bare form when the spaced
            // form is a space token followed by the bare tokens: count the position once.
            const spacedIsSpacePlusBare =
              termForms[1]!.length === termForms[0]!.length + 1 &&
              termForms[0]!.every((id, k) => termForms[1]![k + 1] === id);
            if (at(termForms[0]!)) n++;
            else if (!spacedIsSpacePlusBare && at(termForms[1]!)) n++;
          }
        }
        return n;
      }),
    );
  }
  source.close();
  return TERMS.map((_, t) => steps.map((step) => perStep.slice(0, step).reduce((sum, counts) => sum + counts[t]!, 0)));
}

test('counts at every step equal a direct count over the rebuilt batches (GPT-NeoX order and preshuffled)', async () => {
  const steps = [0, 1, 2, 7, 16, 30];
  const order = { data, ...ORDER };
  const truth = await directCounts(order, steps);
  assert.ok(
    truth.some((c) => c[c.length - 1]! > 10),
    'the corpus should hold the terms',
  );
  assert.equal(truth[TERMS.indexOf('zebra')]![steps.length - 1], 0);
  const r = await countTerms({ order, patterns, steps });
  assert.deepEqual(r.steps, steps);
  assert.deepEqual(r.terms, TERMS);
  assert.deepEqual(r.counts, truth);
  assert.equal(r.tokens, 30 * ORDER.batchSize * (ORDER.seqLength + 1));
  const p = await countTerms({ order: { ...order, data: preshuffled, preshuffled: true }, patterns, steps });
  assert.deepEqual(p.counts, truth);
});

test('with whole words, the counts equal whole-word matches of a regular expression in each decoded sample', async () => {
  const order = { data, ...ORDER };
  const r = await countTerms({ order, patterns, steps: [ORDER.trainIters], words: wordEdges(tokenizer), workers: 2 });
  const { source } = await openTrainingOrder(order);
  const L = source.sampleLength;
  const texts: string[] = [];
  for (let s = 0; s < ORDER.trainIters; s++) {
    const batch = Array.from(source.batchTokens(s, ORDER.batchSize));
    for (let row = 0; row < ORDER.batchSize; row++) texts.push(tokenizer.decode(batch.slice(row * L, (row + 1) * L)));
  }
  source.close();
  const escapeRegExp = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const expected = TERMS.map((t) => {
    const re = new RegExp(`(?<![\\p{L}\\p{N}_])${escapeRegExp(t)}(?![\\p{L}\\p{N}_])`, 'gu');
    return [texts.reduce((n, text) => n + (text.match(re)?.length ?? 0), 0)];
  });
  assert.deepEqual(r.counts, expected);
  // "cat" inside "catalog" and "7" inside "17" or "170" are not words: fewer than the plain token count.
  const plain = await countTerms({ order, patterns, steps: [ORDER.trainIters] });
  assert.ok(plain.counts[TERMS.indexOf('7')]![0]! >= r.counts[TERMS.indexOf('7')]![0]!);
  assert.ok(
    plain.counts.some((c, t) => c[0]! > r.counts[t]![0]!),
    'some token matches are not whole words',
  );
});

test('two workers, and shards that add up to the whole', async () => {
  const steps = [4, 9, 30];
  const order = { data, ...ORDER };
  const whole = await countTerms({ order, patterns, steps });
  const workers = await countTerms({ order, patterns, steps, workers: 2 });
  assert.deepEqual(workers.counts, whole.counts);
  const shards = await Promise.all(
    [0, 1, 2].map((index) => countTerms({ order, patterns, steps, shard: { index, count: 3 } })),
  );
  assert.deepEqual(
    shards.map((s) => s.batches),
    [
      [0, 10],
      [10, 20],
      [20, 30],
    ],
  );
  const summed = whole.counts.map((row, t) => row.map((_, j) => shards.reduce((sum, s) => sum + s.counts[t]![j]!, 0)));
  assert.deepEqual(summed, whole.counts);
});

test('terms: JSON Lines with "term", the "pythia" steps, and bad input as one-line errors', async () => {
  const jsonl = join(dir, 'terms.jsonl');
  writeFileSync(jsonl, '{"term": "cat", "kind": "animal"}\n{"term": "dog"}\n');
  assert.deepEqual(readTerms(jsonl), [
    { term: 'cat', line: 1 },
    { term: 'dog', line: 2 },
  ]);
  const pythia = parseSteps('pythia');
  assert.equal(pythia.length, 154);
  assert.deepEqual(pythia.slice(0, 12), [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000]);
  assert.deepEqual(parseSteps('30, 2,2'), [2, 30]);
  assert.throws(() => parseSteps('1,x'), /--steps "1,x"/);

  const dup = join(dir, 'dup.txt');
  writeFileSync(dup, 'cat\ndog\ncat\n');
  assert.throws(
    () => readTerms(dup),
    (e: Error) => e.name === 'FormatError' && /dup\.txt: line 3: term "cat" already on line 1/.test(e.message),
  );
  const empty = join(dir, 'empty.jsonl');
  writeFileSync(empty, '{"term": ""}\n');
  assert.throws(() => readTerms(empty), /line 1: term: expected a non-empty string/);

  // A tokenizer whose normalizer deletes "~": the term "~" tokenizes to nothing.
  const json = JSON.parse(readFileSync(tokenizerPath, 'utf8'));
  json.normalizer = { type: 'Replace', pattern: { String: '~' }, content: '' };
  const stripping = join(dir, 'stripping.json');
  writeFileSync(stripping, JSON.stringify(json));
  const tilde = join(dir, 'tilde.txt');
  writeFileSync(tilde, 'cat\n~~\n');
  await assert.rejects(
    termPatterns(readTerms(tilde), await loadTokenizer(stripping), tilde),
    /tilde\.txt: line 2: term "~~" tokenizes to nothing/,
  );

  const order = { data, ...ORDER };
  await assert.rejects(
    countTerms({ order, patterns, steps: [31] }),
    /step 31 is past the end of training: train-iters is 30/,
  );
});

test('pythia count: --json shape and one-line errors', () => {
  const cli = join(repoRoot, 'dist/src/cli/main.js');
  const common = [
    'count',
    '--data',
    data,
    '--terms',
    termsPath,
    '--tokenizer',
    tokenizerPath,
    '--train-batch-size',
    '4',
    '--seq-length',
    '16',
    '--train-iters',
    '30',
  ];
  const r = spawnSync(process.execPath, [cli, ...common, '--steps', '30,2', '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { steps: number[]; terms: Record<string, number[]> };
  assert.deepEqual(out.steps, [2, 30]);
  assert.deepEqual(Object.keys(out.terms).sort(), [...TERMS].sort());
  assert.ok(r.stdout.indexOf('"cat"') < r.stdout.indexOf('"17"'), 'terms in file order');
  assert.ok(out.terms.cat![1]! >= out.terms.cat![0]!);
  const bad = spawnSync(process.execPath, [cli, ...common, '--steps', '40'], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^pythia: step 40 is past the end of training: train-iters is 30\n$/);
});
