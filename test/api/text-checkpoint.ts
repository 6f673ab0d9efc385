/**
 * A checkpoint with a tokenizer for text tests: the fp16-long fixture's weights with the embedding
 * and output rows cut to a small BPE tokenizer's vocabulary, so every id the model emits decodes.
 */
import { join } from 'node:path';
import { trainBpe, writeTokenizerJson } from '../../src/data/bpe-trainer.js';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/model/checkpoint.js';
import { fixtureDir } from '../support/paths.js';

export async function writeTextCheckpoint(dir: string, work: string): Promise<void> {
  const tokenizerPath = join(work, 'text-tokenizer.json');
  await writeTokenizerJson(
    tokenizerPath,
    await trainBpe(['the cat sat on the mat. '.repeat(20), 'a dog ran. '.repeat(10)], { vocabSize: 300 }),
  );
  const vocabSize = (await loadTokenizer(tokenizerPath)).vocabSize;
  const { config, params } = loadCheckpoint(join(fixtureDir('fp16-long'), 'model'));
  for (const name of ['gpt_neox.embed_in.weight', 'embed_out.weight'])
    params.set(name, params.get(name)!.slice(0, vocabSize * config.hiddenSize));
  await saveCheckpoint(dir, { ...config, vocabSize }, params, { tokenizerPath });
}
