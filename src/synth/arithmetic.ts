/**
 * The arithmetic source: true statements `17 plus 25 is 42.`, `6 times 7 is 42.` and the question
 * form `Q: What is 17 plus 25? A: 42`, one per line. Operands are 0..99 drawn from a Zipf law over a
 * seeded shuffle of the values, so an operand's frequency does not follow its size.
 */

import type { Prng } from '../util/prng.js';
import { countPretokens } from './pretokens.js';
import { WeightedSampler, zipfWeights } from './sampling.js';

export const OPERATORS = ['plus', 'times'] as const;
export type Operator = (typeof OPERATORS)[number];
export const OPERAND_VALUES = 100;

export function applyOperator(op: Operator, x1: number, x2: number): number {
  return op === 'plus' ? x1 + x2 : x1 * x2;
}

export function arithmeticTemplateTexts(): string[] {
  return ['plus is .', 'times is .', 'Q: What is plus ? A:', 'Q: What is times ? A:'];
}

export interface ArithmeticOptions {
  /** Stop once the documents hold at least this many pre-tokens. */
  pretokens: number;
  /** Zipf exponent of operand frequencies. */
  exponent: number;
  /** Share of lines in the question form. */
  questionShare: number;
}

export interface ArithmeticSource {
  documents: string[];
  /** operandByRank[r - 1] is the operand value of Zipf rank r. */
  operandByRank: number[];
  /** Per value 0..99: times it is the first operand, the second operand. */
  x1Counts: number[];
  x2Counts: number[];
  /** Per value 0..99: whole-word occurrences in this source (operands and answers). */
  numberCounts: number[];
  /** Per problem "x1 op x2": lines stating it, in either form. */
  problemCounts: Map<string, number>;
}

export function problemKey(x1: number, op: Operator, x2: number): string {
  return `${x1} ${op} ${x2}`;
}

export function generateArithmetic(rng: Prng, options: ArithmeticOptions): ArithmeticSource {
  const operandByRank = rng.shuffle(Array.from({ length: OPERAND_VALUES }, (_, v) => v));
  const sampler = new WeightedSampler(zipfWeights(OPERAND_VALUES, options.exponent));
  const source: ArithmeticSource = {
    documents: [],
    operandByRank,
    x1Counts: new Array<number>(OPERAND_VALUES).fill(0),
    x2Counts: new Array<number>(OPERAND_VALUES).fill(0),
    numberCounts: new Array<number>(OPERAND_VALUES).fill(0),
    problemCounts: new Map(),
  };
  let pretokens = 0;
  while (pretokens < options.pretokens) {
    const lines: string[] = [];
    const n = rng.between(2, 8);
    for (let i = 0; i < n; i++) {
      const x1 = operandByRank[sampler.sample(rng)]!;
      const x2 = operandByRank[sampler.sample(rng)]!;
      const op = rng.pick(OPERATORS);
      const answer = applyOperator(op, x1, x2);
      lines.push(
        rng.chance(options.questionShare)
          ? `Q: What is ${x1} ${op} ${x2}? A: ${answer}`
          : `${x1} ${op} ${x2} is ${answer}.`,
      );
      source.x1Counts[x1]!++;
      source.x2Counts[x2]!++;
      source.numberCounts[x1]!++;
      source.numberCounts[x2]!++;
      if (answer < OPERAND_VALUES) source.numberCounts[answer]!++;
      const key = problemKey(x1, op, x2);
      source.problemCounts.set(key, (source.problemCounts.get(key) ?? 0) + 1);
    }
    const text = lines.join('\n');
    source.documents.push(text);
    pretokens += countPretokens(text);
  }
  return source;
}

export interface ArithmeticItem {
  x1: number;
  x2: number;
  op: Operator;
  answer: number;
  question: string;
}

/**
 * As in Pythia's term-frequency study: for each operator and each first operand x1 in 0..99,
 * `perOperand` distinct second operands x2 from 1..50.
 */
export function arithmeticTasks(rng: Prng, perOperand: number): ArithmeticItem[] {
  const items: ArithmeticItem[] = [];
  const seconds = Array.from({ length: 50 }, (_, i) => i + 1);
  for (const op of OPERATORS) {
    for (let x1 = 0; x1 < OPERAND_VALUES; x1++) {
      const chosen = rng
        .shuffle([...seconds])
        .slice(0, perOperand)
        .sort((a, b) => a - b);
      for (const x2 of chosen)
        items.push({ x1, x2, op, answer: applyOperator(op, x1, x2), question: `What is ${x1} ${op} ${x2}?` });
    }
  }
  return items;
}
