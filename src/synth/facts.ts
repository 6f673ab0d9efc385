/**
 * The facts source: a world of made-up entities (people, cities, organisations), each with four
 * attributes, stated in several paraphrases. Entity r (rank r = 1, 2, ...) is mentioned
 * max(1, round(C·r^-s)) times, one mention per statement, so mention counts follow a Zipf law of
 * exponent s exactly, up to rounding.
 */

import type { Prng } from '../util/prng.js';
import { COLOURS, GOODS, INSTRUMENTS } from './lexicon.js';
import type { NameMaker } from './names.js';
import { countPretokens } from './pretokens.js';

export const ENTITY_KINDS = ['person', 'city', 'organisation'] as const;
export type EntityKind = (typeof ENTITY_KINDS)[number];

type ValuePool = 'year' | 'colour' | 'instrument' | 'goods' | 'town' | 'river' | 'region' | 'founder';

interface AttributeSpec {
  readonly name: string;
  readonly pool: ValuePool;
  /** Statement paraphrases with slots {E} (the entity, exactly once) and {V} (the value, exactly once). */
  readonly statements: readonly string[];
  /** The question asked about it, with slot {E}; the corpus also states it as `Q: <question> A: <value>`. */
  readonly question: string;
}

export const ATTRIBUTES: Readonly<Record<EntityKind, readonly AttributeSpec[]>> = {
  person: [
    {
      name: 'birth_year',
      pool: 'year',
      question: 'In what year was {E} born?',
      statements: ['{E} was born in {V}.', 'The birth year of {E} is {V}.', 'In {V}, {E} was born.'],
    },
    {
      name: 'instrument',
      pool: 'instrument',
      question: 'What instrument does {E} play?',
      statements: ['{E} plays the {V}.', 'The instrument of {E} is the {V}.', 'Every evening, {E} practises the {V}.'],
    },
    {
      name: 'home_town',
      pool: 'town',
      question: 'Where does {E} live?',
      statements: ['{E} lives in {V}.', 'The home town of {E} is {V}.', '{E} has a house in {V}.'],
    },
    {
      name: 'colour',
      pool: 'colour',
      question: 'What is the favourite colour of {E}?',
      statements: ['The favourite colour of {E} is {V}.', '{E} likes the colour {V} best.', '{E} always wears {V}.'],
    },
  ],
  city: [
    {
      name: 'river',
      pool: 'river',
      question: 'Which river flows through {E}?',
      statements: [
        '{E} lies on the river {V}.',
        'The river {V} flows through {E}.',
        '{E} was built beside the river {V}.',
      ],
    },
    {
      name: 'founding_year',
      pool: 'year',
      question: 'When was {E} founded?',
      statements: ['{E} was founded in {V}.', 'The city of {E} dates from {V}.', 'In {V}, settlers founded {E}.'],
    },
    {
      name: 'export',
      pool: 'goods',
      question: 'What is {E} known for?',
      statements: ['{E} is known for its {V}.', 'The main export of {E} is {V}.', 'Traders come to {E} to buy {V}.'],
    },
    {
      name: 'region',
      pool: 'region',
      question: 'In which region is {E}?',
      statements: [
        '{E} is a city in {V}.',
        '{E} lies in the region of {V}.',
        'The region of {V} includes the city of {E}.',
      ],
    },
  ],
  organisation: [
    {
      name: 'founder',
      pool: 'founder',
      question: 'Who founded {E}?',
      statements: ['{E} was founded by {V}.', 'The founder of {E} was {V}.', '{V} started {E}.'],
    },
    {
      name: 'establishment_year',
      pool: 'year',
      question: 'When was {E} established?',
      statements: ['{E} was established in {V}.', 'The company {E} opened in {V}.', '{E} has existed since {V}.'],
    },
    {
      name: 'product',
      pool: 'goods',
      question: 'What does {E} make?',
      statements: ['{E} makes {V}.', 'The main product of {E} is {V}.', '{E} sells {V} across the land.'],
    },
    {
      name: 'seat',
      pool: 'town',
      question: 'Where is {E} based?',
      statements: ['{E} has its seat in {V}.', 'The offices of {E} are in {V}.', '{E} is based in {V}.'],
    },
  ],
};

/** How many made-up names each name pool holds. */
const NAME_POOL_SIZES = { town: 150, river: 80, region: 40, founder: 200 } as const;

/** Every fixed text of this source, for keeping made-up names apart from template words. */
export function factTemplateTexts(): string[] {
  return Object.values(ATTRIBUTES).flatMap((specs) => specs.flatMap((a) => [...a.statements, qaStatement(a)]));
}

function qaStatement(spec: AttributeSpec): string {
  return `Q: ${spec.question} A: {V}`;
}

function fill(template: string, entity: string, value: string): string {
  return template.replace('{E}', entity).replace('{V}', value);
}

export interface Fact {
  attribute: string;
  value: string;
  /** Statements of this fact in the corpus. */
  count: number;
}

export interface Entity {
  name: string;
  kind: EntityKind;
  /** 1 = most frequent. */
  rank: number;
  /** Mentions of the name in the corpus (one per statement). */
  count: number;
  /** The kind's four attributes, in the order the statements cycle through them. */
  facts: Fact[];
}

export interface FactsOptions {
  /** How many statements to write in all (about; the Zipf rounding moves it a little). */
  statements: number;
  /** At most this many entities; fewer if the statements cannot mention the rarest one at least once. */
  maxEntities: number;
  /** Zipf exponent s of the mention counts. */
  exponent: number;
}

export interface FactsSource {
  entities: Entity[];
  documents: string[];
}

/** Mean pre-tokens of one statement (with its line break), over all kinds, attributes and paraphrases. */
export function meanStatementPretokens(): number {
  const texts = factTemplateTexts().map((t) => `${fill(t, 'Velmora', '1742')}\n`);
  return texts.reduce((sum, t) => sum + countPretokens(t), 0) / texts.length;
}

/**
 * Mention counts max(1, round(C·r^-s)) for r = 1..n with Σ C·r^-s = statements, n the largest
 * entity count (up to maxEntities) whose rarest entity still gets C·n^-s >= 1.
 */
export function zipfMentionCounts(statements: number, maxEntities: number, exponent: number): number[] {
  if (statements < 1 || maxEntities < 1) return [];
  let n = maxEntities;
  for (;;) {
    let harmonic = 0;
    for (let r = 1; r <= n; r++) harmonic += r ** -exponent;
    const c = statements / harmonic;
    if (c * n ** -exponent >= 1 || n === 1) {
      return Array.from({ length: n }, (_, i) => Math.max(1, Math.round(c * (i + 1) ** -exponent)));
    }
    n = Math.max(1, n - Math.max(1, Math.floor(n / 100)));
  }
}

export function generateFacts(rng: Prng, names: NameMaker, options: FactsOptions): FactsSource {
  const counts = zipfMentionCounts(options.statements, options.maxEntities, options.exponent);
  if (counts.length === 0) return { entities: [], documents: [] };
  const pools: Record<Exclude<ValuePool, 'year'>, readonly string[]> = {
    colour: COLOURS,
    instrument: INSTRUMENTS,
    goods: GOODS,
    town: names.makeMany(NAME_POOL_SIZES.town),
    river: names.makeMany(NAME_POOL_SIZES.river),
    region: names.makeMany(NAME_POOL_SIZES.region),
    founder: names.makeMany(NAME_POOL_SIZES.founder),
  };
  const value = (pool: ValuePool): string =>
    pool === 'year' ? String(rng.between(1600, 1999)) : rng.pick(pools[pool]);

  const entities: Entity[] = [];
  const documents: string[] = [];
  counts.forEach((count, i) => {
    const kind = rng.pick(ENTITY_KINDS);
    const specs = rng.shuffle([...ATTRIBUTES[kind]]);
    const entity: Entity = {
      name: names.make(),
      kind,
      rank: i + 1,
      count,
      facts: specs.map((spec) => ({ attribute: spec.name, value: value(spec.pool), count: 0 })),
    };
    const statements: string[] = [];
    for (let k = 0; k < count; k++) {
      const spec = specs[k % specs.length]!;
      const fact = entity.facts[k % specs.length]!;
      fact.count++;
      statements.push(fill(rng.pick([...spec.statements, qaStatement(spec)]), entity.name, fact.value));
    }
    for (let at = 0; at < statements.length; ) {
      const take = Math.min(statements.length - at, rng.between(1, 4));
      documents.push(statements.slice(at, at + take).join('\n'));
      at += take;
    }
    entities.push(entity);
  });
  return { entities, documents };
}

export interface QaItem {
  entity: string;
  kind: EntityKind;
  attribute: string;
  question: string;
  answer: string;
}

/** One question per stated fact, in entity rank order. */
export function qaTasks(entities: readonly Entity[]): QaItem[] {
  const items: QaItem[] = [];
  for (const entity of entities) {
    for (const fact of entity.facts) {
      if (fact.count === 0) continue;
      const spec = ATTRIBUTES[entity.kind].find((a) => a.name === fact.attribute)!;
      items.push({
        entity: entity.name,
        kind: entity.kind,
        attribute: fact.attribute,
        question: spec.question.replace('{E}', entity.name),
        answer: fact.value,
      });
    }
  }
  return items;
}
