/**
 * `npm run bench:data`: BPE training and tokenization throughput (our path: the `tokenizers` napi
 * package's encodeBatch, and the whole `pythia data tokenize` pipeline), reading the corpus as
 * `.jsonl` and as `.jsonl.zst` (fzstd, and Node's own zstd where it has one), and GPT-NeoX index-map
 * building for 10^6 documents; beside them the same work by HF `tokenizers` in Python, by numpy and
 * by the `zstd` command, when the machine has them. Not a test: numbers depend on the machine and
 * its load.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trainBpe, writeTokenizerJson } from '../src/data/bpe-trainer.js';
import { readDocuments } from '../src/data/corpus.js';
import { buildIndexMaps } from '../src/data/index-maps.js';
import { tokenizeCorpus } from '../src/data/tokenize.js';
import { loadTokenizer } from '../src/data/tokenizer.js';
import { defaultZstdDecoder, type ZstdDecoder } from '../src/data/zstd.js';
import { Prng } from '../src/util/prng.js';
import { loadNote, table, timeIt } from './common.js';

const CORPUS_MB = Number(process.env.BENCH_CORPUS_MB ?? 8);
const VOCAB = 8000;
const INDEX_DOCUMENTS = 1_000_000;
const SEQ_LENGTH = 2048;
const SEED = 1234;
/**
 * zstd-napi (native, compiled at install; replaced by fzstd) read this bench's .jsonl.zst at this
 * rate: best of 10 runs alternated with fzstd (best 74 MB/s) on the loaded 2-core dev machine.
 */
const ZSTD_NAPI_MB_S = '185 MB/s (measured once, fzstd 74 MB/s then)';

/** Pseudo-English: Zipf-distributed made-up words, sentences, paragraphs of varied length. */
function syntheticDocuments(megabytes: number): string[] {
  const rng = new Prng(7);
  const letters = 'etaoinshrdlcumwfgypbvkjxqz';
  const vocabulary = Array.from({ length: 30000 }, () => {
    const length = 1 + Math.floor(-Math.log(1 - rng.float()) * 4);
    let w = '';
    for (let i = 0; i < length; i++) w += letters[Math.floor(letters.length * rng.float() ** 2)];
    return w;
  });
  const word = (): string => vocabulary[Math.floor(vocabulary.length * rng.float() ** 3)]!;
  const docs: string[] = [];
  let chars = 0;
  while (chars < megabytes * 1e6) {
    const sentences: string[] = [];
    const count = 1 + rng.int(30);
    for (let s = 0; s < count; s++) {
      const words = Array.from({ length: 4 + rng.int(20) }, word);
      words[0] = words[0]!.charAt(0).toUpperCase() + words[0]!.slice(1);
      if (rng.float() < 0.2) words.splice(rng.int(words.length), 0, String(rng.int(100000)));
      sentences.push(words.join(' ') + (rng.float() < 0.1 ? '?' : '.'));
    }
    const doc = sentences.join(' ');
    docs.push(doc);
    chars += doc.length;
  }
  return docs;
}

function python(script: string, args: string[]): { ok: boolean; stdout: string; stderr: string } {
  const r = spawnSync('python3', ['-', ...args], { input: script, encoding: 'utf8', timeout: 600_000 });
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Text megabytes per second of reading every document of `path`. */
async function readRate(path: string, megabytes: number, zstdDecoder?: ZstdDecoder): Promise<string> {
  const seconds = await timeIt(async () => {
    for await (const _ of readDocuments(path, { zstdDecoder }));
  }, 3);
  return `${(megabytes / seconds).toFixed(1)} MB/s`;
}

/** The corpus compressed by the `zstd` command at its default level, or why not. */
function zstdCompress(path: string): { path?: string; note: string } {
  const r = spawnSync('zstd', ['-q', '-f', '-3', path, '-o', `${path}.zst`], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return { note: 'n/a (no zstd command)' };
  const t0 = performance.now();
  const d = spawnSync('sh', ['-c', `zstd -dc '${path}.zst' > /dev/null`]);
  const seconds = (performance.now() - t0) / 1000;
  return {
    path: `${path}.zst`,
    note:
      d.status === 0
        ? `zstd -dc: ${(statSync(path).size / 1e6 / seconds).toFixed(0)} MB/s (decompression alone)`
        : 'zstd -dc failed',
  };
}

function pythonHas(module: string): boolean {
  return spawnSync('python3', ['-c', `import ${module}`], { encoding: 'utf8' }).status === 0;
}

const PY_TOKENIZE = `
import json, sys, time
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
docs = [json.loads(l)["text"] for l in open(sys.argv[2], encoding="utf-8")]
mb = sum(len(d.encode()) for d in docs) / 1e6
t0 = time.perf_counter()
for i in range(0, len(docs), 1000):
    tok.encode_batch(docs[i:i + 1000])
print(mb / (time.perf_counter() - t0))
`;

/** GPT-NeoX's index maps in numpy, sample_idx vectorized (GPT-NeoX itself uses a C++ helper). */
const PY_INDEX = `
import sys, time
import numpy as np
sizes = np.fromfile(sys.argv[1], dtype=np.int32)
seq, seed, out = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
t0 = time.perf_counter()
tokens = int(sizes.sum(dtype=np.int64))
num_samples = (tokens - 1) // seq
rng = np.random.RandomState(seed=seed)
doc_idx = np.arange(len(sizes), dtype=np.int32)
rng.shuffle(doc_idx)
lengths = sizes[doc_idx].astype(np.int64)
ends = np.cumsum(lengths)
starts = np.arange(num_samples + 1, dtype=np.int64) * seq
where = np.searchsorted(ends, starts, side="right")
sample_idx = np.stack([where, starts - (ends[where] - lengths[where])], axis=1).astype(np.int32)
shuffle_idx = np.arange(num_samples, dtype=np.uint32)
rng.shuffle(shuffle_idx)
print(time.perf_counter() - t0)
with open(out, "wb") as f:
    f.write(doc_idx.tobytes()); f.write(sample_idx.tobytes()); f.write(shuffle_idx.tobytes())
`;

const dir = mkdtempSync(join(tmpdir(), 'pythia-bench-data-'));
try {
  console.log(`bench:data; ${loadNote()}`);
  const hasTokenizersPy = pythonHas('tokenizers');
  const hasNumpy = pythonHas('numpy');

  const docs = syntheticDocuments(CORPUS_MB);
  const corpus = join(dir, 'corpus.jsonl');
  writeFileSync(corpus, `${docs.map((text) => JSON.stringify({ text })).join('\n')}\n`);
  const megabytes = docs.reduce((sum, d) => sum + Buffer.byteLength(d), 0) / 1e6;
  console.log(`corpus: ${docs.length} synthetic documents, ${megabytes.toFixed(1)} MB of text`);

  let t0 = performance.now();
  const model = await trainBpe(docs, { vocabSize: VOCAB });
  const trainSeconds = (performance.now() - t0) / 1000;
  const tokenizerPath = join(dir, 'tokenizer.json');
  await writeTokenizerJson(tokenizerPath, model);
  const tokenizer = await loadTokenizer(tokenizerPath);

  await tokenizer.encodeBatch(docs.slice(0, 100));
  t0 = performance.now();
  let tokens = 0;
  for (let i = 0; i < docs.length; i += 1000)
    for (const ids of await tokenizer.encodeBatch(docs.slice(i, i + 1000))) tokens += ids.length;
  const encodeSeconds = (performance.now() - t0) / 1000;

  t0 = performance.now();
  await tokenizeCorpus({ inputs: [corpus], tokenizer, out: join(dir, 'ds'), appendEod: true });
  const pipelineSeconds = (performance.now() - t0) / 1000;

  const plainRead = await readRate(corpus, megabytes);
  const compressed = zstdCompress(corpus);
  const fzstdRead = compressed.path ? await readRate(compressed.path, megabytes, 'fzstd') : compressed.note;
  const nodeZstd = defaultZstdDecoder() === 'node';
  const nodeRead = !compressed.path
    ? compressed.note
    : nodeZstd
      ? await readRate(compressed.path, megabytes, 'node')
      : `n/a (Node ${process.version} has no zstd)`;

  let pyTokenize = 'n/a (python3 has no tokenizers)';
  if (hasTokenizersPy) {
    const r = python(PY_TOKENIZE, [tokenizerPath, corpus]);
    pyTokenize = r.ok ? `${Number(r.stdout.trim()).toFixed(1)} MB/s` : `failed: ${r.stderr.trim().split('\n').at(-1)}`;
  }

  const rng = new Prng(11);
  const sizes = Int32Array.from({ length: INDEX_DOCUMENTS }, () => 1 + rng.int(2000));
  let total = 0;
  for (const s of sizes) total += s;
  const numSamples = Math.floor((total - 1) / SEQ_LENGTH);
  t0 = performance.now();
  const maps = buildIndexMaps({ sizes, numSamples, seqLength: SEQ_LENGTH, seed: SEED });
  const indexSeconds = (performance.now() - t0) / 1000;

  let numpyIndex = 'n/a (python3 has no numpy)';
  if (hasNumpy) {
    const sizesFile = join(dir, 'sizes.i32');
    const outFile = join(dir, 'maps.bin');
    writeFileSync(sizesFile, new Uint8Array(sizes.buffer));
    const r = python(PY_INDEX, [sizesFile, String(SEQ_LENGTH), String(SEED), outFile]);
    if (r.ok) {
      const ours = Buffer.concat([
        new Uint8Array(maps.docIdx.buffer, maps.docIdx.byteOffset, maps.docIdx.byteLength),
        new Uint8Array(maps.sampleIdx.buffer, maps.sampleIdx.byteOffset, maps.sampleIdx.byteLength),
        new Uint8Array(maps.shuffleIdx.buffer, maps.shuffleIdx.byteOffset, maps.shuffleIdx.byteLength),
      ]);
      const same = statSync(outFile).size === ours.length && readFileSync(outFile).equals(ours);
      numpyIndex = `${Number(r.stdout.trim()).toFixed(2)} s (maps ${same ? 'identical to ours' : 'DIFFER from ours'})`;
    } else {
      numpyIndex = `failed: ${r.stderr.trim().split('\n').at(-1)}`;
    }
  }

  console.log(
    table(
      ['work', 'pythia-ts', 'reference'],
      [
        [
          `BPE training, ${VOCAB} tokens`,
          `${(megabytes / trainSeconds).toFixed(1)} MB/s (${trainSeconds.toFixed(1)} s)`,
          '-',
        ],
        [
          'tokenize, encodeBatch (napi tokenizers)',
          `${(megabytes / encodeSeconds).toFixed(1)} MB/s, ${Math.round(tokens / encodeSeconds)} tok/s`,
          `HF tokenizers (Python): ${pyTokenize}`,
        ],
        ['tokenize, whole pipeline to .bin/.idx', `${(megabytes / pipelineSeconds).toFixed(1)} MB/s`, '-'],
        ['read documents, .jsonl', plainRead, '-'],
        ['read documents, .jsonl.zst (fzstd)', fzstdRead, `${compressed.note}; zstd-napi (before): ${ZSTD_NAPI_MB_S}`],
        ["read documents, .jsonl.zst (Node's zstd)", nodeRead, '-'],
        [
          `index maps, ${INDEX_DOCUMENTS} docs (${maps.shuffleIdx.length} samples)`,
          `${indexSeconds.toFixed(2)} s`,
          `numpy: ${numpyIndex}`,
        ],
      ],
    ),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
