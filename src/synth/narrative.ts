/**
 * Narrative filler: short stories from a small grammar, the bulk of the corpus. A story introduces a
 * character and an object, wanders through a few events (some naming a second, distracting object),
 * and ends with a sentence whose last word is the first object again. Predicting that word needs the
 * whole story, not the last sentence: the LAMBADA-style task is built from exactly this ending.
 */

import type { Prng } from '../util/prng.js';
import { article, CHARACTER_ADJECTIVES, CHARACTERS, capitalize, OBJECTS, PLACES, TIMES } from './lexicon.js';
import { countPretokens } from './pretokens.js';

/** Slots: {C} the character, {C2} another, {O} the object, {O2} another, {P}/{P2} places, {T} a time, {J} an adjective. */
const OPENINGS = [
  'One {T}, {a J} {J} {C} found {a O} {O} near the {P}.',
  'Long ago, {a J} {J} {C} lived by the {P} and kept {a O} {O}.',
  'There was once {a J} {J} {C} who carried {a O} {O} to the {P}.',
  'At {T}, {a J} {J} {C} noticed {a O} {O} lying by the {P}.',
] as const;

const EVENTS = [
  'The {C} walked to the {P2}.',
  'The sky was grey, and a cold wind came down from the {P2}.',
  'At the {P2}, the {C} met {a C2} {C2} who was looking for {a O2} {O2}.',
  'The {C} kept the {O} safe all the way.',
  'The {C} rested under a tree until {T}.',
  '{a C2 cap} {C2} asked the {C} about the {O}.',
  '{a C2 cap} {C2} laughed and went on toward the {P2}.',
  'Nobody at the {P2} had ever seen such {a O2} {O2}.',
  'The road was long, and the {C} grew tired.',
  'By {T}, the {C} had crossed the {P2}.',
  'Someone had left {a O2} {O2} on the path, but the {C} did not stop.',
  'The {C} thought about the {P} and smiled.',
] as const;

/** Every ending finishes with "the {O}." so the last word is the opening's object. */
const ENDINGS = [
  'At last, the {C} came home and put down the {O}.',
  'When the day was over, the {C} looked once more at the {O}.',
  'In the end, the {C} was glad to still have the {O}.',
  'Before sleeping, the {C} set down the {O}.',
  'Much later, the {C} told {a C2} {C2} everything about the {O}.',
] as const;

export function narrativeTemplateTexts(): string[] {
  return [...OPENINGS, ...EVENTS, ...ENDINGS];
}

interface Cast {
  C: string;
  C2: string;
  O: string;
  O2: string;
  P: string;
  P2: string;
  T: string;
  J: string;
}

function render(template: string, cast: Cast): string {
  return template.replace(
    /\{(a )?([A-Z]\d?)( cap)?\}/g,
    (_, art: string | undefined, slot: keyof Cast, cap: string | undefined) => {
      const word = cast[slot];
      const text = art ? article(word) : word;
      return cap ? capitalize(text) : text;
    },
  );
}

function otherThan<T>(rng: Prng, items: readonly T[], not: T): T {
  for (;;) {
    const x = rng.pick(items);
    if (x !== not) return x;
  }
}

export interface Story {
  text: string;
  /** The text before the last word, and that word (the opening's object). */
  context: string;
  target: string;
}

export function generateStory(rng: Prng): Story {
  const C = rng.pick(CHARACTERS);
  const O = rng.pick(OBJECTS);
  const P = rng.pick(PLACES);
  const cast: Cast = {
    C,
    C2: otherThan(rng, CHARACTERS, C),
    O,
    O2: otherThan(rng, OBJECTS, O),
    P,
    P2: otherThan(rng, PLACES, P),
    T: rng.pick(TIMES),
    J: rng.pick(CHARACTER_ADJECTIVES),
  };
  const sentences = [capitalize(render(rng.pick(OPENINGS), cast))];
  const events = rng.between(2, 7);
  for (let i = 0; i < events; i++) sentences.push(render(rng.pick(EVENTS), cast));
  const ending = render(rng.pick(ENDINGS), cast);
  sentences.push(ending);
  const text = sentences.join(' ');
  const cut = text.length - (O.length + 1); // the ending is "... the <O>."
  return { text, context: text.slice(0, cut).trimEnd(), target: O };
}

export interface NarrativeOptions {
  /** Write stories until they hold this many pre-tokens, or exactly `documents` stories if given. */
  pretokens: number;
  documents?: number;
}

export function generateNarrative(rng: Prng, options: NarrativeOptions): string[] {
  const documents: string[] = [];
  if (options.documents !== undefined) {
    for (let i = 0; i < options.documents; i++) documents.push(generateStory(rng).text);
    return documents;
  }
  let pretokens = 0;
  while (pretokens < options.pretokens) {
    const text = generateStory(rng).text;
    documents.push(text);
    pretokens += countPretokens(text);
  }
  return documents;
}

export interface LambadaItem {
  context: string;
  target: string;
}

/** Fresh stories from the same grammar (a stream of their own), cut before their last word. */
export function lambadaTasks(rng: Prng, n: number): LambadaItem[] {
  return Array.from({ length: n }, () => {
    const { context, target } = generateStory(rng);
    return { context, target };
  });
}
