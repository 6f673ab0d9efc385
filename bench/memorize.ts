/**
 * `npm run bench:memorize`: memorization scoring, sequences/s, at the pythia-70m shape (random
 * weights): a batch of BENCH_MEMORIZE_BATCH sequences (default 32), each a 32-token prompt and 32
 * greedy tokens with the KV cache, beside Hugging Face `generate` (greedy, KV cache, the same batch
 * and threads) on PyTorch. The Python comes from PYTHIA_BENCH_PYTHON, else ../venv/bin/python
 * when present; it needs torch and transformers. Each side is warmed up once, then timed
 * BENCH_RUNS times (default 2, median).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { IndexRange, memorizationScores } from '../src/analysis/memorization.js';
import type { SampleSource } from '../src/data/batches.js';
import { Decoder } from '../src/model/decoder.js';
import { configFor, loadNote, median, randomParams, SHAPES, table } from './common.js';

const BATCH = Number(process.env.BENCH_MEMORIZE_BATCH ?? 32);
const RUNS = Number(process.env.BENCH_RUNS ?? 2);
const PROMPT = 32;
const CONTINUATION = 32;

const HF_SCRIPT = `
import json, sys, time, torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM
V, d, L, h, batch, threads, runs = (int(a) for a in sys.argv[1:8])
torch.set_num_threads(threads)
torch.manual_seed(0)
config = GPTNeoXConfig(vocab_size=V, hidden_size=d, num_hidden_layers=L, num_attention_heads=h,
    intermediate_size=4 * d, rotary_pct=0.25, use_parallel_residual=True, max_position_embeddings=2048,
    tie_word_embeddings=False, bos_token_id=None, eos_token_id=None, pad_token_id=1)
model = GPTNeoXForCausalLM(config).eval()
prompts = torch.randint(2, V, (batch, ${PROMPT}))
def once():
    with torch.inference_mode():
        out = model.generate(prompts, attention_mask=torch.ones_like(prompts), max_new_tokens=${CONTINUATION},
            min_new_tokens=${CONTINUATION}, do_sample=False, use_cache=True, pad_token_id=1)
    assert out.shape == (batch, ${PROMPT + CONTINUATION})
once()
times = []
for _ in range(runs):
    t0 = time.perf_counter(); once(); times.append(time.perf_counter() - t0)
times.sort()
print(json.dumps({"seconds": times[len(times) // 2], "torch": torch.__version__}))
`;

/** Random prompts and continuations as a sample source: sample k is its own random tokens. */
function randomSource(count: number, vocab: number): SampleSource {
  const sampleLength = PROMPT + CONTINUATION + 1;
  const rows = Array.from({ length: count }, (_, k) =>
    Int32Array.from({ length: sampleLength }, (_, t) => 2 + ((k * 7919 + t * 104729) % (vocab - 2))),
  );
  return {
    length: count,
    sampleLength,
    sample: (k) => rows[k]!,
    batchTokens: () => {
      throw new Error('not used');
    },
    close: () => {},
  };
}

function huggingFace(threads: number): { seconds?: number; note: string } {
  const python = process.env.PYTHIA_BENCH_PYTHON ?? resolve(process.cwd(), '../venv/bin/python');
  if (!existsSync(python)) {
    return {
      note: `Hugging Face baseline skipped: no Python at ${python}; set PYTHIA_BENCH_PYTHON to a Python with torch and transformers (python -m venv v && v/bin/pip install torch transformers)`,
    };
  }
  const s = SHAPES.find((x) => x.label === 'pythia-70m')!;
  const r = spawnSync(python, ['-c', HF_SCRIPT, ...[s.V, s.d, s.L, s.h, BATCH, threads, RUNS].map(String)], {
    encoding: 'utf8',
    timeout: 1_800_000,
  });
  const line = r.stdout?.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !line.startsWith('{'))
    return { note: `Hugging Face baseline failed (${python}): ${(r.stderr ?? '').trim().split('\n').pop()}` };
  const { seconds, torch } = JSON.parse(line) as { seconds: number; torch: string };
  return { seconds, note: `Hugging Face transformers generate on PyTorch ${torch} (${python}), ${threads} threads` };
}

const threads = Number(process.env.BENCH_THREADS ?? availableParallelism());
console.log(`bench:memorize, ${threads} threads; ${loadNote()}`);
const shape = SHAPES.find((x) => x.label === 'pythia-70m')!;
const config = configFor(shape);
const decoder = await Decoder.create(config, randomParams(config), { threads });
const source = randomSource(BATCH, shape.V);
const once = () =>
  memorizationScores(decoder, source, new IndexRange(0, BATCH), {
    batchSize: BATCH,
    promptLength: PROMPT,
    continuationLength: CONTINUATION,
  });
await once();
const times: number[] = [];
for (let r = 0; r < RUNS; r++) {
  const t0 = performance.now();
  await once();
  times.push((performance.now() - t0) / 1000);
}
await decoder.release();
const ours = median(times);
const hf = huggingFace(threads);
console.log(hf.note);
console.log(
  `pythia-70m shape, random weights; ${BATCH} sequences per batch, ${PROMPT}-token prompts, ${CONTINUATION} greedy tokens with the KV cache`,
);
const rows: (string | number)[][] = [['pythia-ts memorize', (BATCH / ours).toFixed(2), ours.toFixed(2)]];
if (hf.seconds !== undefined)
  rows.push(['HF generate (PyTorch)', (BATCH / hf.seconds).toFixed(2), hf.seconds.toFixed(2)]);
console.log(table(['', 'sequences/s', 'seconds per batch'], rows));
if (hf.seconds !== undefined) console.log(`ratio: ${(hf.seconds / ours).toFixed(2)}× Hugging Face's sequences/s`);
console.log(
  'fp32 matmul peak: not measured here (bench/common.ts has no peak probe; npm run bench:engine reports matmul GFLOP/s)',
);
