/**
 * Near-duplicate removal with MinHash LSH (Broder 1997; Leskovec, Rajaraman & Ullman, "Mining of
 * Massive Datasets" ch. 3). Pythia's deduplicated Pile used a Jaccard threshold of 0.87.
 *
 * A document's shingles are its runs of `shingle` consecutive words (lower-cased, split on white
 * space; a shorter document is one shingle). Each shingle hashes to 32 bits (FNV-1a of each word,
 * combined); permutation i maps a hash x to fmix32((x ^ a_i) · b_i), a bijection of 32-bit values
 * with a_i, b_i drawn from the project PRNG seeded with `seed`. The signature keeps each
 * permutation's minimum. LSH splits the signature into `bands` bands of `rows` values; documents
 * sharing any band are candidates, and a candidate whose signatures agree in at least `threshold` of
 * the positions (the MinHash estimate of Jaccard similarity) is a duplicate.
 *
 * Documents are processed in order: the first of a group of near-duplicates is kept, each later one
 * is removed and reported with the kept document it matched best (highest estimate, earliest on ties).
 * Memory: 4·permutations bytes per kept document, plus the band buckets.
 */

import { AtomicFileWriter } from '../util/atomic.js';
import { ConfigError } from '../util/errors.js';
import { Prng } from '../util/prng.js';
import { type CorpusStats, readCorpus, type TxtMode } from './corpus.js';

export interface MinHashOptions {
  threshold?: number;
  shingle?: number;
  permutations?: number;
  /** Default: the bands that minimize false positives + false negatives around the threshold. */
  bands?: number;
  seed?: number;
}

export interface LshParameters {
  bands: number;
  rows: number;
}

const DEFAULTS = { threshold: 0.87, shingle: 5, permutations: 128, seed: 1 };

/** Probability that two documents with Jaccard similarity s share at least one band. */
function candidateProbability(s: number, bands: number, rows: number): number {
  return 1 - (1 - s ** rows) ** bands;
}

function simpson(f: (x: number) => number, a: number, b: number, intervals = 200): number {
  const h = (b - a) / intervals;
  let sum = f(a) + f(b);
  for (let i = 1; i < intervals; i++) sum += (i % 2 === 1 ? 4 : 2) * f(a + i * h);
  return (sum * h) / 3;
}

/**
 * The (bands, rows) with bands·rows ≤ permutations that minimize the area of false positives below
 * the threshold plus false negatives above it (equal weights, as datasketch's MinHashLSH chooses).
 */
export function optimalLshParameters(threshold: number, permutations: number): LshParameters {
  let best: LshParameters = { bands: 1, rows: permutations };
  let bestError = Infinity;
  for (let bands = 1; bands <= permutations; bands++) {
    for (let rows = 1; rows <= Math.floor(permutations / bands); rows++) {
      const falsePositive = simpson((s) => candidateProbability(s, bands, rows), 0, threshold);
      const falseNegative = simpson((s) => 1 - candidateProbability(s, bands, rows), threshold, 1);
      const error = 0.5 * falsePositive + 0.5 * falseNegative;
      if (error < bestError) {
        bestError = error;
        best = { bands, rows };
      }
    }
  }
  return best;
}

/** Murmur3's 32-bit finalizer: a bijection that mixes every input bit into every output bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function fnv1a(word: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < word.length; i++) {
    h ^= word.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** 32-bit hashes of a text's word shingles (duplicates included; they do not change minima). */
export function shingleHashes(text: string, shingle: number): Uint32Array {
  const words = text
    .toLowerCase()
    .split(/\s+/u)
    .filter((w) => w.length > 0);
  if (words.length === 0) return new Uint32Array(0);
  const wordHashes = words.map(fnv1a);
  const count = Math.max(1, words.length - shingle + 1);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    let h = 0x9747b28c;
    for (let j = i; j < Math.min(i + shingle, words.length); j++) h = fmix32(Math.imul(h ^ wordHashes[j]!, 0x5bd1e995));
    out[i] = h;
  }
  return out;
}

export class MinHasher {
  private readonly xor: Uint32Array;
  private readonly mul: Uint32Array;

  constructor(
    readonly permutations: number,
    readonly shingle: number,
    seed: number,
  ) {
    const prng = new Prng(seed);
    this.xor = new Uint32Array(permutations);
    this.mul = new Uint32Array(permutations);
    for (let i = 0; i < permutations; i++) {
      this.xor[i] = prng.nextU32();
      this.mul[i] = prng.nextU32() | 1; // odd, so multiplying is a bijection
    }
  }

  /** The MinHash signature; undefined for a document without words. */
  signature(text: string): Uint32Array | undefined {
    const hashes = shingleHashes(text, this.shingle);
    if (hashes.length === 0) return undefined;
    const sig = new Uint32Array(this.permutations);
    for (let p = 0; p < this.permutations; p++) {
      const a = this.xor[p]!;
      const b = this.mul[p]!;
      let min = 0xffffffff;
      for (let i = 0; i < hashes.length; i++) {
        const v = fmix32(Math.imul(hashes[i]! ^ a, b));
        if (v < min) min = v;
      }
      sig[p] = min;
    }
    return sig;
  }
}

/** The fraction of positions where two signatures agree: the MinHash estimate of Jaccard similarity. */
export function estimatedJaccard(a: Uint32Array, b: Uint32Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

export interface DuplicateMatch {
  /** Index (among indexed documents) of the kept document it matches. */
  keptIndex: number;
  jaccard: number;
}

/** The kept documents' signatures and band buckets. */
export class NearDuplicateIndex {
  readonly threshold: number;
  readonly lsh: LshParameters;
  readonly hasher: MinHasher;
  private signatures: Uint32Array;
  private count = 0;
  /** Per band: band hash → the kept document, or several (most buckets hold one). */
  private readonly buckets: Map<number, number | number[]>[];

  constructor(options: MinHashOptions = {}) {
    const threshold = options.threshold ?? DEFAULTS.threshold;
    const shingle = options.shingle ?? DEFAULTS.shingle;
    const permutations = options.permutations ?? DEFAULTS.permutations;
    const seed = options.seed ?? DEFAULTS.seed;
    if (!(threshold > 0 && threshold <= 1))
      throw new ConfigError(`--threshold: expected a Jaccard similarity in (0, 1], got ${threshold}`);
    if (!Number.isInteger(shingle) || shingle < 1)
      throw new ConfigError(`--shingle: expected a positive integer, got ${shingle}`);
    if (!Number.isInteger(permutations) || permutations < 1 || permutations > 4096) {
      throw new ConfigError(`--permutations: expected an integer in [1, 4096], got ${permutations}`);
    }
    if (!Number.isInteger(seed) || seed < 0)
      throw new ConfigError(`--seed: expected a non-negative integer, got ${seed}`);
    if (
      options.bands !== undefined &&
      (!Number.isInteger(options.bands) || options.bands < 1 || options.bands > permutations)
    ) {
      throw new ConfigError(
        `--bands: expected an integer in [1, ${permutations}] (the permutations), got ${options.bands}`,
      );
    }
    this.threshold = threshold;
    this.lsh =
      options.bands === undefined
        ? optimalLshParameters(threshold, permutations)
        : { bands: options.bands, rows: Math.floor(permutations / options.bands) };
    this.hasher = new MinHasher(permutations, shingle, seed);
    this.signatures = new Uint32Array(permutations * 1024);
    this.buckets = Array.from({ length: this.lsh.bands }, () => new Map<number, number | number[]>());
  }

  get size(): number {
    return this.count;
  }

  private bandKey(sig: Uint32Array, band: number): number {
    let h = 0x2545f491;
    for (let r = band * this.lsh.rows; r < (band + 1) * this.lsh.rows; r++)
      h = fmix32(Math.imul(h ^ sig[r]!, 0x5bd1e995));
    return h;
  }

  private signatureOf(index: number): Uint32Array {
    const p = this.hasher.permutations;
    return this.signatures.subarray(index * p, (index + 1) * p);
  }

  /** The best kept match at or above the threshold, if any. */
  match(sig: Uint32Array): DuplicateMatch | undefined {
    let best: DuplicateMatch | undefined;
    const seen = new Set<number>();
    for (let band = 0; band < this.lsh.bands; band++) {
      const bucket = this.buckets[band]!.get(this.bandKey(sig, band));
      for (const candidate of bucket === undefined ? [] : typeof bucket === 'number' ? [bucket] : bucket) {
        if (seen.has(candidate)) continue;
        seen.add(candidate);
        const jaccard = estimatedJaccard(sig, this.signatureOf(candidate));
        if (jaccard < this.threshold) continue;
        if (best === undefined || jaccard > best.jaccard || (jaccard === best.jaccard && candidate < best.keptIndex)) {
          best = { keptIndex: candidate, jaccard };
        }
      }
    }
    return best;
  }

  /** Adds a kept document; returns its index. */
  insert(sig: Uint32Array): number {
    const p = this.hasher.permutations;
    if ((this.count + 1) * p > this.signatures.length) {
      const grown = new Uint32Array(this.signatures.length * 2);
      grown.set(this.signatures);
      this.signatures = grown;
    }
    this.signatures.set(sig, this.count * p);
    for (let band = 0; band < this.lsh.bands; band++) {
      const key = this.bandKey(sig, band);
      const bucket = this.buckets[band]!.get(key);
      if (bucket === undefined) this.buckets[band]!.set(key, this.count);
      else if (typeof bucket === 'number') this.buckets[band]!.set(key, [bucket, this.count]);
      else bucket.push(this.count);
    }
    return this.count++;
  }
}

export interface DedupOptions extends MinHashOptions {
  inputs: readonly string[];
  /** Kept documents, one JSON object per line (a .jsonl input's objects are written whole). */
  out: string;
  /** Where to write one JSON line per removed document; none when undefined. */
  report?: string;
  textField?: string;
  txtMode?: TxtMode;
  skipInvalid?: boolean;
  onProgress?: (progress: { documents: number; removed: number; bytesRead: number }) => void;
}

export interface RemovedDocument {
  /** 0-based position of the document in the input, over all files in order. */
  document: number;
  file: string;
  line: number;
  duplicateOf: number;
  duplicateOfFile: string;
  duplicateOfLine: number;
  jaccard: number;
}

export interface DedupSummary {
  documents: number;
  kept: number;
  removed: number;
  /** Documents without words: kept, never compared. */
  withoutWords: number;
  invalidLines: number;
  lsh: LshParameters;
}

/** Streams the inputs, writes kept documents to `out` and removals to `report`, both atomically. */
export async function dedupCorpus(options: DedupOptions): Promise<DedupSummary> {
  const index = new NearDuplicateIndex(options);
  const field = options.textField ?? 'text';
  const stats: CorpusStats = { documents: 0, invalidLines: 0 };
  const keptWhere: { document: number; file: string; line: number }[] = [];
  const out = new AtomicFileWriter(options.out);
  const report = options.report === undefined ? undefined : new AtomicFileWriter(options.report);
  const encoder = new TextEncoder();
  const summary: DedupSummary = { documents: 0, kept: 0, removed: 0, withoutWords: 0, invalidLines: 0, lsh: index.lsh };
  let bytesRead = 0;
  try {
    const records = readCorpus(options.inputs, {
      textField: options.textField,
      txtMode: options.txtMode,
      skipInvalid: options.skipInvalid,
      stats,
      onBytes: (n) => (bytesRead += n),
    });
    for await (const record of records) {
      const document = summary.documents++;
      const sig = index.hasher.signature(record.text);
      const match = sig === undefined ? undefined : index.match(sig);
      if (match !== undefined) {
        summary.removed++;
        const kept = keptWhere[match.keptIndex]!;
        const removed: RemovedDocument = {
          document,
          file: record.file,
          line: record.line,
          duplicateOf: kept.document,
          duplicateOfFile: kept.file,
          duplicateOfLine: kept.line,
          jaccard: match.jaccard,
        };
        report?.write(encoder.encode(`${JSON.stringify(removed)}\n`));
      } else {
        summary.kept++;
        if (sig === undefined) summary.withoutWords++;
        else keptWhere[index.insert(sig)] = { document, file: record.file, line: record.line };
        out.write(encoder.encode(`${JSON.stringify(record.json ?? { [field]: record.text })}\n`));
      }
      if (document % 256 === 0)
        options.onProgress?.({ documents: summary.documents, removed: summary.removed, bytesRead });
    }
    out.commit();
    report?.commit();
  } catch (e) {
    out.abort();
    report?.abort();
    throw e;
  }
  summary.invalidLines = stats.invalidLines;
  options.onProgress?.({ documents: summary.documents, removed: summary.removed, bytesRead });
  return summary;
}
