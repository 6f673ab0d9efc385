/**
 * The Pythia paper's gender-bias intervention: masculine pronouns swapped for feminine ones in
 * the training data (he→she, him→her, his→her, himself→herself), whole words only, in lower
 * case, Capitalised and UPPER CASE forms.
 *
 * On text the swap is exact. On token ids (what a training batch holds) it is a map from each
 * masculine token to its feminine one, built from the tokenizer for both the word-initial form
 * (" he", byte-level "Ġhe") and the bare form ("he", as after a newline or quote). A form is
 * swapped only where both words are single tokens; forms that are not (for example " himself"
 * split into " him" + "self") are left alone and listed in `skipped`. A token counts as a whole
 * word when the token after it does not continue a word (does not start with a letter, digit or
 * `_`), and, for the bare form, the token before it does not end with one. Positions at the edge
 * of a sample see no neighbour there and are treated as word boundaries.
 */
import type { TextTokenizer } from '../data/tokenizer.js';
import { ConfigError } from '../util/errors.js';

export const PRONOUN_SWAPS: readonly (readonly [string, string])[] = [
  ['he', 'she'],
  ['him', 'her'],
  ['his', 'her'],
  ['himself', 'herself'],
];

type Casing = (w: string) => string;
const CASINGS: readonly Casing[] = [(w) => w, (w) => w[0]!.toUpperCase() + w.slice(1), (w) => w.toUpperCase()];

/** Every cased masculine form and its feminine replacement: he→she, He→She, HE→SHE, ... */
export function pronounSwapTable(): Map<string, string> {
  const table = new Map<string, string>();
  for (const [masculine, feminine] of PRONOUN_SWAPS)
    for (const cased of CASINGS) table.set(cased(masculine), cased(feminine));
  return table;
}

const TABLE = pronounSwapTable();
const WORD_CHAR = /[\p{L}\p{N}_]/u;
const PATTERN = new RegExp(`(?<![\\p{L}\\p{N}_])(${[...TABLE.keys()].join('|')})(?![\\p{L}\\p{N}_])`, 'gu');

/** The text with every whole-word masculine pronoun replaced. */
export function swapPronouns(text: string): string {
  return text.replace(PATTERN, (word) => TABLE.get(word)!);
}

export interface TokenPronounSwap {
  /** Masculine token id → feminine token id. */
  readonly map: ReadonlyMap<number, number>;
  /** Forms (" he", "Himself", ...) that could not be swapped because a word is not one token. */
  readonly skipped: readonly string[];
  /** Swaps in place; returns how many tokens changed. */
  apply(tokens: Int32Array, sampleLength?: number): number;
}

/** The token-level swap for a tokenizer (byte-level BPE such as GPT-NeoX-20B's or ours). */
export async function tokenPronounSwap(tokenizer: TextTokenizer): Promise<TokenPronounSwap> {
  const map = new Map<number, number>();
  const bare = new Set<number>();
  const skipped: string[] = [];
  for (const [masculine, feminine] of TABLE) {
    for (const prefix of [' ', '']) {
      const [m, f] = await Promise.all([tokenizer.encode(prefix + masculine), tokenizer.encode(prefix + feminine)]);
      if (m.length === 1 && f.length === 1) {
        map.set(m[0]!, f[0]!);
        if (prefix === '') bare.add(m[0]!);
      } else skipped.push(prefix + masculine);
    }
  }
  const startsWord = new Map<number, boolean>();
  const endsWord = new Map<number, boolean>();
  const text = (id: number): string => {
    try {
      return tokenizer.decode([id]);
    } catch {
      return '';
    }
  };
  const starts = (id: number): boolean => {
    let v = startsWord.get(id);
    if (v === undefined) {
      v = WORD_CHAR.test(text(id).charAt(0));
      startsWord.set(id, v);
    }
    return v;
  };
  const ends = (id: number): boolean => {
    let v = endsWord.get(id);
    if (v === undefined) {
      v = WORD_CHAR.test(text(id).slice(-1));
      endsWord.set(id, v);
    }
    return v;
  };
  const apply = (tokens: Int32Array, sampleLength = tokens.length): number => {
    let changed = 0;
    for (let i = 0; i < tokens.length; i++) {
      const id = tokens[i]!;
      const to = map.get(id);
      if (to === undefined) continue;
      const first = i % sampleLength === 0;
      const last = i % sampleLength === sampleLength - 1 || i === tokens.length - 1;
      if (!last && starts(tokens[i + 1]!)) continue;
      if (bare.has(id) && !first && ends(tokens[i - 1]!)) continue;
      tokens[i] = to;
      changed++;
    }
    return changed;
  };
  return { map, skipped, apply };
}

/**
 * Pythia's own intervention (GPT-NeoX branch `intervention`, `megatron/training.py`
 * `replace_tokens`): a fixed map of GPT-NeoX-20B token ids, applied to every position of every
 * batch (training and validation), whatever the neighbouring tokens. Besides the word-initial
 * forms (" he", " He", ...) it maps the bare pieces "he", "his" and "him" wherever they occur,
 * also as pieces of longer words, and it has no "himself" entry. Each entry is listed with the text of both ids in the 20B tokenizer, which is
 * checked before use.
 */
export const PYTHIA_PRONOUN_MAP: readonly (readonly [number, string, number, string])[] = [
  [754, ' He', 1500, ' She'],
  [3032, ' His', 4058, ' Her'],
  [8389, 'His', 10759, 'Her'],
  [1328, 'He', 2993, 'She'],
  [521, ' his', 617, ' her'],
  [344, ' he', 703, ' she'],
  [779, ' him', 617, ' her'],
  [8701, 'his', 379, 'her'],
  [13243, 'him', 379, 'her'],
  [248, 'he', 6689, 'she'],
];

/** Pythia's fixed token-id swap; refuses a tokenizer whose ids do not spell the map's words. */
export function pythiaTokenPronounSwap(
  tokenizer: Pick<TextTokenizer, 'decode'>,
  tokenizerName = 'the tokenizer',
): TokenPronounSwap {
  const text = (id: number): string => {
    try {
      return tokenizer.decode([id]);
    } catch {
      return '';
    }
  };
  for (const [from, fromText, to, toText] of PYTHIA_PRONOUN_MAP) {
    for (const [id, want] of [
      [from, fromText],
      [to, toText],
    ] as const) {
      const got = text(id);
      if (got !== want)
        throw new ConfigError(
          `${tokenizerName}: token ${id} is ${JSON.stringify(got)}, not ${JSON.stringify(want)}: pronoun-swap-pythia is a map of GPT-NeoX-20B token ids and needs that tokenizer`,
        );
    }
  }
  const map = new Map(PYTHIA_PRONOUN_MAP.map(([from, , to]) => [from, to]));
  return { map, skipped: [], apply: (tokens) => applyTokenMap(map, tokens) };
}

/** Replaces every token found in `map`; returns how many changed. */
export function applyTokenMap(map: ReadonlyMap<number, number>, tokens: Int32Array): number {
  let changed = 0;
  for (let i = 0; i < tokens.length; i++) {
    const to = map.get(tokens[i]!);
    if (to === undefined) continue;
    tokens[i] = to;
    changed++;
  }
  return changed;
}
