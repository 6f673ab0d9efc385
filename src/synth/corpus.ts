/**
 * Generates the whole synthetic corpus in memory: every source's documents, shuffled together, and
 * the evaluation tasks. Each source draws from its own fork of one seeded generator, forked in a
 * fixed order, so a source's text depends only on the seed and its own budget.
 */
import { ConfigError } from '../util/errors.js';
import { Prng } from '../util/prng.js';
import {
  type ArithmeticItem,
  type ArithmeticSource,
  arithmeticTasks,
  arithmeticTemplateTexts,
  generateArithmetic,
} from './arithmetic.js';
import { type Canary, generateCanaries, planCanaries } from './canaries.js';
import {
  type FactsSource,
  factTemplateTexts,
  generateFacts,
  meanStatementPretokens,
  type QaItem,
  qaTasks,
} from './facts.js';
import * as lexicon from './lexicon.js';
import { DEFAULT_MIX, type Mix, SOURCES, type SourceName } from './mix.js';
import { NameMaker } from './names.js';
import { generateNarrative, type LambadaItem, lambadaTasks, narrativeTemplateTexts } from './narrative.js';
import {
  type CrowsPairsItem,
  crowsPairsTasks,
  generateOccupations,
  type Occupation,
  occupationRatios,
  occupationTemplateTexts,
  type WinoBiasItem,
  winoBiasTasks,
} from './occupations.js';

export interface SynthOptions {
  seed: number;
  /** Corpus size in pre-tokens (words and punctuation marks); the BPE token count comes out somewhat higher. */
  tokens: number;
  /** If set, exactly this many documents: the other sources get their shares of an estimated size and narrative fills the rest. */
  documents?: number;
  mix: Mix;
  /** Vocabulary of the trained tokenizer, special tokens included (not used by the text generator). */
  vocabSize: number;
  /** Most entities in the facts source. */
  entities: number;
  entityZipf: number;
  operandZipf: number;
  /** Share of arithmetic lines in the `Q: What is ...? A: ...` form. */
  questionShare: number;
  canariesPerLevel: number;
  canaryWords: number;
  /** Second operands per (operator, first operand) in the arithmetic task. */
  arithmeticTaskOperands: number;
  lambadaItems: number;
}

export const DEFAULT_OPTIONS: SynthOptions = {
  seed: 1,
  tokens: 3_000_000,
  mix: DEFAULT_MIX,
  vocabSize: 4096,
  entities: 2000,
  entityZipf: 1,
  operandZipf: 1,
  questionShare: 0.25,
  canariesPerLevel: 4,
  canaryWords: 64,
  arithmeticTaskOperands: 10,
  lambadaItems: 500,
};

/**
 * Pre-tokens in a typical document of each source (measured on the default seed), used only to turn
 * `documents` into a size estimate.
 */
function typicalDocumentPretokens(options: SynthOptions): Record<SourceName, number> {
  return {
    facts: 2.5 * meanStatementPretokens(),
    arithmetic: 40,
    occupations: 41,
    canaries: options.canaryWords,
    narrative: 77,
  };
}

export interface CorpusDocument {
  text: string;
  source: SourceName;
}

export interface PlacedCanary extends Canary {
  /** Indices of its copies in the corpus, ascending. */
  documents: number[];
}

export interface Tasks {
  qa: QaItem[];
  arithmetic: ArithmeticItem[];
  winobias: WinoBiasItem[];
  crows_pairs: CrowsPairsItem[];
  lambada: LambadaItem[];
}

export interface SyntheticCorpus {
  options: SynthOptions;
  documents: CorpusDocument[];
  facts: FactsSource;
  arithmetic: ArithmeticSource;
  occupations: Occupation[];
  canaries: PlacedCanary[];
  tasks: Tasks;
}

function requireNumber(flag: string, value: number, ok: (v: number) => boolean, expected: string): void {
  if (!ok(value)) throw new ConfigError(`${flag}: expected ${expected}, got ${value}`);
}

export function validateOptions(o: SynthOptions): void {
  const positiveInt = (v: number) => Number.isSafeInteger(v) && v > 0;
  const nonNegativeInt = (v: number) => Number.isSafeInteger(v) && v >= 0;
  requireNumber(
    '--seed',
    o.seed,
    (v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32,
    `an integer from 0 to ${2 ** 32 - 1}`,
  );
  requireNumber('--tokens', o.tokens, positiveInt, 'a positive integer');
  if (o.documents !== undefined) requireNumber('--documents', o.documents, positiveInt, 'a positive integer');
  requireNumber(
    '--vocab-size',
    o.vocabSize,
    (v) => Number.isSafeInteger(v) && v >= 258 && v <= 65500,
    'an integer from 258 to 65500',
  );
  requireNumber('--entities', o.entities, positiveInt, 'a positive integer');
  requireNumber('--entity-zipf', o.entityZipf, (v) => v > 0 && v <= 10, 'a number in (0, 10]');
  requireNumber('--operand-zipf', o.operandZipf, (v) => v >= 0 && v <= 10, 'a number in [0, 10]');
  requireNumber('--question-share', o.questionShare, (v) => v >= 0 && v <= 1, 'a number in [0, 1]');
  requireNumber('--canaries-per-level', o.canariesPerLevel, nonNegativeInt, 'an integer >= 0');
  requireNumber('--canary-words', o.canaryWords, (v) => Number.isSafeInteger(v) && v >= 64, 'an integer >= 64');
  requireNumber(
    '--arithmetic-task-operands',
    o.arithmeticTaskOperands,
    (v) => Number.isInteger(v) && v >= 1 && v <= 50,
    'an integer from 1 to 50',
  );
  requireNumber('--lambada-items', o.lambadaItems, nonNegativeInt, 'an integer >= 0');
  if (o.documents !== undefined && !(o.mix.narrative > 0)) {
    throw new ConfigError('--documents: narrative fills the remainder, so the mix needs narrative above 0');
  }
}

/** Every fixed word of every source: made-up names must differ from all of them. */
function reservedWords(): Set<string> {
  return lexicon.wordsIn([
    ...factTemplateTexts(),
    ...arithmeticTemplateTexts(),
    ...occupationTemplateTexts(),
    ...narrativeTemplateTexts(),
    ...lexicon.OCCUPATIONS,
    ...lexicon.GENDERED_PRONOUNS,
    ...lexicon.CANARY_WORDS,
    ...lexicon.COLOURS,
    ...lexicon.INSTRUMENTS,
    ...lexicon.GOODS,
  ]);
}

export function generateCorpus(options: SynthOptions): SyntheticCorpus {
  validateOptions(options);
  const { mix } = options;
  const master = Prng.fromSeed(options.seed);
  const rng = {
    names: master.fork(),
    facts: master.fork(),
    arithmetic: master.fork(),
    occupations: master.fork(),
    canaries: master.fork(),
    narrative: master.fork(),
    order: master.fork(),
    tasks: master.fork(),
  };

  let total = options.tokens;
  if (options.documents !== undefined) {
    const typical = typicalDocumentPretokens(options);
    total = options.documents / SOURCES.reduce((sum, s) => sum + mix[s] / typical[s], 0);
  }
  const budget = (s: SourceName) => mix[s] * total;

  const facts = generateFacts(rng.facts, new NameMaker(rng.names, reservedWords()), {
    statements: Math.round(budget('facts') / meanStatementPretokens()),
    maxEntities: options.entities,
    exponent: options.entityZipf,
  });
  const arithmetic = generateArithmetic(rng.arithmetic, {
    pretokens: budget('arithmetic'),
    exponent: options.operandZipf,
    questionShare: options.questionShare,
  });
  const occupations = generateOccupations(rng.occupations, occupationRatios(rng.occupations), budget('occupations'));
  const canaryPlan = planCanaries(Math.floor(budget('canaries') / options.canaryWords), options.canariesPerLevel);
  const canaries = generateCanaries(rng.canaries, canaryPlan, options.canaryWords);

  const pool: { text: string; source: SourceName; canary?: number }[] = [];
  for (const text of facts.documents) pool.push({ text, source: 'facts' });
  for (const text of arithmetic.documents) pool.push({ text, source: 'arithmetic' });
  for (const text of occupations.documents) pool.push({ text, source: 'occupations' });
  for (const c of canaries)
    for (let k = 0; k < c.count; k++) pool.push({ text: c.text, source: 'canaries', canary: c.id });

  let narrativeDocuments: number | undefined;
  if (options.documents !== undefined) {
    narrativeDocuments = options.documents - pool.length;
    if (narrativeDocuments < 0) {
      throw new ConfigError(
        `--documents: ${options.documents} is too few for this mix (the other sources already need ${pool.length})`,
      );
    }
  }
  const narrative =
    mix.narrative > 0
      ? generateNarrative(rng.narrative, { pretokens: budget('narrative'), documents: narrativeDocuments })
      : [];
  for (const text of narrative) pool.push({ text, source: 'narrative' });

  rng.order.shuffle(pool);
  const placed: PlacedCanary[] = canaries.map((c) => ({ ...c, documents: [] }));
  pool.forEach((doc, i) => {
    if (doc.canary !== undefined) placed[doc.canary]!.documents.push(i);
  });

  const tasks: Tasks = {
    qa: qaTasks(facts.entities),
    arithmetic: arithmeticTasks(rng.tasks.fork(), options.arithmeticTaskOperands),
    winobias: winoBiasTasks(occupations.occupations),
    crows_pairs: crowsPairsTasks(occupations.occupations),
    lambada: lambadaTasks(rng.tasks.fork(), options.lambadaItems),
  };
  return {
    options,
    documents: pool.map(({ text, source }) => ({ text, source })),
    facts,
    arithmetic,
    occupations: occupations.occupations,
    canaries: placed,
    tasks,
  };
}
