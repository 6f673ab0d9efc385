/**
 * A small world for evaluation tests: a byte-level BPE tokenizer trained on a few sentences, GPT-NeoX
 * checkpoints with random weights (evaluation needs no trained model to be checked), a suite folder
 * laid out as `pythia suite` writes it, and task files of every kind.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { trainBpe, writeTokenizerJson } from '../../src/data/bpe-trainer.js';
import { loadTokenizer, type TextTokenizer } from '../../src/data/tokenizer.js';
import { saveCheckpoint } from '../../src/model/checkpoint.js';
import { type NeoXConfig, parameterShapes } from '../../src/model/config.js';
import type { Params } from '../../src/model/params.js';
import { pythiaArchitecture } from '../../src/model/presets.js';
import { initParameters } from '../../src/train/init.js';

const SENTENCES = [
  'The cat sat on the mat.',
  'Q: What is 2 plus 3? A: 5',
  'Q: What is 4 plus 4? A: 8',
  'The nurse said she was busy. The pilot said he was late.',
  'Long ago a fox found a coin by the river and kept the coin.',
  'Paris is a city. Rome is a city. The river flows to the sea.',
];

export interface EvalWorld {
  dir: string;
  tokenizerPath: string;
  tokenizer: TextTokenizer;
  config: NeoXConfig;
}

export async function makeWorld(dir: string, maxPositions = 64): Promise<EvalWorld> {
  const model = await trainBpe(Array.from({ length: 20 }, () => SENTENCES).flat(), { vocabSize: 300 });
  const tokenizerPath = join(dir, 'tokenizer.json');
  await writeTokenizerJson(tokenizerPath, model);
  const tokenizer = await loadTokenizer(tokenizerPath);
  const config: NeoXConfig = {
    ...pythiaArchitecture({ numLayers: 2, hiddenSize: 32, numHeads: 2, vocabSize: tokenizer.vocabSize, maxPositions }),
    dtype: 'float32',
  };
  return { dir, tokenizerPath, tokenizer, config };
}

/** Random weights, larger than Pythia's init so the model's preferences are sharp and vary by seed. */
export function randomParams(config: NeoXConfig, seed: number): Params {
  return initParameters(
    parameterShapes(config),
    { hiddenSize: config.hiddenSize, numLayers: config.numLayers },
    { initMethod: 'normal', outputLayerInitMethod: 'normal', initMethodStd: 0.5 },
    seed,
  );
}

export async function writeCheckpoint(world: EvalWorld, dir: string, seed: number): Promise<Params> {
  const params = randomParams(world.config, seed);
  await saveCheckpoint(dir, world.config, params, { tokenizerPath: world.tokenizerPath });
  return params;
}

export function writeJsonl(path: string, lines: readonly object[]): string {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  return path;
}

/** One task of each kind, written under `<dir>/tasks/`. */
export function writeTasks(dir: string): Record<string, string> {
  const tasks = join(dir, 'tasks');
  return {
    choice: writeJsonl(join(tasks, 'choice.jsonl'), [
      {
        id: 'c1',
        output_type: 'multiple_choice',
        context: 'The cat sat on the',
        choices: ['mat', 'river', 'city'],
        gold: 0,
      },
      {
        id: 'c2',
        output_type: 'multiple_choice',
        context: 'The nurse said',
        choices: ['she', 'he'],
        gold: 0,
        type: 'pro',
      },
      {
        id: 'c3',
        output_type: 'multiple_choice',
        context: 'The nurse said',
        choices: ['she', 'he'],
        gold: 1,
        type: 'anti',
      },
      {
        id: 'c4',
        output_type: 'multiple_choice',
        context: 'Paris is a',
        choices: ['city', 'fox found a coin'],
        gold: 0,
      },
    ]),
    lambada: writeJsonl(join(tasks, 'lambada.jsonl'), [
      {
        id: 'l1',
        output_type: 'loglikelihood',
        context: 'Long ago a fox found a coin by the river and kept the',
        target: ' coin',
      },
      { id: 'l2', output_type: 'loglikelihood', context: 'The river flows to the', target: ' sea' },
      { id: 'l3', output_type: 'loglikelihood', context: 'The pilot said he was', target: ' late.' },
    ]),
    rolling: writeJsonl(join(tasks, 'rolling.jsonl'), [
      { id: 'd1', output_type: 'loglikelihood_rolling', text: SENTENCES.join(' ') },
      { id: 'd2', output_type: 'loglikelihood_rolling', text: 'The cat sat on the mat.' },
    ]),
    arithmetic: writeJsonl(join(tasks, 'arithmetic.jsonl'), [
      { id: 'a1', output_type: 'generate_until', context: 'Q: What is 2 plus 3? A:', answer: '5', x1: 2, term: 2 },
      { id: 'a2', output_type: 'generate_until', context: 'Q: What is 4 plus 4? A:', answer: '8', x1: 4, term: 4 },
      { id: 'a3', output_type: 'generate_until', context: 'Q: What is 2 plus 2? A:', answer: '4', x1: 2, term: 2 },
    ]),
  };
}

/**
 * A suite folder: `<dir>/suite/<model>/step<N>/` for each model and step, suite.json naming a data
 * prefix under `<dir>/corpus/data/`, so the suite's task folder is `<dir>/corpus/tasks/`.
 */
export async function writeSuite(
  world: EvalWorld,
  models: readonly string[],
  steps: readonly number[],
): Promise<string> {
  const suite = join(world.dir, 'suite');
  let seed = 1;
  for (const m of models) for (const s of steps) await writeCheckpoint(world, join(suite, m, `step${s}`), seed++);
  writeFileSync(
    join(suite, 'suite.json'),
    JSON.stringify({
      suite: 'test',
      data: { prefix: join(world.dir, 'corpus', 'data', 'corpus_text_document'), preshuffled: false },
      models: [],
    }),
  );
  writeTasks(join(world.dir, 'corpus'));
  return suite;
}
