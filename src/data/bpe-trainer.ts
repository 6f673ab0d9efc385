/**
 * A byte-level BPE trainer that writes a standard Hugging Face `tokenizer.json` shaped like
 * GPT-NeoX-20B's: BPE model, ByteLevel pre-tokenizer / post-processor / decoder (no prefix space,
 * GPT-2 split regex), `<|endoftext|>` = id 0 (the EOD) and `<|padding|>` = id 1 as special tokens.
 *
 * Vocabulary layout: ids 0..S-1 are the special tokens, the next 256 ids are the byte alphabet
 * ordered by the code point of each byte's printable stand-in (so id 2 is `!`, as in GPT-NeoX-20B),
 * then one id per learned merge, in the order learned.
 *
 * Determinism: each step merges the adjacent pair with the highest count over the corpus; ties go to
 * the pair whose (left id, right id) is smallest. A merge whose concatenated string is already in the
 * vocabulary is recorded but reuses that id. Training stops once the vocabulary has the requested size,
 * or earlier when no adjacent pair is left in the corpus (`exhausted`).
 */

import { writeFileAtomic } from '../util/atomic.js';
import { ConfigError } from '../util/errors.js';

export const EOD_TOKEN = '<|endoftext|>';
export const PAD_TOKEN = '<|padding|>';

/** GPT-2's split: contractions, letters, numbers, other symbols, each with an optional leading space; whitespace runs. */
export const BYTE_LEVEL_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2's `bytes_to_unicode`: each byte maps to a printable character (printable Latin-1 bytes map to themselves). */
export function byteToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) keep.push(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
  for (let b = 0xae; b <= 0xff; b++) keep.push(b);
  const table = new Array<string>(256);
  for (const b of keep) table[b] = String.fromCharCode(b);
  let next = 256;
  for (let b = 0; b < 256; b++) if (table[b] === undefined) table[b] = String.fromCharCode(next++);
  return table;
}

export interface BpeTrainOptions {
  /** Total vocabulary size, special tokens included. */
  vocabSize: number;
  /** Added tokens placed first, in this order. Default: `<|endoftext|>`, `<|padding|>`. */
  specialTokens?: readonly string[];
  /** Apply NFC normalization (as GPT-NeoX-20B does) before training and in the written tokenizer. */
  nfc?: boolean;
  /** Called now and then during training with the vocabulary size so far. */
  onProgress?: (vocabSize: number) => void;
}

export interface BpeModel {
  /** Token string by id (byte-level alphabet), special tokens first. */
  vocab: string[];
  /** Merges in rank order, as pairs of token strings. */
  merges: [string, string][];
  specialTokens: string[];
  nfc: boolean;
  /** True when the corpus ran out of pairs before the vocabulary reached the requested size. */
  exhausted: boolean;
}

/** Counts pre-tokenized words ("Ġhello"-style byte-level strings) over documents. */
export class WordCounter {
  readonly counts = new Map<string, number>();
  private readonly specialSplit: RegExp | undefined;

  constructor(
    specialTokens: readonly string[],
    private readonly nfc: boolean,
  ) {
    this.specialSplit = specialTokens.length
      ? new RegExp(specialTokens.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g')
      : undefined;
  }

  add(document: string): void {
    const text = this.nfc ? document.normalize('NFC') : document;
    const parts = this.specialSplit ? text.split(this.specialSplit) : [text];
    for (const part of parts) {
      for (const match of part.matchAll(BYTE_LEVEL_SPLIT)) {
        const word = match[0];
        this.counts.set(word, (this.counts.get(word) ?? 0) + 1);
      }
    }
  }
}

const PAIR_SHIFT = 2 ** 21; // ids stay below 2^21, so a pair key left·2^21+right is an exact double

/** Max-heap of (count, pair key): highest count first, then smallest key. Entries may be stale. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  private above(i: number, j: number): boolean {
    const ci = this.counts[i]!;
    const cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j]!, this.counts[i]!];
    [this.keys[i], this.keys[j]] = [this.keys[j]!, this.keys[i]!];
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.above(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { count: number; key: number } {
    const top = { count: this.counts[0]!, key: this.keys[0]! };
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.keys.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < this.keys.length && this.above(l, best)) best = l;
        if (r < this.keys.length && this.above(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

/** Learns merges from the counted pre-tokenized words. */
export function learnMerges(counter: WordCounter, options: BpeTrainOptions): BpeModel {
  const specialTokens = [...(options.specialTokens ?? [EOD_TOKEN, PAD_TOKEN])];
  const minimum = specialTokens.length + 256;
  if (!Number.isInteger(options.vocabSize) || options.vocabSize < minimum) {
    throw new ConfigError(
      `--vocab-size: expected an integer of at least ${minimum} (special tokens + 256 bytes), got ${options.vocabSize}`,
    );
  }
  if (options.vocabSize >= PAIR_SHIFT)
    throw new ConfigError(`--vocab-size: expected less than ${PAIR_SHIFT}, got ${options.vocabSize}`);

  const vocab: string[] = [...specialTokens];
  const idOf = new Map<string, number>();
  specialTokens.forEach((t, i) => {
    idOf.set(t, i);
  });
  const alphabet = byteToUnicode()
    .slice()
    .sort((x, y) => x.charCodeAt(0) - y.charCodeAt(0));
  for (const ch of alphabet) {
    idOf.set(ch, vocab.length);
    vocab.push(ch);
  }
  const byteId = new Int32Array(256);
  byteToUnicode().forEach((ch, b) => {
    byteId[b] = idOf.get(ch)!;
  });

  // Unique words as symbol-id sequences, sorted so that word indices do not depend on Map order.
  const entries = [...counter.counts.entries()].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const encoder = new TextEncoder();
  const words: Int32Array[] = [];
  const wordCounts: number[] = [];
  for (const [word, count] of entries) {
    const bytes = encoder.encode(word);
    const symbols = new Int32Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) symbols[i] = byteId[bytes[i]!]!;
    words.push(symbols);
    wordCounts.push(count);
  }

  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, number[]>();
  words.forEach((symbols, w) => {
    for (let i = 0; i + 1 < symbols.length; i++) {
      const key = symbols[i]! * PAIR_SHIFT + symbols[i + 1]!;
      pairCount.set(key, (pairCount.get(key) ?? 0) + wordCounts[w]!);
      const list = pairWords.get(key);
      if (list === undefined) pairWords.set(key, [w]);
      else if (list[list.length - 1] !== w) list.push(w);
    }
  });
  const heap = new PairHeap();
  for (const [key, count] of pairCount) heap.push(count, key);

  const merges: [string, string][] = [];
  const visited = new Int32Array(words.length).fill(-1);
  let exhausted = false;
  while (vocab.length < options.vocabSize) {
    let top: { count: number; key: number } | undefined;
    while (heap.size > 0) {
      const candidate = heap.pop();
      if (candidate.count > 0 && pairCount.get(candidate.key) === candidate.count) {
        top = candidate;
        break;
      }
    }
    if (top === undefined) {
      exhausted = true;
      break;
    }
    const left = Math.floor(top.key / PAIR_SHIFT);
    const right = top.key - left * PAIR_SHIFT;
    const merged = vocab[left]! + vocab[right]!;
    let id = idOf.get(merged);
    if (id === undefined) {
      id = vocab.length;
      idOf.set(merged, id);
      vocab.push(merged);
    }
    merges.push([vocab[left]!, vocab[right]!]);
    if (merges.length % 64 === 0) options.onProgress?.(vocab.length);

    const delta = new Map<number, number>();
    const bump = (key: number, by: number): void => {
      delta.set(key, (delta.get(key) ?? 0) + by);
    };
    const step = merges.length;
    for (const w of pairWords.get(top.key) ?? []) {
      if (visited[w] === step) continue;
      visited[w] = step;
      const symbols = words[w]!;
      const merged = mergeWord(symbols, left, right, id);
      if (merged === symbols) continue;
      const count = wordCounts[w]!;
      for (let i = 0; i + 1 < symbols.length; i++) bump(symbols[i]! * PAIR_SHIFT + symbols[i + 1]!, -count);
      for (let i = 0; i + 1 < merged.length; i++) {
        const key = merged[i]! * PAIR_SHIFT + merged[i + 1]!;
        bump(key, count);
        if (merged[i] === id || merged[i + 1] === id) {
          const list = pairWords.get(key);
          if (list === undefined) pairWords.set(key, [w]);
          else if (list[list.length - 1] !== w) list.push(w);
        }
      }
      words[w] = merged;
    }
    pairWords.delete(top.key);
    for (const [key, by] of delta) {
      if (by === 0) continue;
      const count = (pairCount.get(key) ?? 0) + by;
      if (count > 0) {
        pairCount.set(key, count);
        heap.push(count, key);
      } else {
        pairCount.delete(key);
      }
    }
  }
  return { vocab, merges, specialTokens, nfc: options.nfc ?? false, exhausted };
}

/** Replaces each non-overlapping occurrence of (left, right), scanning left to right; returns the input if none. */
function mergeWord(symbols: Int32Array, left: number, right: number, id: number): Int32Array {
  let out: number[] | undefined;
  for (let i = 0; i < symbols.length; i++) {
    if (i + 1 < symbols.length && symbols[i] === left && symbols[i + 1] === right) {
      out ??= Array.from(symbols.subarray(0, i));
      out.push(id);
      i++;
    } else if (out !== undefined) {
      out.push(symbols[i]!);
    }
  }
  return out === undefined ? symbols : Int32Array.from(out);
}

/** Trains on documents (strings), streaming: only the word counts are kept in memory. */
export async function trainBpe(
  documents: AsyncIterable<string> | Iterable<string>,
  options: BpeTrainOptions,
): Promise<BpeModel> {
  const counter = new WordCounter(options.specialTokens ?? [EOD_TOKEN, PAD_TOKEN], options.nfc ?? false);
  for await (const doc of documents) counter.add(doc);
  return learnMerges(counter, options);
}

/** The `tokenizer.json` object (Hugging Face `tokenizers` serialization, version 1.0). */
export function tokenizerJson(model: BpeModel): object {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  // No prototype: a learned token may well be "__proto__" (from code), and must stay an ordinary key.
  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  model.vocab.forEach((token, id) => {
    vocab[token] = id;
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: model.specialTokens.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: model.nfc ? { type: 'NFC' } : null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      vocab,
      // "left right" strings: byte-level tokens never contain a space, and every tokenizers version reads this form.
      merges: model.merges.map(([a, b]) => `${a} ${b}`),
    },
  };
}

export async function writeTokenizerJson(path: string, model: BpeModel): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(tokenizerJson(model), null, 2)}\n`);
}
