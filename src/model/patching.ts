/**
 * Activation patching grids as TransformerLens's patching.py computes them:
 * `get_act_patch_resid_pre` ([layer, pos]: the corrupted run with resid_pre at one layer and
 * position taken from the clean run) and `get_act_patch_attn_head_out_all_pos` ([layer, head]: one
 * head's z at every position from the clean run). Each cell's metric is the logit difference of the
 * right and wrong answers at the last position, normalised as its demos do:
 * (patched − corrupt) / (clean − corrupt). The cells run as rows of batches of the corrupted input,
 * one compiled graph for the whole grid.
 */
import { ConfigError } from '../util/errors.js';
import type { ActivationRunner } from './activations.js';
import type { Activation } from './hooks.js';
import type { ActivationPatch } from './interventions.js';

export const PATCH_OVER = ['resid_pre', 'head_out'] as const;
export type PatchOver = (typeof PATCH_OVER)[number];

export interface PatchingOptions {
  /** Patched runs per batch (default 32). */
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface PatchingGrid {
  over: PatchOver;
  /** [layer][position] for resid_pre, [layer][head] for head_out. */
  grid: number[][];
  /** Logit difference (answer − wrong) at the last position of the clean and the corrupted run. */
  cleanLogitDiff: number;
  corruptLogitDiff: number;
}

function logitDiff(logits: Activation, row: number, answer: number, wrong: number): number {
  const V = logits.dims[1]!;
  return logits.data[row * V + answer]! - logits.data[row * V + wrong]!;
}

export async function patchingGrid(
  runner: ActivationRunner,
  clean: readonly number[],
  corrupt: readonly number[],
  answer: number,
  wrong: number,
  over: PatchOver,
  options: PatchingOptions = {},
): Promise<PatchingGrid> {
  const { config } = runner;
  if (clean.length !== corrupt.length)
    throw new ConfigError(
      `the clean input is ${clean.length} tokens and the corrupted one ${corrupt.length}: patching needs equal lengths`,
    );
  for (const [what, id] of [
    ['answer', answer],
    ['wrong answer', wrong],
  ] as const)
    if (!Number.isInteger(id) || id < 0 || id >= config.vocabSize)
      throw new ConfigError(`the ${what} token ${id} is outside the vocabulary [0, ${config.vocabSize})`);
  const seq = clean.length;
  const hook = (layer: number): string =>
    over === 'resid_pre' ? `blocks.${layer}.hook_resid_pre` : `blocks.${layer}.attn.hook_z`;
  const names = Array.from({ length: config.numLayers }, (_, l) => hook(l));
  const cleanRun = await runner.run(BigInt64Array.from(clean.map(BigInt)), 1, { names, logits: 'last' });
  const corruptIds = BigInt64Array.from(corrupt.map(BigInt));
  const corruptRun = await runner.run(corruptIds, 1, { names: [], logits: 'last' });
  const cleanDiff = logitDiff(cleanRun.logits!, 0, answer, wrong);
  const corruptDiff = logitDiff(corruptRun.logits!, 0, answer, wrong);
  if (cleanDiff === corruptDiff)
    throw new ConfigError(
      `the clean and corrupted inputs give the same logit difference (${cleanDiff}): there is nothing to normalise by`,
    );

  const columns = over === 'resid_pre' ? seq : config.numHeads;
  const cells = Array.from({ length: config.numLayers * columns }, (_, i) => ({
    layer: Math.floor(i / columns),
    column: i % columns,
  }));
  const grid = Array.from({ length: config.numLayers }, () => new Array<number>(columns).fill(0));
  const batchSize = options.batchSize ?? 32;
  for (let start = 0; start < cells.length; start += batchSize) {
    const chunk = cells.slice(start, start + batchSize);
    const ids = new BigInt64Array(chunk.length * seq);
    for (let r = 0; r < chunk.length; r++) ids.set(corruptIds, r * seq);
    // Every layer's name in every batch (with no rows where a batch has none of its cells): one graph.
    const patch: ActivationPatch[] = names.map((name) => ({ name, value: cleanRun.cache.get(name)!, rows: [] }));
    chunk.forEach(({ layer, column }, row) => {
      const value = cleanRun.cache.get(names[layer]!)!;
      patch.push(
        over === 'resid_pre'
          ? { name: names[layer]!, value, rows: [row], positions: [column] }
          : { name: names[layer]!, value, rows: [row], heads: [column] },
      );
    });
    const run = await runner.run(ids, chunk.length, { names: [], logits: 'last', interventions: { patch } });
    chunk.forEach(({ layer, column }, row) => {
      grid[layer]![column] = (logitDiff(run.logits!, row, answer, wrong) - corruptDiff) / (cleanDiff - corruptDiff);
    });
    options.onProgress?.(start + chunk.length, cells.length);
  }
  return { over, grid, cleanLogitDiff: cleanDiff, corruptLogitDiff: corruptDiff };
}
