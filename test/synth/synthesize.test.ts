/**
 * `synthesize` end to end on a small corpus: byte-identical reruns, and every number in truth.json
 * re-counted from corpus.jsonl with regular expressions, independently of the generator's bookkeeping.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { IndexedDataset } from '../../src/data/indexed-dataset.js';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import type { ArithmeticItem } from '../../src/synth/arithmetic.js';
import { DEFAULT_OPTIONS, type PlacedCanary, type SynthOptions } from '../../src/synth/corpus.js';
import type { Entity, QaItem } from '../../src/synth/facts.js';
import { OCCUPATIONS } from '../../src/synth/lexicon.js';
import type { SourceName } from '../../src/synth/mix.js';
import type { LambadaItem } from '../../src/synth/narrative.js';
import type { CrowsPairsItem, Gender, Occupation, WinoBiasItem } from '../../src/synth/occupations.js';
import { synthesize } from '../../src/synth/synthesize.js';
import { repoRoot } from '../support/paths.js';

const OPTIONS: SynthOptions = {
  ...DEFAULT_OPTIONS,
  seed: 7,
  tokens: 40_000,
  vocabSize: 1024,
  entities: 300,
  lambadaItems: 30,
};

interface Line {
  text: string;
  meta: { source: SourceName };
}

/** The parts of truth.json (src/synth/truth.ts) that the tests read. */
interface Truth {
  format: string;
  seed: number;
  parameters: { tokens: number };
  totals: { documents: number; tokens: number };
  mix: Record<SourceName, { weight: number; documents: number; tokens: number }>;
  entities: { list: Entity[] };
  arithmetic: {
    operandByRank: number[];
    operands: { value: number; rank: number; asX1: number; asX2: number; count: number; numberCount: number }[];
    problems: Record<string, number>;
  };
  occupations: (Occupation & { stereotype: Gender | null })[];
  canaries: (PlacedCanary & { tokens: number })[];
}

/** The task files' lines: the generator's items under the evaluation fields (src/synth/tasks.ts). */
type ArithmeticLine = Omit<ArithmeticItem, 'answer'> & {
  answer: string;
  context: string;
  output_type: string;
  term: string;
};
type WinoBiasLine = WinoBiasItem & { context: string; choices: string[]; gold: number; type: 'pro' | 'anti' };
type CrowsPairsLine = CrowsPairsItem & { context: string; choices: string[]; gold: number; target_delimiter: string };

let truth: Truth;
let docs: Line[];
let texts: string[];
const dirs: string[] = [];

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

function readJsonl<T>(path: string): T[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l));
}

const wholeWord = (word: string) => new RegExp(`(?<![A-Za-z0-9])${word}(?![A-Za-z0-9])`);

describe('pythia synth output', () => {
  before(async () => {
    for (let i = 0; i < 2; i++) dirs.push(mkdtempSync(join(tmpdir(), 'pythia-synth-')));
    for (const dir of dirs) await synthesize(dir, OPTIONS);
    truth = JSON.parse(readFileSync(join(dirs[0]!, 'truth.json'), 'utf8'));
    docs = readJsonl<Line>(join(dirs[0]!, 'corpus.jsonl'));
    texts = docs.map((d) => d.text);
  });

  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('writes the same bytes for the same seed, in every file', () => {
    const names = filesUnder(dirs[0]!);
    assert.deepEqual(names, [
      'corpus.jsonl',
      'data/corpus_text_document.bin',
      'data/corpus_text_document.idx',
      'tasks/arithmetic.jsonl',
      'tasks/crows_pairs.jsonl',
      'tasks/lambada.jsonl',
      'tasks/qa.jsonl',
      'tasks/winobias.jsonl',
      'tokenizer.json',
      'truth.json',
    ]);
    assert.deepEqual(filesUnder(dirs[1]!), names);
    for (const name of names)
      assert.ok(readFileSync(join(dirs[0]!, name)).equals(readFileSync(join(dirs[1]!, name))), name);
  });

  it('records the seed, the parameters and the documents of each source', () => {
    assert.equal(truth.format, 'pythia-synth-truth');
    assert.equal(truth.seed, 7);
    assert.equal(truth.parameters.tokens, 40_000);
    assert.equal(truth.totals.documents, docs.length);
    for (const source of ['facts', 'arithmetic', 'occupations', 'canaries', 'narrative'] as const) {
      assert.equal(truth.mix[source].documents, docs.filter((d) => d.meta.source === source).length, source);
      assert.ok(truth.mix[source].documents > 0, source);
      assert.equal(truth.mix[source].weight, DEFAULT_OPTIONS.mix[source]);
    }
  });

  it("counts each entity's mentions and each fact's statements as the text does", () => {
    const linesWith = new Map<string, string[]>(truth.entities.list.map((e) => [e.name, []]));
    const mentions = new Map<string, number>(truth.entities.list.map((e) => [e.name, 0]));
    for (const text of texts) {
      for (const line of text.split('\n')) {
        for (const m of line.matchAll(/[A-Z][a-z]+/g)) {
          if (!mentions.has(m[0])) continue;
          mentions.set(m[0], mentions.get(m[0])! + 1);
          linesWith.get(m[0])!.push(line);
        }
      }
    }
    assert.ok(truth.entities.list.length > 100);
    for (const entity of truth.entities.list) {
      assert.equal(mentions.get(entity.name), entity.count, entity.name);
      assert.equal(
        entity.facts.reduce((sum, f) => sum + f.count, 0),
        entity.count,
        entity.name,
      );
      for (const fact of entity.facts) {
        const stated = linesWith.get(entity.name)!.filter((line) => wholeWord(fact.value).test(line)).length;
        assert.equal(stated, fact.count, `${entity.name} ${fact.attribute}`);
      }
    }
  });

  it('counts operands, numbers and problems as the text does, and every statement is true', () => {
    const asX1 = new Array<number>(100).fill(0);
    const asX2 = new Array<number>(100).fill(0);
    const numbers = new Array<number>(100).fill(0);
    const problems: Record<string, number> = {};
    let statements = 0;
    for (const text of texts) {
      for (const m of text.matchAll(/(\d+) (plus|times) (\d+)(?: is |\? A: )(\d+)/g)) {
        const [x1, x2, answer] = [Number(m[1]), Number(m[3]), Number(m[4])];
        assert.equal(answer, m[2] === 'plus' ? x1 + x2 : x1 * x2, m[0]);
        asX1[x1]!++;
        asX2[x2]!++;
        problems[`${x1} ${m[2]} ${x2}`] = (problems[`${x1} ${m[2]} ${x2}`] ?? 0) + 1;
        statements++;
      }
      for (const m of text.matchAll(/\b\d+\b/g)) if (Number(m[0]) < 100) numbers[Number(m[0])]!++;
    }
    assert.ok(statements > 500);
    const operands = truth.arithmetic.operands;
    assert.deepEqual(
      operands.map((o) => o.asX1),
      asX1,
    );
    assert.deepEqual(
      operands.map((o) => o.asX2),
      asX2,
    );
    assert.deepEqual(
      operands.map((o) => o.count),
      asX1.map((x, i) => x + asX2[i]!),
    );
    assert.deepEqual(
      operands.map((o) => o.numberCount),
      numbers,
    );
    assert.deepEqual(truth.arithmetic.problems, problems);
    operands.forEach((o) => {
      assert.equal(truth.arithmetic.operandByRank[o.rank - 1], o.value);
    });
  });

  it('counts pronouns per occupation as the text does, and no other sentence has a gendered pronoun', () => {
    const occupationPattern = new RegExp(`\\b[Tt]he (${OCCUPATIONS.join('|')})\\b`, 'g');
    const male: Record<string, number> = {};
    const female: Record<string, number> = {};
    for (const text of texts) {
      for (const sentence of text.split(/(?<=[.?])\s+|\n/)) {
        const occupations = [...sentence.matchAll(occupationPattern)].map((m) => m[1]!);
        const he = sentence.match(/\b(he|his|him)\b/g)?.length ?? 0;
        const she = sentence.match(/\b(she|her)\b/g)?.length ?? 0;
        if (occupations.length === 0) {
          assert.equal(he + she, 0, sentence);
          continue;
        }
        assert.equal(occupations.length, 1, sentence);
        assert.equal(he + she, 1, sentence);
        male[occupations[0]!] = (male[occupations[0]!] ?? 0) + he;
        female[occupations[0]!] = (female[occupations[0]!] ?? 0) + she;
      }
    }
    assert.equal(truth.occupations.length, OCCUPATIONS.length);
    for (const o of truth.occupations) {
      assert.equal(o.male, male[o.occupation] ?? 0, o.occupation);
      assert.equal(o.female, female[o.occupation] ?? 0, o.occupation);
      assert.equal(o.stereotype, o.maleRatio > 0.5 ? 'male' : 'female');
    }
  });

  it('places each canary exactly its stated number of times, at the recorded documents', () => {
    assert.ok(truth.canaries.length >= 8);
    const whole = texts.join('\n');
    for (const c of truth.canaries) {
      assert.ok(Number.isInteger(Math.log2(c.count)), `count ${c.count}`);
      assert.ok(c.text.split(' ').length >= 64);
      assert.ok(c.tokens >= 64, `${c.tokens} tokens`);
      const at = texts.flatMap((t, i) => (t === c.text ? [i] : []));
      assert.deepEqual(at, c.documents);
      assert.equal(whole.split(c.text).length - 1, c.count);
      for (const i of at) assert.equal(docs[i]!.meta.source, 'canaries');
    }
    assert.ok(new Set(truth.canaries.map((c) => c.count)).size >= 2);
  });

  it('asks only about facts the corpus states', () => {
    const qa = readJsonl<QaItem>(join(dirs[0]!, 'tasks/qa.jsonl'));
    const lines = texts.flatMap((t) => t.split('\n'));
    const names = new Set(truth.entities.list.map((e) => e.name));
    assert.ok(qa.length > 100);
    const byEntity = new Map<string, string[]>();
    for (const line of lines)
      for (const m of line.matchAll(/[A-Z][a-z]+/g))
        if (names.has(m[0])) byEntity.set(m[0], [...(byEntity.get(m[0]) ?? []), line]);
    for (const item of qa) {
      assert.ok(names.has(item.entity), item.entity);
      assert.ok(wholeWord(item.entity).test(item.question), item.question);
      assert.ok(
        (byEntity.get(item.entity) ?? []).some((line) => wholeWord(item.answer).test(line)),
        `${item.entity}: ${item.answer}`,
      );
    }
  });

  it('writes arithmetic, WinoBias, CrowS-Pairs and LAMBADA items that agree with the truth', () => {
    const arithmetic = readJsonl<ArithmeticLine>(join(dirs[0]!, 'tasks/arithmetic.jsonl'));
    assert.equal(arithmetic.length, 2 * 100 * OPTIONS.arithmeticTaskOperands);
    for (const t of arithmetic) {
      assert.equal(t.answer, String(t.op === 'plus' ? t.x1 + t.x2 : t.x1 * t.x2));
      assert.equal(t.context, `Q: ${t.question} A:`);
      assert.equal(t.output_type, 'generate_until');
      assert.equal(t.term, String(t.x1));
      assert.ok(t.x2 >= 1 && t.x2 <= 50);
      assert.equal(t.question, `What is ${t.x1} ${t.op} ${t.x2}?`);
    }
    const ratio = new Map<string, number>(truth.occupations.map((o) => [o.occupation, o.maleRatio]));
    const genderOf = (p: string) => (['he', 'his', 'him'].includes(p) ? 'male' : 'female');
    const winobias = readJsonl<WinoBiasLine>(join(dirs[0]!, 'tasks/winobias.jsonl'));
    assert.ok(winobias.length >= OCCUPATIONS.length);
    for (const t of winobias) {
      assert.equal(t.stereotype, ratio.get(t.occupation)! > 0.5 ? 'male' : 'female');
      assert.equal(genderOf(t.proPronoun), t.stereotype);
      assert.notEqual(genderOf(t.antiPronoun), t.stereotype);
      assert.ok(t.pro.startsWith(`${t.prefix} ${t.proPronoun} `), t.pro);
      assert.ok(t.anti.startsWith(`${t.prefix} ${t.antiPronoun} `), t.anti);
      assert.ok(!texts.some((text) => text.includes(t.pro)), 'probe sentences are held out of the corpus');
      assert.deepEqual(
        [t.context, t.choices, t.gold],
        [t.prefix, [t.proPronoun, t.antiPronoun], t.type === 'pro' ? 0 : 1],
      );
    }
    assert.equal(winobias.filter((t) => t.type === 'pro').length, winobias.length / 2);
    const crows = readJsonl<CrowsPairsLine>(join(dirs[0]!, 'tasks/crows_pairs.jsonl'));
    for (const t of crows) {
      const more = t.more.split(' ');
      const less = t.less.split(' ');
      const differing = more.flatMap((w, i) => (w === less[i] ? [] : [[w, less[i]]]));
      assert.equal(differing.length, 1, t.more);
      assert.equal(genderOf(differing[0]![0]!), t.stereotype);
      assert.deepEqual([t.context, t.choices, t.gold, t.target_delimiter], ['', [t.more, t.less], 0, '']);
    }
    const lambada = readJsonl<LambadaItem>(join(dirs[0]!, 'tasks/lambada.jsonl'));
    assert.equal(lambada.length, OPTIONS.lambadaItems);
    for (const t of lambada) {
      assert.ok(t.target.startsWith(' '), 'the target carries its own leading space');
      assert.ok(wholeWord(t.target.trim()).test(t.context) && t.context.endsWith(' the'));
    }
  });

  it('tokenizes every document, EOD appended, into a dataset that decodes back to the corpus', async () => {
    const tokenizer = await loadTokenizer(join(dirs[0]!, 'tokenizer.json'));
    assert.equal(tokenizer.eodId, 0);
    assert.equal(tokenizer.padId, 1);
    assert.ok(tokenizer.vocabSize <= OPTIONS.vocabSize);
    const dataset = IndexedDataset.open(join(dirs[0]!, 'data/corpus_text_document'));
    try {
      assert.equal(dataset.dtype, 'uint16');
      assert.equal(dataset.sizes.length, docs.length);
      const bySource: Record<string, number> = {};
      let total = 0;
      docs.forEach((doc, i) => {
        const tokens = Array.from(dataset.document(i));
        assert.equal(tokens[tokens.length - 1], 0, `document ${i} ends with EOD`);
        assert.ok(!tokens.slice(0, -1).includes(0));
        assert.equal(tokenizer.decode(tokens.slice(0, -1)), doc.text, `document ${i}`);
        bySource[doc.meta.source] = (bySource[doc.meta.source] ?? 0) + tokens.length;
        total += tokens.length;
      });
      assert.equal(truth.totals.tokens, total);
      for (const source of Object.keys(bySource) as SourceName[])
        assert.equal(truth.mix[source].tokens, bySource[source], source);
      for (const c of truth.canaries) assert.equal(c.tokens, (await tokenizer.encode(c.text)).length);
    } finally {
      dataset.close();
    }
  });
});

describe('pythia synth command', () => {
  const main = join(repoRoot, 'dist/src/cli/main.js');

  it('writes a corpus and prints a summary', () => {
    const out = mkdtempSync(join(tmpdir(), 'pythia-synth-cli-'));
    try {
      const run = spawnSync(
        process.execPath,
        [main, 'synth', '--out', out, '--tokens', '3000', '--vocab-size', '600', '--seed', '5'],
        { encoding: 'utf8' },
      );
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, /^wrote .*: \d+ documents, \d+ tokens/);
      assert.match(run.stdout, /files: corpus\.jsonl, /);
      assert.equal(JSON.parse(readFileSync(join(out, 'truth.json'), 'utf8')).seed, 5);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('reports bad flags in one line, without a stack trace, and writes nothing', () => {
    const out = join(tmpdir(), `pythia-synth-bad-${process.pid}`);
    for (const [args, message] of [
      [['--mix', 'facts=1,bogus=2'], 'pythia: --mix: unknown source "bogus"'],
      [['--seed', '-4'], 'pythia: --seed: expected an integer from 0 to 4294967295, got -4'],
      [['--tokens', '10k'], 'pythia: --tokens: expected a number, got "10k"'],
      [['--tokens', '100', '--documents', '10'], 'pythia: --tokens and --documents: give one size, not both'],
      [['--vocab-size', '100'], 'pythia: --vocab-size: expected an integer from 258 to 65500, got 100'],
    ] as const) {
      const run = spawnSync(process.execPath, [main, 'synth', '--out', out, ...args], { encoding: 'utf8' });
      assert.equal(run.status, 1, args.join(' '));
      assert.ok(run.stderr.startsWith(message), run.stderr);
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    }
    assert.throws(() => readdirSync(out), /ENOENT/);

    writeFileSync(out, 'not a folder');
    try {
      const run = spawnSync(process.execPath, [main, 'synth', '--out', out, '--tokens', '1000'], { encoding: 'utf8' });
      assert.equal(run.status, 1);
      assert.equal(run.stderr, `pythia: --out: ${out} is not a folder (a file is in the way)\n`);
      assert.equal(readFileSync(out, 'utf8'), 'not a folder');
    } finally {
      rmSync(out, { force: true });
    }
  });
});
