/**
 * `npm run bench:harness`: the paper's multiple-choice tasks (PIQA, ARC-Easy, ARC-Challenge, SciQ,
 * LogiQA, WinoGrande, WSC273 and LAMBADA, as built-in tasks) at 0 shots on a random
 * pythia-160m-shaped checkpoint, by pythia-ts (`runTask`, as `pythia eval` runs them) beside
 * lm-evaluation-harness (`lm_eval --model hf`: HFLM, float32, CPU) on the same checkpoint, threads and
 * documents, lm-eval at each of a few batch sizes (its fastest counts), with the fp32 matmul peak of
 * both measured in the same run.
 *
 * The bench writes everything into a temporary folder it deletes after: a byte-level BPE tokenizer
 * trained on its own made-up words, the checkpoint with that tokenizer, and BENCH_HARNESS_ITEMS
 * made-up documents a task (default 40) in each repository's real schema as the hub's parquet
 * conversion in a hub cache, with lm-eval task configs that include lm-eval's own and point it at
 * those files (as test/interop/lm-eval.test.ts does). Both sides time evaluation from task loading
 * to metrics, after a warm-up of two documents a task; loading the checkpoint is not counted.
 * pythia-ts runs twice: sharing each item's context across its requests (the default) and scoring
 * every request whole (`shareContexts: false`).
 *
 * Environment: BENCH_THREADS (default: all cores), BENCH_HARNESS_ITEMS, BENCH_BATCH (ours, default
 * 16 as `pythia eval`), BENCH_LM_EVAL_BATCHES (default 4,16,64), PYTHIA_LM_EVAL (the Python with
 * lm-eval; default /tmp/lmeval-env/bin/python, skipped when it cannot import lm_eval).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { trainBpe, writeTokenizerJson } from '../src/data/bpe-trainer.js';
import { EOD_TOKEN, loadTokenizer } from '../src/data/tokenizer.js';
import { loadBuiltinTask } from '../src/eval/lm-eval/load.js';
import { type EvalModel, runTask } from '../src/eval/run-task.js';
import { saveCheckpoint } from '../src/model/checkpoint.js';
import type { NeoXConfig } from '../src/model/config.js';
import { pythiaArchitecture } from '../src/model/presets.js';
import { Prng } from '../src/util/prng.js';
import { loadNote, matmulPeak, randomParams, table } from './common.js';
import { commit, HubCacheWriter, SCHEMAS } from './common-hub-cache.js';

const threads = Number(process.env.BENCH_THREADS ?? availableParallelism());
const ITEMS = Number(process.env.BENCH_HARNESS_ITEMS ?? 40);
const BATCH = Number(process.env.BENCH_BATCH ?? 16);
const LM_EVAL_BATCHES = process.env.BENCH_LM_EVAL_BATCHES ?? '4,16,64';
const python = process.env.PYTHIA_LM_EVAL ?? '/tmp/lmeval-env/bin/python';

/**
 * Each task: its repository, config and schema as the hub's parquet conversion has them, its config
 * in lm_eval/tasks/, and its splits, the one lm-eval evaluates last.
 */
const TASKS: Record<string, { repo: string; config: string; schema: string; yaml: string; splits: string[] }> = {
  piqa: {
    repo: 'baber/piqa',
    config: 'default',
    schema: 'piqa',
    yaml: 'piqa/piqa.yaml',
    splits: ['train', 'test', 'validation'],
  },
  arc_easy: {
    repo: 'allenai/ai2_arc',
    config: 'ARC-Easy',
    schema: 'arc',
    yaml: 'arc/arc_easy.yaml',
    splits: ['train', 'validation', 'test'],
  },
  arc_challenge: {
    repo: 'allenai/ai2_arc',
    config: 'ARC-Challenge',
    schema: 'arc',
    yaml: 'arc/arc_challenge.yaml',
    splits: ['train', 'validation', 'test'],
  },
  sciq: {
    repo: 'allenai/sciq',
    config: 'default',
    schema: 'sciq',
    yaml: 'sciq/sciq.yaml',
    splits: ['train', 'validation', 'test'],
  },
  logiqa: {
    repo: 'EleutherAI/logiqa',
    config: 'logiqa',
    schema: 'logiqa',
    yaml: 'logiqa/logiqa.yaml',
    splits: ['train', 'validation', 'test'],
  },
  winogrande: {
    repo: 'allenai/winogrande',
    config: 'winogrande_xl',
    schema: 'winogrande',
    yaml: 'winogrande/default.yaml',
    splits: ['train', 'test', 'validation'],
  },
  wsc273: {
    repo: 'lighteval/winograd_wsc',
    config: 'wsc273',
    schema: 'wsc273',
    yaml: 'wsc273/default.yaml',
    splits: ['test'],
  },
  lambada_openai: {
    repo: 'EleutherAI/lambada_openai',
    config: 'default',
    schema: 'lambada_openai',
    yaml: 'lambada/lambada_openai.yaml',
    splits: ['test'],
  },
};

/** Made-up English-like words: pseudo-words of one to three syllables and a few function words. */
function makeWords(rng: Prng): { word: () => string; words: (lo: number, hi: number) => string; name: () => string } {
  const onsets = ['b', 'c', 'd', 'f', 'g', 'h', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'w', 'st', 'tr', 'pl', 'ch'];
  const nuclei = ['a', 'e', 'i', 'o', 'u', 'ai', 'ea', 'ou'];
  const codas = ['', '', 'n', 'r', 's', 't', 'l', 'nd', 'ck'];
  const syllable = () => rng.pick(onsets) + rng.pick(nuclei) + rng.pick(codas);
  const lexicon = Array.from({ length: 1500 }, () => Array.from({ length: rng.between(1, 3) }, syllable).join(''));
  const common = ['the', 'a', 'of', 'to', 'and', 'in', 'is', 'it', 'that', 'for', 'was', 'on', 'with', 'as', 'by'];
  const word = () => (rng.float() < 0.3 ? rng.pick(common) : rng.pick(lexicon));
  const words = (lo: number, hi: number) => Array.from({ length: rng.between(lo, hi) }, word).join(' ');
  const name = () => {
    const w = rng.pick(lexicon);
    return w[0]!.toUpperCase() + w.slice(1);
  };
  return { word, words, name };
}

const sentence = (text: string) => `${text[0]!.toUpperCase()}${text.slice(1)}.`;

/** `n` documents of `task` in its repository's schema, of the lengths the real ones have. */
function documents(task: string, n: number, rng: Prng): object[] {
  const { words, word, name } = makeWords(rng);
  return Array.from({ length: n }, (_, i) => {
    switch (task) {
      case 'piqa':
        return {
          goal: sentence(words(6, 20)),
          sol1: sentence(words(5, 30)),
          sol2: sentence(words(5, 30)),
          label: i % 2,
        };
      case 'arc_easy':
      case 'arc_challenge': {
        const labels = i % 5 === 0 ? ['1', '2', '3', '4'] : ['A', 'B', 'C', 'D'];
        const text = labels.map(() => words(1, 6));
        return {
          id: `Q${i}`,
          question: `${sentence(words(10, 35)).slice(0, -1)}?`,
          choices: { text, label: labels },
          answerKey: labels[i % 4],
        };
      }
      case 'sciq':
        return {
          question: `${sentence(words(6, 18)).slice(0, -1)}?`,
          distractor3: words(1, 3),
          distractor1: words(1, 3),
          distractor2: words(1, 3),
          correct_answer: words(1, 3),
          support: i % 8 === 0 ? '' : `${sentence(words(30, 60))} ${sentence(words(30, 60))}`,
        };
      case 'logiqa':
        return {
          label: 'abcd'[i % 4],
          context: `${sentence(words(30, 60))} ${sentence(words(30, 60))}`,
          question: `${sentence(words(8, 16)).slice(0, -1)}?`,
          options: Array.from({ length: 4 }, () => sentence(words(8, 25))),
        };
      case 'winogrande': {
        const [a, b] = [name(), name()];
        return {
          sentence: sentence(`${a} ${words(3, 8)} ${b} ${words(2, 6)} _ ${words(3, 10)}`),
          option1: a,
          option2: b,
          answer: String(1 + (i % 2)),
        };
      }
      case 'wsc273': {
        const [a, b] = [`The ${word()} ${word()}`, `the ${word()}`];
        const before = `${a} ${words(2, 6)} ${b} because`;
        const after = `${words(3, 10)}.`;
        const text = `${before} they ${after}`;
        return {
          text,
          pronoun: 'they',
          pronoun_loc: before.length + 1,
          quote: `they ${after}`,
          quote_loc: before.length + 1,
          options: [a, b[0]!.toUpperCase() + b.slice(1)],
          label: i % 2,
          source: 'made up',
        };
      }
      case 'lambada_openai':
        return { text: `${sentence(words(40, 90))} ${words(5, 15)} ${word()}` };
      default:
        throw new Error(`no documents for ${task}`);
    }
  });
}

function lmEvalTasksDir(): string | undefined {
  const r = spawnSync(python, ['-c', 'import lm_eval, os; print(os.path.dirname(lm_eval.__file__))'], {
    encoding: 'utf8',
  });
  return r.status === 0 ? join(r.stdout.trim(), 'tasks') : undefined;
}

console.log(`bench:harness, ${threads} threads; ${loadNote()}`);
const dir = mkdtempSync(join(tmpdir(), 'pythia-bench-harness-'));
try {
  const rng = new Prng(23);
  const docs: Record<string, Record<string, object[]>> = {};
  for (const [task, { splits }] of Object.entries(TASKS))
    docs[task] = Object.fromEntries(
      splits.map((s, i) => [s, documents(task, i === splits.length - 1 ? ITEMS : 8, rng)]),
    );
  const corpus = Object.values(docs).flatMap((splits) =>
    Object.values(splits)
      .flat()
      .map((d) => JSON.stringify(d)),
  );
  const tokenizerPath = join(dir, 'tokenizer.json');
  await writeTokenizerJson(tokenizerPath, await trainBpe(corpus, { vocabSize: 4096 }));
  const tokenizer = await loadTokenizer(tokenizerPath);
  const config: NeoXConfig = {
    ...pythiaArchitecture({ numLayers: 12, hiddenSize: 768, numHeads: 12, vocabSize: 50304 }),
    dtype: 'float32',
  };
  const params = randomParams(config);
  const checkpoint = join(dir, 'model');
  await saveCheckpoint(checkpoint, config, params, { tokenizerPath });
  writeFileSync(
    join(checkpoint, 'tokenizer_config.json'),
    JSON.stringify({
      tokenizer_class: 'PreTrainedTokenizerFast',
      bos_token: EOD_TOKEN,
      eos_token: EOD_TOKEN,
      unk_token: EOD_TOKEN,
    }),
  );

  const cache = join(dir, 'hub');
  const includeDir = join(dir, 'include');
  mkdirSync(includeDir, { recursive: true });
  const lmEvalTasks = lmEvalTasksDir();
  const hub = await HubCacheWriter.open(cache, join(dir, 'staging'));
  try {
    const repos = [...new Set(Object.values(TASKS).map((t) => t.repo))];
    for (const [task, { repo, config: name, schema, yaml }] of Object.entries(TASKS)) {
      const snap = await hub.conversion(repo, name, docs[task]!, SCHEMAS[schema]!, commit(repos.indexOf(repo) + 1));
      if (!lmEvalTasks) continue;
      const dataFiles = Object.fromEntries(
        Object.keys(docs[task]!).map((split) => [split, [join(snap, name, split, '0000.parquet')]]),
      );
      const override = {
        include: join(lmEvalTasks, yaml),
        task,
        dataset_path: 'parquet',
        dataset_name: null,
        dataset_kwargs: { data_files: dataFiles },
      };
      writeFileSync(join(includeDir, `${task}.yaml`), `${JSON.stringify(override, null, 2)}\n`);
    }
  } finally {
    hub.close();
  }

  const model: EvalModel = { config, params, tokenizer };
  const names = Object.keys(TASKS);
  let requests = 0;
  const evaluate = async (shareContexts: boolean, limit?: number) => {
    const metrics: Record<string, Record<string, number>> = {};
    const t0 = performance.now();
    for (const name of names) {
      const task = await loadBuiltinTask(name, { cacheDir: cache });
      const run = await runTask(model, task, {
        shots: 0,
        seed: 1234,
        limit,
        batchSize: BATCH,
        maxGenTokens: 16,
        runtime: { threads },
        shareContexts,
      });
      metrics[name] = Object.fromEntries(
        run.aggregates.filter((a) => a.metric.startsWith('acc')).map((a) => [a.metric, a.value]),
      );
      if (limit === undefined && shareContexts)
        requests += run.items.reduce((n, item) => n + (item.choiceLoglikelihoods?.length ?? 1), 0);
    }
    return { seconds: (performance.now() - t0) / 1000, metrics };
  };
  await evaluate(true, 2);
  const shared = await evaluate(true);
  const plain = await evaluate(false);
  console.log(
    `pythia-ts: ${shared.seconds.toFixed(1)} s sharing contexts, ${plain.seconds.toFixed(1)} s scoring whole requests`,
  );
  const peak = await matmulPeak(threads);
  const items = names.length * ITEMS;
  console.log(
    `${names.length} tasks x ${ITEMS} documents (${items} items, ${requests} requests), 0 shots, pythia-160m shape (random weights), float32`,
  );

  const rows: (string | number)[][] = [
    [
      `pythia-ts, shared contexts, batch ${BATCH}`,
      shared.seconds.toFixed(1),
      (items / shared.seconds).toFixed(2),
      peak.toFixed(0),
      '',
    ],
    [
      `pythia-ts, whole requests, batch ${BATCH}`,
      plain.seconds.toFixed(1),
      (items / plain.seconds).toFixed(2),
      peak.toFixed(0),
      '',
    ],
  ];
  if (!lmEvalTasks) {
    console.log(`lm-eval baseline skipped: ${python} cannot import lm_eval (set PYTHIA_LM_EVAL)`);
  } else {
    const env = {
      ...process.env,
      HF_HOME: join(dir, 'hf-home'),
      HF_HUB_CACHE: cache,
      HF_DATASETS_CACHE: join(dir, 'hf-datasets'),
      HF_HUB_OFFLINE: '1',
      HF_DATASETS_OFFLINE: '1',
      TRANSFORMERS_OFFLINE: '1',
      OMP_NUM_THREADS: String(threads),
      TOKENIZERS_PARALLELISM: 'false',
    };
    const script = join(process.cwd(), 'bench', 'harness_lm_eval.py');
    const r = spawnSync(python, [script, checkpoint, includeDir, String(threads), names.join(','), LM_EVAL_BATCHES], {
      encoding: 'utf8',
      env,
      timeout: 3_600_000,
      maxBuffer: 256 << 20,
    });
    const line = r.stdout
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .pop();
    if (!line) throw new Error(`bench/harness_lm_eval.py failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    const base = JSON.parse(line) as {
      runs: { batch: number; seconds: number; metrics: Record<string, Record<string, number>> }[];
      torch: string;
      matmul_gflops: number;
    };
    for (const run of base.runs)
      rows.push([
        `lm-eval 0.4 (hf, torch ${base.torch}), batch ${run.batch}`,
        run.seconds.toFixed(1),
        (items / run.seconds).toFixed(2),
        base.matmul_gflops.toFixed(0),
        '',
      ]);
    const fastest = Math.min(...base.runs.map((run) => run.seconds));
    rows[0]![4] = `${(fastest / shared.seconds).toFixed(2)}x`;
    rows[1]![4] = `${(fastest / plain.seconds).toFixed(2)}x`;
    const differing = base.runs.flatMap((run) =>
      names.flatMap((task) =>
        Object.entries(run.metrics[task] ?? {})
          .filter(([metric, value]) => shared.metrics[task]?.[metric] !== value)
          .map(
            ([metric, value]) =>
              `${task} ${metric} at batch ${run.batch}: ours ${shared.metrics[task]?.[metric]}, lm-eval ${value}`,
          ),
      ),
    );
    console.log(
      differing.length === 0
        ? "same numbers: every acc and acc_norm equals lm-eval's"
        : `DIFFERENT numbers: ${differing.join('; ')}`,
    );
  }
  const same = names.every((t) => JSON.stringify(shared.metrics[t]) === JSON.stringify(plain.metrics[t]));
  console.log(
    same
      ? 'shared contexts give the same acc and acc_norm as whole requests'
      : 'DIFFERENT acc between shared and whole requests',
  );
  console.log(table(['evaluator', 'seconds', 'items/s', 'fp32 matmul peak GFLOP/s', 'vs lm-eval fastest'], rows));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
