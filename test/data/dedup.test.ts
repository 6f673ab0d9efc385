import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  dedupCorpus,
  estimatedJaccard,
  MinHasher,
  NearDuplicateIndex,
  optimalLshParameters,
  type RemovedDocument,
} from '../../src/data/dedup.js';
import { ConfigError, DataError } from '../../src/util/errors.js';
import { Prng } from '../../src/util/prng.js';
import { repoRoot } from '../support/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'pythia-dedup-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const prng = new Prng(2024);
const randomWords = (n: number): string[] => Array.from({ length: n }, () => `w${prng.int(5000)}`);
/** A copy with `changes` words replaced at distinct random positions. */
function edited(words: string[], changes: number): string[] {
  const copy = [...words];
  const positions = new Set<number>();
  while (positions.size < changes) positions.add(prng.int(words.length));
  for (const p of positions) copy[p] = `changed${prng.int(1e6)}`;
  return copy;
}

/** Exact Jaccard similarity of word 5-shingle sets, computed directly on strings. */
function trueJaccard(a: string[], b: string[], k = 5): number {
  const shingles = (w: string[]) => new Set(w.slice(0, w.length - k + 1).map((_, i) => w.slice(i, i + k).join(' ')));
  const sa = shingles(a);
  const sb = shingles(b);
  let inter = 0;
  for (const s of sa) if (sb.has(s)) inter++;
  return inter / (sa.size + sb.size - inter);
}

test('default LSH bands equal the numpy optimum of false positive + false negative areas', () => {
  // Golden values: numpy 2.4 trapezoid integration (20001 points) of 1-(1-s^r)^b below the threshold
  // and its complement above, weighted 0.5/0.5, minimized over b·r ≤ permutations (datasketch's rule).
  assert.deepEqual(optimalLshParameters(0.87, 128), { bands: 7, rows: 18 });
  assert.deepEqual(optimalLshParameters(0.5, 128), { bands: 25, rows: 5 });
  assert.deepEqual(optimalLshParameters(0.87, 256), { bands: 11, rows: 23 });
  assert.deepEqual(optimalLshParameters(0.8, 64), { bands: 5, rows: 11 });
});

test('the MinHash estimate tracks the exact Jaccard similarity of shingle sets', () => {
  const hasher = new MinHasher(256, 5, 7);
  const base = randomWords(500);
  for (const changes of [0, 5, 20, 60, 150]) {
    const other = edited(base, changes);
    const exact = trueJaccard(base, other);
    const estimate = estimatedJaccard(hasher.signature(base.join(' '))!, hasher.signature(other.join(' '))!);
    // Standard error of the estimate is sqrt(J(1-J)/256) ≤ 0.032; allow 3.5 of them.
    assert.ok(Math.abs(estimate - exact) < 0.11, `changes ${changes}: exact ${exact.toFixed(3)} estimate ${estimate}`);
  }
  assert.equal(hasher.signature('  \n\t '), undefined);
  // Case and white space do not matter; word order does.
  assert.deepEqual(hasher.signature('A b  C d\ne f'), hasher.signature('a B c D e F'));
  assert.notDeepEqual(hasher.signature('a b c d e f'), hasher.signature('f e d c b a'));
});

test('planted near-duplicates are removed, pointing at the kept original; distinct documents stay', async () => {
  const originals = Array.from({ length: 30 }, () => randomWords(400));
  const docs: { text: string; id: string }[] = originals.map((w, i) => ({ text: w.join(' '), id: `orig${i}` }));
  const planted: [number, number][] = []; // [position in corpus, original index]
  const plant = (at: number, original: number, text: string, id: string): void => {
    docs.splice(at, 0, { text, id });
    planted.forEach((p) => {
      if (p[0] >= at) p[0]++;
    });
    planted.push([at, original]);
  };
  plant(12, 3, edited(originals[3]!, 3).join(' '), 'near3');
  plant(20, 10, edited(originals[10]!, 2).join(' '), 'near10');
  plant(31, 17, originals[17]!.join(' ').toUpperCase(), 'case17');
  plant(33, 3, edited(originals[3]!, 1).join(' '), 'near3b');
  // Same-topic but different documents: 40% of words changed (Jaccard far below 0.87), kept.
  docs.push({ text: edited(originals[5]!, 160).join(' '), id: 'far5' });
  assert.ok(trueJaccard(originals[5]!, docs.at(-1)!.text.split(' ')) < 0.3);

  const input = join(dir, 'planted.jsonl');
  writeFileSync(input, `${docs.map((d) => JSON.stringify({ text: d.text, meta: { id: d.id } })).join('\n')}\n`);
  const out = join(dir, 'kept.jsonl');
  const report = join(dir, 'removed.jsonl');
  const summary = await dedupCorpus({ inputs: [input], out, report });
  assert.deepEqual(summary.lsh, { bands: 7, rows: 18 });
  assert.equal(summary.documents, 35);
  assert.equal(summary.removed, 4);
  assert.equal(summary.kept, 31);

  const removed = readFileSync(report, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as RemovedDocument);
  const positionOf = (id: string) => docs.findIndex((d) => d.id === id);
  assert.deepEqual(
    removed.map((r) => [r.document, r.duplicateOf]),
    planted.map(([at, original]) => [at, positionOf(`orig${original}`)]).sort((x, y) => x[0]! - y[0]!),
  );
  for (const r of removed) {
    assert.ok(r.jaccard >= 0.87 && r.jaccard <= 1);
    assert.equal(r.line, r.document + 1);
    assert.equal(r.duplicateOfLine, r.duplicateOf + 1);
    assert.equal(r.file, input);
  }
  const kept = readFileSync(out, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { text: string; meta: { id: string } });
  assert.deepEqual(
    kept.map((k) => k.meta.id),
    [...originals.map((_, i) => `orig${i}`), 'far5'],
  );
});

test('the same seed gives the same bytes; another seed finds the same planted duplicates', async () => {
  const a = randomWords(300);
  // One changed word: Jaccard ≈ 0.967, found by 7 bands × 18 rows with probability 1 − (1 − 0.967^18)^7 ≈ 0.996.
  const lines = [a.join(' '), randomWords(300).join(' '), edited(a, 1).join(' '), randomWords(50).join(' ')];
  const input = join(dir, 'seeded.txt');
  writeFileSync(input, `${lines.join('\n\n')}\n`);
  const run = async (name: string, seed: number) => {
    const out = join(dir, `${name}.jsonl`);
    const report = join(dir, `${name}.removed.jsonl`);
    const summary = await dedupCorpus({ inputs: [input], out, report, seed });
    return { summary, out: readFileSync(out, 'utf8'), report: readFileSync(report, 'utf8') };
  };
  const first = await run('s1', 1);
  const again = await run('s1b', 1);
  const other = await run('s9', 9);
  assert.equal(first.out, again.out);
  assert.equal(first.report, again.report);
  assert.equal(first.summary.removed, 1);
  assert.equal(other.out, first.out);
  assert.deepEqual(JSON.parse(first.report).duplicateOf, 0);
  assert.deepEqual(JSON.parse(first.out.split('\n')[0]!), { text: lines[0] });
});

test('documents without words are kept, never matched', () => {
  const index = new NearDuplicateIndex({ permutations: 32 });
  assert.equal(index.hasher.signature(''), undefined);
  const sig = index.hasher.signature('one two three four five six')!;
  assert.equal(index.match(sig), undefined);
  assert.equal(index.insert(sig), 0);
  assert.deepEqual(index.match(sig), { keptIndex: 0, jaccard: 1 });
});

test('bad parameters are ConfigErrors; bad input leaves no output behind', async () => {
  assert.throws(() => new NearDuplicateIndex({ threshold: 1.5 }), ConfigError);
  assert.throws(() => new NearDuplicateIndex({ shingle: 0 }), ConfigError);
  assert.throws(() => new NearDuplicateIndex({ permutations: 64, bands: 65 }), ConfigError);
  const input = join(dir, 'broken.jsonl');
  writeFileSync(input, '{"text": "fine"}\n{"text": oops}\n');
  const sub = mkdtempSync(join(dir, 'out-'));
  await assert.rejects(
    dedupCorpus({ inputs: [input], out: join(sub, 'o.jsonl'), report: join(sub, 'r.jsonl') }),
    DataError,
  );
  assert.deepEqual(readdirSync(sub), []);
  assert.equal(existsSync(join(sub, 'o.jsonl')), false);
});

test('pythia data dedup reports the counts and writes the report beside the output', () => {
  const cli = join(repoRoot, 'dist/src/cli/main.js');
  const a = randomWords(200).join(' ');
  const input = join(dir, 'cli.txt');
  writeFileSync(input, `${[a, randomWords(200).join(' '), a.replace(/^\S+/, 'different')].join('\n\n')}\n`);
  const out = join(dir, 'cli-kept.jsonl');
  const run = spawnSync(process.execPath, [cli, 'data', 'dedup', '--input', input, '--out', out], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.match(
    run.stdout,
    /^kept 2 of 3 documents, removed 1 near-duplicates \(Jaccard ≥ 0\.87, 5-word shingles, 128 permutations, 7 bands × 18 rows, seed 1\)/,
  );
  const removed = JSON.parse(readFileSync(join(dir, 'cli-kept.removed.jsonl'), 'utf8')) as RemovedDocument;
  assert.equal(removed.document, 2);
  assert.equal(removed.duplicateOf, 0);
  const bad = spawnSync(process.execPath, [cli, 'data', 'dedup', '--input', input, '--out', out, '--threshold', '2'], {
    encoding: 'utf8',
  });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--threshold/);
});
