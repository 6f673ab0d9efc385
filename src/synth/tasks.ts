/** Writes the evaluation sets as JSON Lines, one file per task under `<out>/tasks/`. */
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import type { Tasks } from './corpus.js';

export const TASK_FILES: Readonly<Record<keyof Tasks, string>> = {
  qa: 'tasks/qa.jsonl',
  arithmetic: 'tasks/arithmetic.jsonl',
  winobias: 'tasks/winobias.jsonl',
  crows_pairs: 'tasks/crows_pairs.jsonl',
  lambada: 'tasks/lambada.jsonl',
};

export function toJsonLines(items: readonly object[]): string {
  return items.map((item) => JSON.stringify(item) + '\n').join('');
}

export async function writeTasks(out: string, tasks: Tasks): Promise<string[]> {
  const written: string[] = [];
  for (const name of Object.keys(TASK_FILES) as (keyof Tasks)[]) {
    await writeFileAtomic(join(out, TASK_FILES[name]), toJsonLines(tasks[name]));
    written.push(TASK_FILES[name]);
  }
  return written;
}
