/**
 * `pythia synth`: generates the corpus, writes corpus.jsonl and the tasks, trains a byte-level BPE
 * tokenizer on the corpus, tokenizes it into a GPT-NeoX dataset (EOD after every document) and
 * writes truth.json last. Every file is written atomically; the same options give the same bytes.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { trainBpe, writeTokenizerJson } from '../data/bpe-trainer.js';
import { IndexedDataset } from '../data/indexed-dataset.js';
import { tokenizeCorpus } from '../data/tokenize.js';
import { loadTokenizer } from '../data/tokenizer.js';
import { AtomicFileWriter, writeFileAtomic } from '../util/atomic.js';
import { ConfigError } from '../util/errors.js';
import { generateCorpus, type SyntheticCorpus, type SynthOptions, validateOptions } from './corpus.js';
import { SOURCES, type SourceName } from './mix.js';
import { TASK_FILES, writeTasks } from './tasks.js';
import { buildTruth, type OutputFiles, type TokenStats } from './truth.js';

export const CORPUS_FILE = 'corpus.jsonl';
export const TOKENIZER_FILE = 'tokenizer.json';
/** Named as GPT-NeoX's preprocess_data.py names its output for prefix `data/corpus` and key `text`. */
export const DATASET_PREFIX = 'data/corpus_text_document';
export const TRUTH_FILE = 'truth.json';

export type SynthStage = 'generate' | 'corpus' | 'tasks' | 'tokenizer' | 'tokenize' | 'truth';

export interface SynthProgress {
  stage: SynthStage;
  /** Documents done and in all, for the stages that go document by document. */
  done?: number;
  total?: number;
}

export interface SynthSummary {
  out: string;
  documents: number;
  tokens: number;
  vocabSize: number;
  documentsBySource: Record<SourceName, number>;
  tokensBySource: Record<SourceName, number>;
  canaries: number;
  entities: number;
  /** Paths relative to `out`. */
  files: string[];
}

export function corpusLine(text: string, source: SourceName): string {
  return `${JSON.stringify({ text, meta: { source } })}\n`;
}

function writeCorpusJsonl(path: string, corpus: SyntheticCorpus, onProgress?: (done: number) => void): void {
  const writer = new AtomicFileWriter(path);
  const encoder = new TextEncoder();
  try {
    let chunk = '';
    corpus.documents.forEach((doc, i) => {
      chunk += corpusLine(doc.text, doc.source);
      if (chunk.length >= 1 << 20) {
        writer.write(encoder.encode(chunk));
        chunk = '';
        onProgress?.(i + 1);
      }
    });
    writer.write(encoder.encode(chunk));
    writer.commit();
  } catch (e) {
    writer.abort();
    throw e;
  }
}

/** Per-source token counts and canary lengths, read back from the dataset's index. */
function tokenStats(prefix: string, corpus: SyntheticCorpus, vocabSize: number, eodId: number): TokenStats {
  const dataset = IndexedDataset.open(prefix);
  try {
    const sizes = dataset.sizes;
    if (sizes.length !== corpus.documents.length) {
      throw new Error(`${prefix}: ${sizes.length} items for ${corpus.documents.length} documents`);
    }
    const tokensBySource = Object.fromEntries(SOURCES.map((s) => [s, 0])) as Record<SourceName, number>;
    corpus.documents.forEach((doc, i) => {
      tokensBySource[doc.source] += sizes[i]!;
    });
    const canaryTokens = corpus.canaries.map((c) => sizes[c.documents[0]!]! - 1);
    return { vocabSize, eodId, tokensBySource, canaryTokens };
  } finally {
    dataset.close();
  }
}

async function makeOutputFolder(out: string): Promise<void> {
  try {
    await mkdir(out, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR')
      throw new ConfigError(`--out: ${out} is not a folder (a file is in the way)`);
    throw e;
  }
}

export async function synthesize(
  out: string,
  options: SynthOptions,
  onProgress?: (p: SynthProgress) => void,
): Promise<SynthSummary> {
  validateOptions(options);
  await makeOutputFolder(out);
  onProgress?.({ stage: 'generate' });
  const corpus = generateCorpus(options);
  const total = corpus.documents.length;

  onProgress?.({ stage: 'corpus', done: 0, total });
  writeCorpusJsonl(join(out, CORPUS_FILE), corpus, (done) => onProgress?.({ stage: 'corpus', done, total }));
  onProgress?.({ stage: 'corpus', done: total, total });

  onProgress?.({ stage: 'tasks' });
  await writeTasks(out, corpus.tasks);

  onProgress?.({ stage: 'tokenizer' });
  const model = await trainBpe(
    corpus.documents.map((d) => d.text),
    { vocabSize: options.vocabSize },
  );
  await writeTokenizerJson(join(out, TOKENIZER_FILE), model);

  const tokenizer = await loadTokenizer(join(out, TOKENIZER_FILE));
  onProgress?.({ stage: 'tokenize', done: 0, total });
  const prefix = join(out, DATASET_PREFIX);
  const tokenized = await tokenizeCorpus({
    inputs: [join(out, CORPUS_FILE)],
    tokenizer,
    out: prefix,
    appendEod: true,
    onProgress: (p) => onProgress?.({ stage: 'tokenize', done: p.documents, total }),
  });

  onProgress?.({ stage: 'truth' });
  const stats = tokenStats(prefix, corpus, tokenizer.vocabSize, tokenizer.eodId);
  const files: OutputFiles = {
    corpus: CORPUS_FILE,
    tokenizer: TOKENIZER_FILE,
    dataset: DATASET_PREFIX,
    tasks: { ...TASK_FILES },
  };
  await writeFileAtomic(join(out, TRUTH_FILE), `${JSON.stringify(buildTruth(corpus, stats, files), null, 1)}\n`);

  const documentsBySource = Object.fromEntries(SOURCES.map((s) => [s, 0])) as Record<SourceName, number>;
  for (const d of corpus.documents) documentsBySource[d.source]++;
  return {
    out,
    documents: total,
    tokens: tokenized.tokens,
    vocabSize: tokenizer.vocabSize,
    documentsBySource,
    tokensBySource: stats.tokensBySource,
    canaries: corpus.canaries.length,
    entities: corpus.facts.entities.length,
    files: [
      CORPUS_FILE,
      ...Object.values(TASK_FILES),
      TOKENIZER_FILE,
      `${DATASET_PREFIX}.bin`,
      `${DATASET_PREFIX}.idx`,
      TRUTH_FILE,
    ],
  };
}
