/**
 * Canaries: sequences of random narrative words, each its own document, repeated a known number of
 * times (1, 2, 4, 8, ...). One word is at least one pre-token and so at least one token, so a canary of
 * 64 words is at least 64 tokens: enough for Pythia's 32-token prompt and 32-token continuation.
 */

import type { Prng } from '../util/prng.js';
import { CANARY_WORDS } from './lexicon.js';

export interface CanaryPlan {
  /** Copies per canary, one entry per canary: perLevel canaries at each of 1, 2, 4, ..., 2^maxLevel. */
  copies: number[];
}

/**
 * The most duplication levels 1, 2, 4, ... whose copies fit in `budgetCopies` documents with
 * `perLevel` canaries per level; if not even one level fits, as many single-copy canaries as fit.
 */
export function planCanaries(budgetCopies: number, perLevel: number): CanaryPlan {
  if (perLevel < 1 || budgetCopies < 1) return { copies: [] };
  if (budgetCopies < perLevel) return { copies: new Array<number>(Math.floor(budgetCopies)).fill(1) };
  let levels = 1;
  while (perLevel * (2 ** (levels + 1) - 1) <= budgetCopies) levels++;
  const copies: number[] = [];
  for (let level = 0; level < levels; level++) for (let k = 0; k < perLevel; k++) copies.push(2 ** level);
  return { copies };
}

export interface Canary {
  id: number;
  text: string;
  count: number;
}

export function generateCanaries(rng: Prng, plan: CanaryPlan, words: number): Canary[] {
  return plan.copies.map((count, id) => ({
    id,
    text: Array.from({ length: words }, () => rng.pick(CANARY_WORDS)).join(' '),
    count,
  }));
}
