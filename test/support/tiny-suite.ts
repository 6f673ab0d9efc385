/**
 * A suite trained here by the CLI in seconds, for the studies that read held-out text: the synthetic
 * corpus (20k tokens, a 512-token vocabulary), nano-25k with 64-token samples, batches of 4, 4
 * steps, checkpoints at steps 0, 1, 2, 4, validation on `evalIters` held-out batches at each.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './paths.js';

export const cli = join(repoRoot, 'dist/src/cli/main.js');

/** Runs `pythia <args>`, asserting it succeeds; its stderr. */
export function pythia(...args: string[]): string {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, `pythia ${args.join(' ')}\n${r.stderr}`);
  return r.stderr;
}

export interface TinySuite {
  suite: string;
  /** The corpus's dataset prefix. */
  data: string;
  tokenizer: string;
  /** The folder of nano-25k's checkpoint at `step`. */
  step(step: number): string;
  log: string;
  batchSize: number;
  seqLength: number;
}

export function trainTinySuite(dir: string, evalIters = 1): TinySuite {
  const synth = join(dir, 'synth');
  const suite = join(dir, 'suite');
  pythia('synth', '--out', synth, '--tokens', '20000', '--vocab-size', '512');
  const data = join(synth, 'data/corpus_text_document');
  const tokenizer = join(synth, 'tokenizer.json');
  pythia(
    'suite',
    '--preset',
    'nano',
    '--models',
    'nano-25k',
    '--data',
    data,
    '--vocab-file',
    tokenizer,
    '--out',
    suite,
    '--seq-length',
    '64',
    '--train-batch-size',
    '4',
    '--train-iters',
    '4',
    '--checkpoint-factor',
    '2',
    '--eval-iters',
    String(evalIters),
    '--threads',
    '1',
  );
  return {
    suite,
    data,
    tokenizer,
    step: (step) => join(suite, 'nano-25k', `step${step}`),
    log: join(suite, 'nano-25k', 'log.jsonl'),
    batchSize: 4,
    seqLength: 64,
  };
}
