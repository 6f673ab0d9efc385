/**
 * Few-shot prompts as lm-evaluation-harness 0.4.12 draws and writes them for a task (its default
 * ContextSampler and ConfigurableTask.fewshot_context): one `random.Random(seed)` per task and
 * number of shots, drawing for each evaluated document in document order `sample(pool, k)` (or,
 * where the few-shot split is the test split, `sample(pool, k + 1)` with documents equal to the
 * evaluated one dropped and the first k kept). So document i's demonstrations depend only on the
 * documents before it: `--limit`, sharding and batching leave them unchanged.
 *
 * A demonstration is its question, the target delimiter, its answer and the few-shot delimiter;
 * one whose answer is empty is its question alone (lm-eval writes no answer turn for it). For a
 * multiple-choice document the question is `doc_to_text` and the answer the gold choice; for a
 * partial one the gold context and the continuation; for a last-word one the context and the target
 * (so lm-eval's LAMBADA demonstrations have two spaces before the last word).
 */
import { ConfigError } from '../../util/errors.js';
import { PythonRandom } from '../python-random.js';
import type { HarnessFewshot, TaskItem } from '../tasks.js';

/** The question and answer a document contributes as a demonstration. */
function turn(item: TaskItem): { question: string; answer: string } {
  switch (item.kind) {
    case 'multiple_choice':
      return { question: item.context, answer: item.choices[item.gold]! };
    case 'partial':
      return { question: item.contexts[item.gold]!, answer: item.continuation };
    case 'loglikelihood':
      return { question: item.context, answer: item.target };
    case 'generate_until':
      return { question: item.context, answer: item.answer };
    case 'loglikelihood_rolling':
      throw new ConfigError(`item ${item.id}: loglikelihood_rolling items take no demonstrations`);
  }
}

export function harnessDemonstration(item: TaskItem, fewshot: HarnessFewshot): string {
  const { question, answer } = turn(item);
  return answer === '' ? question : question + fewshot.targetDelimiter + answer + fewshot.fewshotDelimiter;
}

/** Python's `==` on documents as datasets gives them (dicts, lists, strings, numbers, None). */
export function sameDocument(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => sameDocument(x, b[i]));
  }
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && sameDocument((a as never)[k], (b as never)[k]));
}

/**
 * The few-shot prefix of each of the first `count` items of `items` (the evaluated split's
 * documents, in order) at `shots` demonstrations, drawn with `random.Random(seed)`.
 */
export function harnessPrefixes(
  taskName: string,
  fewshot: HarnessFewshot,
  items: readonly TaskItem[],
  count: number,
  shots: number,
  seed: number,
): string[] {
  if (count > items.length) throw new RangeError(`harnessPrefixes: ${count} prefixes asked of ${items.length} items`);
  const described = (i: number, demonstrations: string) =>
    fewshot.description ? fewshot.description(items[i]!.meta) + demonstrations : demonstrations;
  if (shots === 0) return Array.from({ length: count }, (_, i) => described(i, ''));
  const pool = fewshot.pool;
  const drawn = fewshot.excludeEvalDoc ? shots + 1 : shots;
  if (drawn > pool.length)
    throw new ConfigError(
      `task ${taskName}: ${shots}-shot prompts draw ${drawn} of the few-shot split's documents, which has ${pool.length}`,
    );
  const random = new PythonRandom(seed);
  const prefixes: string[] = [];
  for (let i = 0; i < count; i++) {
    const item = items[i]!;
    let picks = random.sample(pool.length, drawn);
    if (fewshot.excludeEvalDoc) {
      picks = picks.filter((j) => !sameDocument(pool[j]!.meta, item.meta)).slice(0, shots);
      if (picks.length < shots)
        throw new ConfigError(
          `task ${taskName}: the ${drawn} demonstrations drawn for document ${item.id} include it more than once (the few-shot split repeats it), leaving fewer than ${shots}`,
        );
    }
    prefixes.push(described(i, picks.map((j) => harnessDemonstration(pool[j]!, fewshot)).join('')));
  }
  return prefixes;
}
