/**
 * The built-in tasks' numbers are lm-evaluation-harness's own: a small random GPT-NeoX checkpoint
 * (with a byte-level BPE tokenizer and the tokenizer_config.json lm-eval's HFLM reads) is evaluated
 * on the nine tasks by `lm_eval --model hf` (float32, CPU, --log_samples) and by `pythia eval`, at
 * 0 and 3 shots, on the golden documents written in each repository's real schema as the hub's
 * parquet conversion in a hub cache. Per document and in aggregate, acc and acc_norm are equal;
 * log-likelihoods and perplexities agree within 1e-4 relative; word and byte counts are equal.
 *
 * Needs a Python with lm-eval, named by PYTHIA_LM_EVAL; skipped without one (CI installs none).
 * Made with lm-eval 0.4.13 (the package mirror's; the nine tasks' files are 0.4.12's but for
 * wsc273's dataset_path) on torch 2.13 and transformers 5.18:
 *
 *     python3 -m venv /tmp/lmeval && /tmp/lmeval/bin/pip install torch transformers
 *     /tmp/lmeval/bin/pip install --no-deps lm-eval
 *     /tmp/lmeval/bin/pip install datasets sacrebleu accelerate
 *     PYTHIA_LM_EVAL=/tmp/lmeval/bin/python node --test dist/test/interop/lm-eval.test.js
 *
 * `datasets` offline cannot read a repository from the hub cache (offline it only reuses its own
 * Arrow cache), so lm-eval is pointed at the same parquet files through task configs under
 * --include_path that include lm-eval's own and override only where the data is:
 * `dataset_path: parquet`, `dataset_name: null`, `dataset_kwargs.data_files` the snapshot's files
 * per split. `pythia eval` reads the same cache with --cache-dir. lm-eval runs through
 * test/interop/lm_eval_run.py, its own command line with the summary table printed as JSON where
 * pytablewriter (not on the package mirror) is missing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { commit, HubCacheWriter, SCHEMAS } from '../../bench/common-hub-cache.js';
import { EOD_TOKEN } from '../../src/data/tokenizer.js';
import { ResultsStore } from '../../src/results/store.js';
import { golden } from '../eval/lm-eval-golden.js';
import { makeWorld, writeCheckpoint } from '../eval/support.js';
import { repoRoot } from '../support/paths.js';

const python = process.env.PYTHIA_LM_EVAL;
const skip = python ? false : 'set PYTHIA_LM_EVAL to a Python with lm-eval to run (see this file for the install)';

/** Each task: its repository and config as the hub's parquet conversion names them, its schema, and its config in lm_eval/tasks/. */
const TASKS: Record<string, { repo: string; config: string; schema: string; yaml: string }> = {
  arc_challenge: { repo: 'allenai/ai2_arc', config: 'ARC-Challenge', schema: 'arc', yaml: 'arc/arc_challenge.yaml' },
  arc_easy: { repo: 'allenai/ai2_arc', config: 'ARC-Easy', schema: 'arc', yaml: 'arc/arc_easy.yaml' },
  lambada_openai: {
    repo: 'EleutherAI/lambada_openai',
    config: 'default',
    schema: 'lambada_openai',
    yaml: 'lambada/lambada_openai.yaml',
  },
  logiqa: { repo: 'EleutherAI/logiqa', config: 'logiqa', schema: 'logiqa', yaml: 'logiqa/logiqa.yaml' },
  piqa: { repo: 'baber/piqa', config: 'default', schema: 'piqa', yaml: 'piqa/piqa.yaml' },
  sciq: { repo: 'allenai/sciq', config: 'default', schema: 'sciq', yaml: 'sciq/sciq.yaml' },
  wikitext: {
    repo: 'EleutherAI/wikitext_document_level',
    config: 'wikitext-2-raw-v1',
    schema: 'wikitext',
    yaml: 'wikitext/wikitext.yaml',
  },
  winogrande: {
    repo: 'allenai/winogrande',
    config: 'winogrande_xl',
    schema: 'winogrande',
    yaml: 'winogrande/default.yaml',
  },
  wsc273: { repo: 'lighteval/winograd_wsc', config: 'wsc273', schema: 'wsc273', yaml: 'wsc273/default.yaml' },
};
const ALL = Object.keys(TASKS);
/** WikiText takes no demonstrations. */
const FEWSHOT = ALL.filter((t) => t !== 'wikitext');
const SHOTS = [0, 3];
/** Short enough that 3-shot prompts and WikiText pages are cut into windows. */
const MAX_POSITIONS = 128;
const RELATIVE = 1e-4;

interface Sample {
  doc_id: number;
  filtered_resps: unknown[];
  [metric: string]: unknown;
}

interface LmEvalRun {
  results: Record<string, Record<string, unknown>>;
  samples: Record<string, Sample[]>;
}

type Row = Record<string, unknown>;

const dir = python ? mkdtempSync(join(tmpdir(), 'pythia-lm-eval-')) : '';
const lmEval = new Map<number, LmEvalRun>();
const ours = new Map<number, { items: Row[]; aggregates: Row[] }>();

function tail(text: string): string {
  return text.trim().split('\n').slice(-15).join('\n');
}

function filesUnder(folder: string): string[] {
  return readdirSync(folder, { recursive: true, encoding: 'utf8' }).map((f) => join(folder, f));
}

function runLmEval(checkpoint: string, includeDir: string, cache: string, tasks: string[], shots: number): LmEvalRun {
  const out = join(dir, `lm-eval-${shots}`);
  const args = [join(repoRoot, 'test/interop/lm_eval_run.py'), '--model', 'hf'];
  args.push('--model_args', `pretrained=${checkpoint},dtype=float32`);
  args.push('--tasks', tasks.join(','), '--num_fewshot', String(shots), '--include_path', includeDir);
  args.push('--batch_size', '1', '--device', 'cpu', '--log_samples', '--output_path', out);
  const env = {
    ...process.env,
    HF_HOME: join(dir, 'hf-home'),
    HF_HUB_CACHE: cache,
    HF_DATASETS_CACHE: join(dir, 'hf-datasets'),
    HF_HUB_OFFLINE: '1',
    HF_DATASETS_OFFLINE: '1',
    TRANSFORMERS_OFFLINE: '1',
    OMP_NUM_THREADS: '1',
    TOKENIZERS_PARALLELISM: 'false',
  };
  const r = spawnSync(python!, args, { encoding: 'utf8', env, maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, `lm_eval failed:\n${tail(r.stderr)}`);
  const files = filesUnder(out);
  const resultsFile = files.find((f) => /results_[^/]*\.json$/.test(f));
  assert.ok(resultsFile, `lm_eval wrote no results_*.json under ${out}`);
  const samples: Record<string, Sample[]> = {};
  for (const task of tasks) {
    const file = files.find((f) => new RegExp(`samples_${task}_[^/]*\\.jsonl$`).test(f));
    assert.ok(file, `lm_eval wrote no samples_${task}_*.jsonl under ${out}`);
    samples[task] = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Sample)
      .sort((a, b) => a.doc_id - b.doc_id);
  }
  return { results: JSON.parse(readFileSync(resultsFile, 'utf8')).results, samples };
}

async function runPythia(checkpoint: string, cache: string, tasks: string[], shots: number) {
  const db = join(dir, `pythia-${shots}.duckdb`);
  const cli = join(repoRoot, 'dist/src/cli/main.js');
  const args = [cli, 'eval', checkpoint, '--tasks', ...tasks, '--shots', String(shots), '--cache-dir', cache];
  args.push('--db', db, '--threads', '1');
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, HF_HUB_OFFLINE: '1' } });
  assert.equal(r.status, 0, `pythia eval failed:\n${tail(r.stderr)}`);
  const store = await ResultsStore.open(db, { readOnly: true });
  try {
    return {
      items: await store.rows(
        'SELECT task, item_id, acc, acc_norm, loglikelihood, words, bytes, choice_loglikelihoods FROM item_results',
      ),
      aggregates: await store.rows('SELECT task, metric, value, n FROM aggregates'),
    };
  } finally {
    store.close();
  }
}

before(async () => {
  if (!python) return;
  const world = await makeWorld(dir, MAX_POSITIONS);
  const checkpoint = join(dir, 'tiny');
  await writeCheckpoint(world, checkpoint, 7);
  // What a Pythia checkpoint's tokenizer_config.json says: <|endoftext|> begins and ends a text,
  // so lm-eval predicts a rolling window's first token from it, as we do.
  writeFileSync(
    join(checkpoint, 'tokenizer_config.json'),
    JSON.stringify({
      tokenizer_class: 'PreTrainedTokenizerFast',
      bos_token: EOD_TOKEN,
      eos_token: EOD_TOKEN,
      unk_token: EOD_TOKEN,
    }),
  );

  const found = spawnSync(python, ['-c', 'import lm_eval, os; print(os.path.dirname(lm_eval.__file__))'], {
    encoding: 'utf8',
  });
  assert.equal(found.status, 0, `${python} cannot import lm_eval:\n${tail(found.stderr)}`);
  const lmEvalTasks = join(found.stdout.trim(), 'tasks');

  const cache = join(dir, 'hub');
  const includeDir = join(dir, 'include');
  mkdirSync(includeDir, { recursive: true });
  const hub = await HubCacheWriter.open(cache, join(dir, 'staging'));
  try {
    // One commit per repository: ARC's two configs are one snapshot.
    const repos = [...new Set(Object.values(TASKS).map((t) => t.repo))];
    for (const [task, { repo, config, schema, yaml }] of Object.entries(TASKS)) {
      const splits = golden.docs[task]!;
      const snap = await hub.conversion(repo, config, splits, SCHEMAS[schema]!, commit(repos.indexOf(repo) + 1));
      const dataFiles = Object.fromEntries(
        Object.keys(splits).map((split) => [split, [join(snap, config, split, '0000.parquet')]]),
      );
      // JSON is YAML; lm-eval's loader resolves an absolute include as it is.
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

  for (const shots of SHOTS) {
    const tasks = shots === 0 ? ALL : FEWSHOT;
    lmEval.set(shots, runLmEval(checkpoint, includeDir, cache, tasks, shots));
    ours.set(shots, await runPythia(checkpoint, cache, tasks, shots));
  }
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function assertClose(actual: number, expected: number, label: string): void {
  assert.ok(
    Math.abs(actual - expected) <= RELATIVE * Math.max(1, Math.abs(expected)),
    `${label}: ours ${actual}, lm-eval ${expected}`,
  );
}

/** lm-eval writes a request's response as [loglikelihood, is_greedy], sometimes as strings. */
const loglikelihoodOf = (resp: unknown): number => Number((resp as unknown[])[0]);

function compareItems(task: string, shots: number): void {
  const samples = lmEval.get(shots)!.samples[task]!;
  const rows = ours.get(shots)!.items.filter((r) => r.task === task);
  assert.equal(rows.length, samples.length, `${task} ${shots}-shot: documents evaluated`);
  const byId = new Map(rows.map((r) => [String(r.item_id), r]));
  for (const s of samples) {
    const label = `${task} ${shots}-shot doc ${s.doc_id}`;
    const row = byId.get(String(s.doc_id));
    assert.ok(row, `${label}: not evaluated by pythia eval`);
    if (s.word_perplexity !== undefined) {
      const [ll, words] = s.word_perplexity as [number, number];
      const [, bytes] = s.byte_perplexity as [number, number];
      assertClose(row.loglikelihood as number, ll, `${label} loglikelihood`);
      assert.deepEqual([row.words, row.bytes], [words, bytes], `${label} words, bytes`);
      continue;
    }
    const lls = s.filtered_resps.map(loglikelihoodOf);
    const ourLls = (row.choice_loglikelihoods ?? [row.loglikelihood]) as number[];
    assert.equal(ourLls.length, lls.length, `${label}: requests`);
    for (const [i, ll] of lls.entries()) assertClose(ourLls[i]!, ll, `${label} request ${i} loglikelihood`);
    assert.equal(row.acc, Number(s.acc), `${label} acc`);
    if (s.acc_norm !== undefined) assert.equal(row.acc_norm, Number(s.acc_norm), `${label} acc_norm`);
  }
}

const EXACT = new Set(['acc', 'acc_norm']);

function compareAggregates(task: string, shots: number): void {
  const results = lmEval.get(shots)!.results[task]!;
  const rows = ours.get(shots)!.aggregates.filter((r) => r.task === task);
  const metrics = Object.keys(results)
    .filter((k) => k.endsWith(',none') && !k.includes('_stderr'))
    .map((k) => k.slice(0, -',none'.length));
  assert.deepEqual(rows.map((r) => r.metric).sort(), [...metrics].sort(), `${task} ${shots}-shot: metrics`);
  for (const metric of metrics) {
    const expected = Number(results[`${metric},none`]);
    const actual = rows.find((r) => r.metric === metric)!.value as number;
    const label = `${task} ${shots}-shot ${metric}`;
    if (EXACT.has(metric)) assert.equal(actual, expected, label);
    else
      assert.ok(
        Math.abs(actual - expected) <= RELATIVE * Math.abs(expected),
        `${label}: ours ${actual}, lm-eval ${expected}`,
      );
  }
}

describe('pythia eval gives lm-evaluation-harness numbers', () => {
  for (const shots of SHOTS) {
    for (const task of shots === 0 ? ALL : FEWSHOT) {
      test(`${task} at ${shots} shots: per document and in aggregate`, { skip }, () => {
        compareItems(task, shots);
        compareAggregates(task, shots);
      });
    }
  }
});
