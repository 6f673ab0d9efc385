/**
 * Few-shot prompts as lm-evaluation-harness writes them: k demonstrations, each the item's context,
 * the target delimiter and its answer, joined by the few-shot delimiter, then the delimiter and the
 * item's own context:
 *
 *   demo₁ + "\n\n" + demo₂ + ... + demoₖ + "\n\n" + context
 *
 * Demonstrations come from the task's other items (never the item itself) or from a separate
 * few-shot file, drawn without replacement by a generator seeded from (seed, task, k, item id), so
 * a prompt does not depend on which other items are evaluated (`--limit`, shards).
 */
import { createHash } from 'node:crypto';
import { ConfigError } from '../util/errors.js';
import { Prng } from '../util/prng.js';
import { FEWSHOT_DELIMITER, TARGET_DELIMITER, type TaskItem } from './tasks.js';

/** The text a solved item contributes as a demonstration. */
export function demonstration(item: TaskItem): string {
  switch (item.kind) {
    case 'multiple_choice':
      return item.context + item.targetDelimiter + item.choices[item.gold]!;
    case 'partial':
      return item.contexts[item.gold]! + item.targetDelimiter + item.continuation;
    case 'loglikelihood':
      return item.context + item.target;
    case 'generate_until':
      return item.context + TARGET_DELIMITER + item.answer;
    case 'loglikelihood_rolling':
      throw new ConfigError(`item ${item.id}: loglikelihood_rolling items take no demonstrations`);
  }
}

/** The contexts the model sees for `item`: its `context`, each of a partial item's `contexts`, or a rolling item's `text`. */
export function contextsOf(item: TaskItem): string[] {
  switch (item.kind) {
    case 'partial':
      return item.contexts;
    case 'loglikelihood_rolling':
      return [item.text];
    default:
      return [item.context];
  }
}

/** What precedes an item's context: the demonstrations, each followed by the few-shot delimiter. */
export function fewshotPrefix(demos: readonly TaskItem[]): string {
  return demos.map((d) => demonstration(d) + FEWSHOT_DELIMITER).join('');
}

/** The prompt of an item with one context (the first context of a partial item). */
export function fewshotPrompt(item: TaskItem, demos: readonly TaskItem[]): string {
  return fewshotPrefix(demos) + contextsOf(item)[0]!;
}

function seedFor(seed: number, task: string, shots: number, id: string): number {
  return createHash('sha256').update(`${seed}\0${task}\0${shots}\0${id}`).digest().readUInt32LE(0);
}

/**
 * Draws `shots` demonstrations for `item` from `pool` (the item itself excluded, matched by id when
 * the pool is the task's own items). A partial Fisher–Yates shuffle over the pool's indices.
 */
export function drawDemonstrations(
  item: TaskItem,
  pool: readonly TaskItem[],
  shots: number,
  seed: number,
  task: string,
): TaskItem[] {
  if (shots === 0) return [];
  const candidates = pool.filter((p) => p.id !== item.id);
  if (candidates.length < shots) {
    throw new ConfigError(
      `task ${task}: ${shots}-shot prompts need ${shots} other items, the few-shot pool has ${candidates.length}`,
    );
  }
  const rng = new Prng(seedFor(seed, task, shots, item.id));
  const order = candidates.map((_, i) => i);
  for (let i = 0; i < shots; i++) {
    const j = i + rng.int(order.length - i);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order.slice(0, shots).map((i) => candidates[i]!);
}
