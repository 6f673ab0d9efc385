/**
 * `npm run bench:count`: `pythia count` throughput, tokens/s in all and per worker, for 1 and 2
 * worker threads, on Pythia's layouts at seq-length 2048: a preshuffled dataset and a document
 * dataset in GPT-NeoX order. The data: ~26M tokens drawn Zipf-like from a 50k vocabulary, 150
 * terms of 1–3 tokens, among them frequent ones. Also the matcher alone on tokens in memory.
 * BENCH_COUNT_STEPS sets the number of batches of 64 (default 200).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CountOrder, countTerms, type TermPatterns } from '../src/analysis/term-count.js';
import { TermMatcher } from '../src/analysis/term-matcher.js';
import { openTrainingOrder, PreshuffledWriter } from '../src/data/batches.js';
import { IndexedDatasetWriter } from '../src/data/indexed-dataset.js';
import { Prng } from '../src/util/prng.js';
import { loadNote, table } from './common.js';

const VOCAB = 50277;
const SEQ = 2048;
const BATCH = 64;
const STEPS = Number(process.env.BENCH_COUNT_STEPS ?? 200);
const TOKENS = STEPS * BATCH * (SEQ + 1);

/** Ids with Zipf-like frequencies: rank r ∝ 1/r, ranks scattered over the vocabulary. */
function zipfSampler(rng: Prng): () => number {
  const cdf = new Float64Array(VOCAB);
  let total = 0;
  for (let r = 0; r < VOCAB; r++) cdf[r] = total += 1 / (r + 1);
  const idOfRank = rng.shuffle(Array.from({ length: VOCAB }, (_, i) => i));
  return () => {
    const u = rng.float() * total;
    let lo = 0;
    let hi = VOCAB - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return idOfRank[lo]!;
  };
}

function terms(rng: Prng, next: () => number): TermPatterns {
  const out: TermPatterns = { terms: [], patterns: [], termOf: [], bare: [] };
  for (let t = 0; t < 150; t++) {
    const length = 1 + (t % 3);
    // A third start with a frequent token (drawn from the data's own distribution), the rest anywhere.
    const pattern = Array.from({ length }, (_, i) => (i === 0 && t % 3 === 0 ? next() : rng.int(VOCAB)));
    out.terms.push(`term${t}`);
    out.patterns.push(pattern);
    out.termOf.push(t);
    out.bare.push(false);
  }
  return out;
}

const dir = mkdtempSync(join(tmpdir(), 'bench-count-'));
try {
  console.log(`bench:count, ${availableParallelism()} cores; ${loadNote()}`);
  console.log(
    `data: ${STEPS} batches of ${BATCH} × ${SEQ + 1} tokens = ${(TOKENS / 1e6).toFixed(1)}M tokens, vocabulary ${VOCAB}, 150 terms`,
  );
  const rng = new Prng(1);
  const next = zipfSampler(rng);
  const patterns = terms(rng, next);

  const preshuffled = join(dir, 'preshuffled');
  const p = PreshuffledWriter.create(preshuffled, { vocabSize: VOCAB, seqLength: SEQ });
  const sample = new Int32Array(SEQ + 1);
  for (let s = 0; s < STEPS * BATCH; s++) {
    for (let i = 0; i <= SEQ; i++) sample[i] = next();
    p.addSample(sample);
  }
  await p.finish();
  // The same tokens cut into documents of 100-4000 tokens, for the GPT-NeoX order.
  const documents = join(dir, 'documents');
  const d = IndexedDatasetWriter.create(documents, { vocabSize: VOCAB });
  const all = (
    await openTrainingOrder({
      data: preshuffled,
      preshuffled: true,
      batchSize: 1,
      seqLength: SEQ,
      seed: 1234,
      trainIters: 1,
    })
  ).source;
  let doc: number[] = [];
  let length = 100 + rng.int(3900);
  for (let s = 0; s < all.length; s++) {
    for (const t of all.sample(s)) {
      doc.push(t);
      if (doc.length === length) {
        d.add(doc);
        doc = [];
        length = 100 + rng.int(3900);
      }
    }
  }
  if (doc.length) d.add(doc);
  all.close();
  await d.finish();

  const layouts: [string, CountOrder][] = [
    [
      'preshuffled',
      { data: preshuffled, preshuffled: true, batchSize: BATCH, seqLength: SEQ, seed: 1234, trainIters: STEPS },
    ],
    ['GPT-NeoX order', { data: documents, batchSize: BATCH, seqLength: SEQ, seed: 1234, trainIters: STEPS - 2 }],
  ];
  const rows: (string | number)[][] = [];
  for (const [name, order] of layouts) {
    const steps = [1, Math.floor(order.trainIters / 2), order.trainIters];
    await countTerms({ order, patterns, steps: [1] }); // builds the GPT-NeoX index maps once
    for (const workers of [1, 2]) {
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      const r = await countTerms({ order, patterns, steps, workers });
      const seconds = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const cpuSeconds = (cpu.user + cpu.system) / 1e6;
      rows.push([
        name,
        workers,
        (r.tokens / 1e6).toFixed(1),
        seconds.toFixed(2),
        (r.tokens / seconds / 1e6).toFixed(1),
        (r.tokens / seconds / workers / 1e6).toFixed(1),
        (r.tokens / cpuSeconds / 1e6).toFixed(1),
      ]);
    }
  }
  // The matcher alone, on tokens already in memory.
  const source = (await openTrainingOrder(layouts[0]![1])).source;
  const tokens = source.batchTokens(0, BATCH);
  source.close();
  const matcher = new TermMatcher(patterns.patterns, patterns.termOf, patterns.terms.length);
  const counts = new Float64Array(patterns.terms.length);
  const repeats = 40;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  for (let r = 0; r < repeats; r++)
    for (let row = 0; row < tokens.length; row += SEQ + 1) matcher.scan(tokens, row, row + SEQ + 1, counts, 0);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const scanned = (repeats * tokens.length) / 1e6;
  rows.push([
    'matcher alone (in memory)',
    1,
    scanned.toFixed(1),
    seconds.toFixed(2),
    (scanned / seconds).toFixed(1),
    (scanned / seconds).toFixed(1),
    (scanned / ((cpu.user + cpu.system) / 1e6)).toFixed(1),
  ]);
  console.log(
    table(
      ['layout', 'workers', 'M tokens', 'seconds', 'M tokens/s', 'M tokens/s per worker', 'M tokens per CPU-second'],
      rows,
    ),
  );
  console.log(
    "M tokens per CPU-second: tokens over the CPU time of all the process's threads, the per-core rate even on a busy machine",
  );
  console.log('target: at least 20M tokens/s per core, linear in workers (on an idle machine with a core per worker)');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
