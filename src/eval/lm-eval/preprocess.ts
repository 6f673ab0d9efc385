/**
 * The Python functions lm-evaluation-harness 0.4.12's task configs name with `!function`, as
 * TypeScript with Python's string semantics (code points, Python's whitespace): WikiText's
 * detokenizer, WinoGrande's prompt functions, LogiQA's, and WSC273's option normalisation; and
 * ARC's `choices.label.index(answerKey)` template. Where the
 * Python would raise (a missing blank, an unknown label), these throw a DataError saying what the
 * document lacks; the caller names the file and row.
 */
import { DataError } from '../../util/errors.js';
import { charAt, PYTHON_SPACE, slice, splitWhitespace, strip } from './python-str.js';

const S = `[${PYTHON_SPACE}]*`;
const BRACKETS: readonly [RegExp, string][] = [
  [new RegExp(`\\(${S}([^)]*?)${S}\\)`, 'g'), '($1)'],
  [new RegExp(`\\[${S}([^\\]]*?)${S}\\]`, 'g'), '[$1]'],
  [new RegExp(`\\{${S}([^}]*?)${S}\\}`, 'g'), '{$1}'],
  [new RegExp(`"${S}([^"]*?)${S}"`, 'g'), '"$1"'],
  [new RegExp(`'${S}([^']*?)${S}'`, 'g'), "'$1'"],
];

/** lm-eval's `wikitext_detokenizer`: WikiText's tokenized spacing undone, step by step in its order. */
export function wikitextDetokenize(page: string): string {
  let s = page;
  // contractions
  s = s.replaceAll("s '", "s'");
  s = s.replace(/\/' [0-9]\//g, "/'[0-9]/");
  // number separators
  s = s.replaceAll(' @-@ ', '-');
  s = s.replaceAll(' @,@ ', ',');
  s = s.replaceAll(' @.@ ', '.');
  // punctuation
  for (const p of [':', ';', '.', '!', '?', ',']) s = s.replaceAll(` ${p} `, `${p} `);
  // brackets and quotes hug their contents
  for (const [pattern, replacement] of BRACKETS) s = s.replace(pattern, replacement);
  // miscellaneous
  s = s.replaceAll('= = = =', '====');
  s = s.replaceAll('= = =', '===');
  s = s.replaceAll('= =', '==');
  s = s.replaceAll(' \u00b0 ', '\u00b0');
  s = s.replaceAll(' \n', '\n');
  s = s.replaceAll('\n ', '\n');
  s = s.replaceAll(' N ', ' 1 ');
  s = s.replaceAll(" 's", "'s");
  return s;
}

/** ARC's `doc_to_target`: the index of `answerKey` among the choices' labels. */
export function arcGold(doc: { choices: { label: string[] }; answerKey: string }): number {
  const at = doc.choices.label.indexOf(doc.answerKey);
  if (at < 0)
    throw new DataError(
      `answerKey: ${JSON.stringify(doc.answerKey)} is not among choices.label ${JSON.stringify(doc.choices.label)}`,
    );
  return at;
}

export interface WinograndeDoc {
  sentence: string;
  option1: string;
  option2: string;
  answer: string;
}

function blankAt(doc: WinograndeDoc): number {
  const at = doc.sentence.indexOf('_');
  if (at < 0) throw new DataError(`sentence: no "_" blank in ${JSON.stringify(doc.sentence)}`);
  return at;
}

/** WinoGrande's `doc_to_text`: the gold option's index, from `answer` "1" or "2". */
export function winograndeGold(doc: WinograndeDoc): number {
  if (doc.answer === '1') return 0;
  if (doc.answer === '2') return 1;
  throw new DataError(`answer: expected "1" or "2", got ${JSON.stringify(doc.answer)}`);
}

/** WinoGrande's `doc_to_target`: the sentence after the blank, stripped. */
export function winograndeContinuation(doc: WinograndeDoc): string {
  return strip(doc.sentence.slice(blankAt(doc) + 1));
}

/** WinoGrande's `doc_to_choice`: the sentence up to the blank, filled with each option. */
export function winograndeContexts(doc: WinograndeDoc): string[] {
  const before = doc.sentence.slice(0, blankAt(doc));
  return [before + doc.option1, before + doc.option2];
}

export interface LogiqaDoc {
  label: string;
  context: string;
  question: string;
  options: string[];
}

const LOGIQA_LETTERS = ['a', 'b', 'c', 'd'];

/** LogiQA's `doc_to_text`: passage, question, the lettered choices (at most four), "Answer:". */
export function logiqaPrompt(doc: LogiqaDoc): string {
  let prompt = `Passage: ${doc.context}\nQuestion: ${doc.question}\nChoices:\n`;
  LOGIQA_LETTERS.forEach((letter, i) => {
    if (i < doc.options.length) prompt += `${letter.toUpperCase()}. ${doc.options[i]}\n`;
  });
  return `${prompt}Answer:`;
}

/** LogiQA's `doc_to_target`: the index of the stripped label among a, b, c, d. */
export function logiqaGold(doc: LogiqaDoc): number {
  const at = LOGIQA_LETTERS.indexOf(strip(doc.label));
  if (at < 0) throw new DataError(`label: expected one of a, b, c, d, got ${JSON.stringify(doc.label)}`);
  return at;
}

export interface Wsc273Doc {
  text: string;
  pronoun: string;
  pronoun_loc: number;
  options: string[];
  label: number;
}

const UPPER_WORDS = ['A', 'An', 'The', 'She', 'He', 'It', 'They', 'My', 'His', 'Her', 'Their'];
const POSSESSIVES = ['my', 'his', 'her', 'our', 'their'];

/**
 * WSC273's `process_doc`: double spaces in the text made single (pronoun_loc is left as it was),
 * then each of the first two options normalised: "'s" appended after a possessive pronoun, and a
 * leading capitalised determiner or pronoun lowercased (every occurrence of that word, as
 * `str.replace` does) unless the pronoun starts a sentence.
 */
export function wsc273Normalise(doc: Wsc273Doc): Wsc273Doc {
  const text = doc.text.replaceAll('  ', ' ');
  if (doc.options.length < 2)
    throw new DataError(`options: expected at least two options, got ${JSON.stringify(doc.options)}`);
  const out = { ...doc, text, options: [...doc.options] };
  for (const i of [0, 1]) out.options[i] = normaliseOption(out, out.options[i]!);
  return out;
}

function normaliseOption(doc: Wsc273Doc, option: string): string {
  let normalised = option;
  if (POSSESSIVES.includes(doc.pronoun.toLowerCase())) normalised += "'s";
  const first = splitWhitespace(normalised)[0];
  if (first === undefined) throw new DataError(`options: an empty option in ${JSON.stringify(doc.options)}`);
  const before = charAt(doc.text, doc.pronoun_loc - 2);
  if (before === undefined)
    throw new DataError(`pronoun_loc: ${doc.pronoun_loc} is outside the text (${JSON.stringify(doc.text)})`);
  const startsSentence = before === '.';
  if (!startsSentence && UPPER_WORDS.includes(first)) return normalised.replaceAll(first, first.toLowerCase());
  return normalised;
}

/** WSC273's `doc_to_choice`: the text up to the pronoun, followed by each of the first two options. */
export function wsc273Contexts(doc: Wsc273Doc): string[] {
  const before = slice(doc.text, 0, doc.pronoun_loc);
  return [before + doc.options[0]!, before + doc.options[1]!];
}

/** WSC273's `doc_to_target`: the text after the pronoun. */
export function wsc273Continuation(doc: Wsc273Doc): string {
  return slice(doc.text, doc.pronoun_loc + Array.from(doc.pronoun).length);
}
