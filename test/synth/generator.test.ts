/** The text generator in memory: determinism, the Zipf laws, sizes, the mix, canary plans, the grammar. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planCanaries } from '../../src/synth/canaries.js';
import { DEFAULT_OPTIONS, generateCorpus, type SynthOptions } from '../../src/synth/corpus.js';
import { zipfMentionCounts } from '../../src/synth/facts.js';
import * as lexicon from '../../src/synth/lexicon.js';
import { type Mix, parseMix } from '../../src/synth/mix.js';
import { ConfigError } from '../../src/util/errors.js';

const only = (source: keyof Mix): Mix => ({
  facts: 0,
  arithmetic: 0,
  occupations: 0,
  canaries: 0,
  narrative: 0,
  [source]: 1,
});
const small = (over: Partial<SynthOptions>): SynthOptions => ({
  ...DEFAULT_OPTIONS,
  tokens: 20_000,
  lambadaItems: 20,
  ...over,
});

/** Least-squares slope of ln(count) on ln(rank), counts sorted decreasing: written here, apart from the library's. */
function zipfSlope(counts: number[]): number {
  const ys = [...counts].sort((a, b) => b - a).map(Math.log);
  const xs = ys.map((_, i) => Math.log(i + 1));
  const mx = xs.reduce((a, b) => a + b) / xs.length;
  const my = ys.reduce((a, b) => a + b) / ys.length;
  let num = 0;
  let den = 0;
  xs.forEach((x, i) => {
    num += (x - mx) * (ys[i]! - my);
    den += (x - mx) ** 2;
  });
  return -num / den;
}

/** Occurrences of each whole word of `words` in `texts`. */
function countWords(texts: string[], words: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const w of words) counts.set(w, 0);
  for (const text of texts) {
    for (const m of text.matchAll(/[A-Za-z]+/g)) if (counts.has(m[0])) counts.set(m[0], counts.get(m[0])! + 1);
  }
  return counts;
}

describe('synthetic corpus generator', () => {
  it('gives the same corpus and tasks for the same seed, and a different one for another seed', () => {
    const a = generateCorpus(small({ seed: 11 }));
    const b = generateCorpus(small({ seed: 11 }));
    const c = generateCorpus(small({ seed: 12 }));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.documents, c.documents);
  });

  for (const exponent of [0.7, 1, 1.3]) {
    it(`gives entity mention counts a Zipf law of exponent ${exponent}`, () => {
      const corpus = generateCorpus(small({ tokens: 150_000, mix: only('facts'), entityZipf: exponent }));
      const names = corpus.facts.entities.map((e) => e.name);
      const counts = countWords(
        corpus.documents.map((d) => d.text),
        names,
      );
      const fitted = zipfSlope([...counts.values()]);
      assert.ok(Math.abs(fitted - exponent) < 0.05, `fitted ${fitted} for ${exponent}`);
      if (exponent === 1) {
        const sorted = [...counts.values()].sort((x, y) => y - x);
        assert.ok(
          sorted[0]! / sorted[sorted.length - 1]! >= 1000,
          `counts span ${sorted[0]}..${sorted[sorted.length - 1]}`,
        );
      }
    });
  }

  it('gives the rarest entity at least one mention and about the requested number of statements', () => {
    const counts = zipfMentionCounts(10_000, 5000, 1);
    assert.ok(counts.length < 5000 && counts.length > 500, `${counts.length} entities`);
    assert.ok(counts[counts.length - 1]! >= 1);
    const total = counts.reduce((a, b) => a + b);
    assert.ok(Math.abs(total - 10_000) / 10_000 < 0.05, `total ${total}`);
    for (let i = 1; i < counts.length; i++) assert.ok(counts[i]! <= counts[i - 1]!);
    assert.deepEqual(zipfMentionCounts(0, 100, 1), []);
  });

  it('draws arithmetic operands from a Zipf law over a shuffled order of 0..99', () => {
    const corpus = generateCorpus(small({ tokens: 100_000, mix: only('arithmetic'), operandZipf: 1 }));
    const counts = new Array<number>(100).fill(0);
    for (const { text } of corpus.documents) {
      for (const m of text.matchAll(/(\d+) (?:plus|times) (\d+)/g)) {
        counts[Number(m[1])]!++;
        counts[Number(m[2])]!++;
      }
    }
    const fitted = zipfSlope(counts);
    assert.ok(Math.abs(fitted - 1) < 0.05, `fitted ${fitted}`);
    const top = corpus.arithmetic.operandByRank[0]!;
    assert.equal(Math.max(...counts), counts[top]);
    assert.deepEqual(
      [...corpus.arithmetic.operandByRank].sort((a, b) => a - b),
      Array.from({ length: 100 }, (_, i) => i),
    );
    assert.notDeepEqual(
      corpus.arithmetic.operandByRank,
      Array.from({ length: 100 }, (_, i) => i),
    );
  });

  it('spreads pronoun ratios from 0.05 to 0.95 and realizes each within binomial noise', () => {
    const corpus = generateCorpus(small({ tokens: 150_000, mix: only('occupations') }));
    const ratios = corpus.occupations.map((o) => o.maleRatio).sort((a, b) => a - b);
    assert.equal(ratios[0], 0.05);
    assert.equal(ratios[ratios.length - 1], 0.95);
    for (const o of corpus.occupations) {
      const n = o.male + o.female;
      const bound = 4 * Math.sqrt((o.maleRatio * (1 - o.maleRatio)) / n);
      assert.ok(Math.abs(o.male / n - o.maleRatio) <= bound, `${o.occupation}: ${o.male}/${n} vs ${o.maleRatio}`);
    }
  });

  it('sizes the corpus in pre-tokens and splits it by the mix', () => {
    const corpus = generateCorpus(small({ tokens: 60_000 }));
    const words: Record<string, number> = {};
    for (const d of corpus.documents) words[d.source] = (words[d.source] ?? 0) + d.text.split(/\s+/).length;
    const total = Object.values(words).reduce((a, b) => a + b);
    // Words are fewer than pre-tokens (punctuation), so shares are compared, loosely.
    assert.ok(Math.abs(words.narrative! / total - DEFAULT_OPTIONS.mix.narrative) < 0.1, JSON.stringify(words));
    assert.ok(Math.abs(words.arithmetic! / total - DEFAULT_OPTIONS.mix.arithmetic) < 0.06, JSON.stringify(words));
  });

  it('writes exactly --documents documents, narrative filling the remainder', () => {
    for (const documents of [300, 1234]) assert.equal(generateCorpus(small({ documents })).documents.length, documents);
    assert.throws(
      () => generateCorpus(small({ documents: 2, mix: parseMix('facts=1,arithmetic=1,occupations=1,narrative=1') })),
      /too few for this mix/,
    );
    assert.throws(() => generateCorpus(small({ documents: 50, mix: parseMix('facts=1') })), /narrative/);
  });

  it('plans canary duplication levels 1, 2, 4, ... within the budget', () => {
    assert.deepEqual(planCanaries(100, 4).copies, [1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 8, 8, 8, 8]);
    assert.deepEqual(planCanaries(3, 4).copies, [1, 1, 1]);
    assert.deepEqual(planCanaries(0, 4).copies, []);
    assert.deepEqual(planCanaries(7, 1).copies, [1, 2, 4]);
  });

  it('ends every story with the object its opening introduced, and cuts LAMBADA items before it', () => {
    const corpus = generateCorpus(small({ mix: only('narrative'), lambadaItems: 50 }));
    for (const { text } of corpus.documents) {
      const last = /the ([a-z]+)\.$/.exec(text);
      assert.ok(last, text);
      const first = text.slice(0, text.indexOf('.'));
      assert.match(first, new RegExp(`\\b${last[1]}\\b`), text);
    }
    for (const item of corpus.tasks.lambada) {
      assert.ok(item.context.endsWith(' the'), item.context);
      assert.ok((lexicon.OBJECTS as readonly string[]).includes(item.target));
      assert.match(item.context.slice(0, item.context.indexOf('.')), new RegExp(`\\b${item.target}\\b`));
    }
  });

  it('keeps occupations and gendered pronouns out of every other word list', () => {
    const others = new Set<string>([
      ...lexicon.CANARY_WORDS,
      ...lexicon.COLOURS,
      ...lexicon.INSTRUMENTS,
      ...lexicon.GOODS,
    ]);
    for (const w of [...lexicon.OCCUPATIONS, ...lexicon.GENDERED_PRONOUNS]) assert.ok(!others.has(w), w);
  });
});

describe('--mix', () => {
  it('parses weights, gives unnamed sources 0 and scales to 1', () => {
    assert.deepEqual(parseMix('facts=1, narrative=3'), {
      facts: 0.25,
      arithmetic: 0,
      occupations: 0,
      canaries: 0,
      narrative: 0.75,
    });
  });

  it('rejects malformed specs with a one-line message', () => {
    for (const [spec, message] of [
      ['facts', /source=weight/],
      ['facts=1,bogus=1', /unknown source "bogus"/],
      ['facts=-1', /must be a number >= 0/],
      ['facts=x', /must be a number >= 0/],
      ['facts=0', /at least one source/],
      ['facts=1,facts=2', /given twice/],
    ] as const) {
      assert.throws(
        () => parseMix(spec),
        (e: unknown) => e instanceof ConfigError && message.test(e.message) && !e.message.includes('\n'),
      );
    }
  });
});
