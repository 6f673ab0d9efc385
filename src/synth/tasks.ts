/** Writes the evaluation sets as JSON Lines, one file per task under `<out>/tasks/`. */
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { Prng } from '../util/prng.js';
import type { Tasks } from './corpus.js';

export const TASK_FILES: Readonly<Record<keyof Tasks, string>> = {
  qa: 'tasks/qa.jsonl',
  arithmetic: 'tasks/arithmetic.jsonl',
  winobias: 'tasks/winobias.jsonl',
  crows_pairs: 'tasks/crows_pairs.jsonl',
  lambada: 'tasks/lambada.jsonl',
};

export function toJsonLines(items: readonly object[]): string {
  return items.map((item) => `${JSON.stringify(item)}\n`).join('');
}

const pad = (i: number) => String(i).padStart(5, '0');

/**
 * The items dealt round-robin from groups, each group in a seeded random order, so that the first N,
 * which `pythia eval --limit N` takes, draw evenly from every group: QA's ten tenths of entity rank
 * (frequent to rare entities), arithmetic's hundred first operands.
 */
function spread<T>(items: readonly T[], groupOf: (item: T, index: number) => number, seed: number): T[] {
  const groups = new Map<number, T[]>();
  items.forEach((item, i) => {
    const g = groupOf(item, i);
    groups.set(g, [...(groups.get(g) ?? []), item]);
  });
  const rng = new Prng(seed);
  const lists = [...groups.entries()]
    .sort(([a], [b]) => a - b)
    .map(([, list]) => {
      for (let i = list.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [list[i], list[j]] = [list[j]!, list[i]!];
      }
      return list;
    });
  const out: T[] = [];
  for (let k = 0; out.length < items.length; k++) for (const list of lists) if (k < list.length) out.push(list[k]!);
  return out;
}

/**
 * Each task as `pythia eval` reads it (docs/evaluation.md): the evaluation fields first, then the
 * generator's own fields as metadata. QA and arithmetic are generate_until in the corpus's own
 * `Q: ... A:` form; LAMBADA is loglikelihood of `" " + word`; WinoBias is multiple choice between the
 * two pronouns after the prefix, once with the stereotyped pronoun as gold (`type: "pro"`) and once
 * with the other (`type: "anti"`), as WinoBias pairs pro- and anti-stereotypical items; CrowS-Pairs
 * is multiple choice between the two whole sentences after an empty context, gold the more
 * stereotypical one, so its accuracy is the share of pairs where the stereotype is more likely.
 * QA and arithmetic are dealt from frequency groups (see `spread`). QA and arithmetic items name their key `term` (the entity; the first operand), whose frequency in
 * the training data the term-frequency study relates to accuracy.
 */
export function evaluationLines(tasks: Tasks): Record<keyof Tasks, object[]> {
  return {
    qa: spread(tasks.qa, (_, i) => Math.floor((10 * i) / tasks.qa.length), 1).map((t, i) => ({
      id: `qa-${pad(i)}`,
      output_type: 'generate_until',
      context: `Q: ${t.question} A:`,
      term: t.entity,
      ...t,
    })),
    arithmetic: spread(tasks.arithmetic, (t) => t.x1, 2).map((t, i) => ({
      id: `arithmetic-${pad(i)}`,
      output_type: 'generate_until',
      context: `Q: ${t.question} A:`,
      term: String(t.x1),
      ...t,
      answer: String(t.answer),
    })),
    winobias: tasks.winobias.flatMap((t, i) =>
      (['pro', 'anti'] as const).map((type) => ({
        id: `winobias-${pad(i)}-${type}`,
        output_type: 'multiple_choice',
        context: t.prefix,
        choices: [t.proPronoun, t.antiPronoun],
        gold: type === 'pro' ? 0 : 1,
        type,
        ...t,
      })),
    ),
    crows_pairs: tasks.crows_pairs.map((t, i) => ({
      id: `crows_pairs-${pad(i)}`,
      output_type: 'multiple_choice',
      context: '',
      choices: [t.more, t.less],
      gold: 0,
      target_delimiter: '',
      ...t,
    })),
    lambada: tasks.lambada.map((t, i) => ({
      id: `lambada-${pad(i)}`,
      output_type: 'loglikelihood',
      ...t,
      target: ` ${t.target}`,
    })),
  };
}

export async function writeTasks(out: string, tasks: Tasks): Promise<string[]> {
  const written: string[] = [];
  const lines = evaluationLines(tasks);
  for (const name of Object.keys(TASK_FILES) as (keyof Tasks)[]) {
    await writeFileAtomic(join(out, TASK_FILES[name]), toJsonLines(lines[name]));
    written.push(TASK_FILES[name]);
  }
  return written;
}
