/**
 * The golden outputs of lm-evaluation-harness 0.4.12 (test/fixtures/lm-eval/golden.json, made by
 * test/fixtures/lm-eval/golden.py from the release's own task files, templates and sampler): the
 * made-up documents of each built-in task, per split, and the requests lm-eval makes for each
 * evaluated document at 0, 1 and 3 shots.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Doc, SplitDocs } from '../../src/eval/lm-eval/build.js';
import { repoRoot } from '../support/paths.js';

export interface GoldenDoc {
  /** Per number of shots: [context, continuation] pairs, or [text] for rolling log-likelihood. */
  shots: Record<string, string[][]>;
  choices?: string[];
  gold?: number;
  words?: number;
  bytes?: number;
}

export interface GoldenTask {
  evalSplit: string;
  fewshotSplit: string;
  docs: GoldenDoc[];
}

export interface Golden {
  docs: Record<string, Record<string, Doc[]>>;
  tasks: Record<string, GoldenTask>;
  random: {
    seed1234_getrandbits32: number[];
    seed1234_random: number[];
    seeds_getrandbits32: Record<string, [number, number]>;
    seed1234_randbelow: number[];
    seed1234_samples: { n: number; k: number; sample: number[] }[];
    seed1234_sample_sequence: number[][];
    seed1234_shuffle20: number[];
  };
}

export const golden: Golden = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/lm-eval/golden.json'), 'utf8'));

/** A split of the golden documents, as the loader would hand it over (from one made-up file). */
export function goldenSplit(task: string, split: string): SplitDocs {
  const docs = golden.docs[task]![split]!;
  return {
    split,
    docs: structuredClone(docs),
    origins: docs.map((_, row) => ({ file: `${task}/${split}.parquet`, row })),
    files: [{ name: `${split}.parquet`, sha256: '0'.repeat(64) }],
  };
}
