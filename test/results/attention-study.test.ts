/**
 * The attention study at one checkpoint: its rows are the named activation `hook_pattern` of the
 * text's tokens (lower triangle, each destination's weights summing to 1), its tokens decode back to
 * the text, a rerun is skipped, another text is stored beside it, and a long text is cut to 32 tokens.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { CheckpointRef } from '../../src/eval/checkpoints.js';
import type { EvalModel } from '../../src/eval/run-task.js';
import { ActivationRunner } from '../../src/model/activations.js';
import { ATTENTION_MAX_TOKENS, recordAttention } from '../../src/results/attention-study.js';
import type { StudyRuntime } from '../../src/results/case-studies.js';
import { ResultsStore } from '../../src/results/store.js';
import { type EvalWorld, makeWorld, randomParams, writeCheckpoint } from '../eval/support.js';
import { repoRoot } from '../support/paths.js';

/** Under 32 tokens with this world's small tokenizer (the default text is not). */
const TEXT = 'The cat sat on the mat. The cat sat on the mat.';
let dir: string;
let world: EvalWorld;
let model: EvalModel;
const ref: CheckpointRef = { model: 'tiny', step: 8, dir: '/nowhere', tokens: null };
const context: StudyRuntime = {
  runtime: { threads: 1 },
  device: 'cpu',
  checkpointSha256: 'c'.repeat(64),
  tokenizerSha256: 't'.repeat(64),
};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pythia-attention-'));
  world = await makeWorld(dir);
  model = { config: world.config, params: randomParams(world.config, 3), tokenizer: world.tokenizer };
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function withStore<T>(name: string, f: (store: ResultsStore) => Promise<T>): Promise<T> {
  const store = await ResultsStore.open(join(dir, name));
  try {
    return await f(store);
  } finally {
    store.close();
  }
}

test('the stored patterns are the text’s hook_pattern, causal and normalised, with its tokens', async () => {
  await withStore('one.duckdb', async (store) => {
    assert.equal(await recordAttention(store, ref, model, { attentionText: TEXT }, context), true);
    const ids = await world.tokenizer.encode(TEXT);
    assert.ok(ids.length <= ATTENTION_MAX_TOKENS, `${ids.length} tokens`);
    const tokens = await store.rows('SELECT position, token_id, text FROM attention_tokens ORDER BY position');
    assert.deepEqual(
      tokens.map((t) => Number(t.token_id)),
      ids,
    );
    assert.equal(tokens.map((t) => t.text).join(''), TEXT);

    const runner = new ActivationRunner(world.config, model.params, { threads: 1 });
    const { cache } = await runner.run(BigInt64Array.from(ids, BigInt), 1, { names: ['blocks.*.attn.hook_pattern'] });
    await runner.release();
    const rows = await store.rows(
      'SELECT layer, head, dest, src, weight FROM attention_patterns ORDER BY layer, head, dest, src',
    );
    const n = ids.length;
    const { numLayers, numHeads } = world.config;
    assert.equal(rows.length, (numLayers * numHeads * n * (n + 1)) / 2);
    const sums = new Map<string, number>();
    for (const r of rows) {
      const [layer, head, dest, src] = [r.layer, r.head, r.dest, r.src] as number[];
      assert.ok(src! <= dest!, 'only src ≤ dest is stored');
      const expected = cache.get(`blocks.${layer}.attn.hook_pattern`)!.data[(head! * n + dest!) * n + src!]!;
      assert.equal(r.weight, expected, `layer ${layer} head ${head} (${dest}, ${src})`);
      const k = `${layer}.${head}.${dest}`;
      sums.set(k, (sums.get(k) ?? 0) + (r.weight as number));
    }
    for (const [k, sum] of sums) assert.ok(Math.abs(sum - 1) < 1e-5, `${k}: weights sum to ${sum}`);
    const [study] = await store.rows("SELECT kind, settings, tokenizer_sha256 FROM studies WHERE kind = 'attention'");
    assert.deepEqual(JSON.parse(study!.settings as string), { text: TEXT });
    assert.equal(study!.tokenizer_sha256, context.tokenizerSha256);
  });
});

test('a rerun is skipped; another text or checkpoint is stored beside it; a long text keeps its first 32 tokens', async () => {
  await withStore('resume.duckdb', async (store) => {
    const settings = { attentionText: TEXT };
    const short = (await world.tokenizer.encode(TEXT)).length;
    assert.equal(await recordAttention(store, ref, model, settings, context), true);
    assert.equal(await recordAttention(store, ref, model, settings, context), false);
    const long = 'Paris is a city. Rome is a city. The river flows to the sea. '.repeat(4);
    assert.ok((await world.tokenizer.encode(long)).length > ATTENTION_MAX_TOKENS);
    assert.ok(short > 16 && short < ATTENTION_MAX_TOKENS, `${short} tokens`);
    assert.equal(await recordAttention(store, ref, model, { attentionText: long }, context), true);
    const other = { ...context, checkpointSha256: 'd'.repeat(64) };
    assert.equal(await recordAttention(store, ref, model, settings, other), true);
    const counts = await store.rows(
      `SELECT s.settings, count(*)::INTEGER AS tokens FROM attention_tokens t JOIN studies s USING (study)
       GROUP BY ALL ORDER BY tokens, s.settings`,
    );
    assert.deepEqual(
      counts.map((c) => [JSON.parse(c.settings as string).text, c.tokens]),
      [
        [long, ATTENTION_MAX_TOKENS],
        [TEXT, 2 * short],
      ],
    );
  });
});

test('a text of no tokens is refused in one line', async () => {
  await withStore('empty.duckdb', async (store) => {
    await assert.rejects(recordAttention(store, ref, model, { attentionText: '' }, context), /has no tokens/);
  });
});

test('pythia eval --attention --attention-text records the given text; a second run finds it there', async () => {
  const checkpoint = join(dir, 'cli', 'tiny', 'step4');
  await writeCheckpoint(world, checkpoint, 4);
  const tasks = join(dir, 'cli', 'task.jsonl');
  writeFileSync(
    tasks,
    `${JSON.stringify({ id: 'c1', output_type: 'multiple_choice', context: 'The cat sat on the', choices: ['mat', 'river'], gold: 0 })}\n`,
  );
  const db = join(dir, 'cli', 'results.duckdb');
  const args = [
    join(repoRoot, 'dist/src/cli/main.js'),
    'eval',
    checkpoint,
    '--tasks',
    tasks,
    '--threads',
    '1',
    '--db',
    db,
    '--attention',
    '--attention-text',
    'Paris is a city. Paris is a city.',
  ];
  for (let run = 0; run < 2; run++) {
    const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }
  const store = await ResultsStore.open(db, { readOnly: true });
  try {
    const studies = await store.rows('SELECT kind, model, step, settings FROM studies');
    assert.deepEqual(studies, [
      { kind: 'attention', model: 'tiny', step: 4, settings: '{"text":"Paris is a city. Paris is a city."}' },
    ]);
    const [{ text }] = (await store.rows(
      "SELECT string_agg(text, '' ORDER BY position) AS text FROM attention_tokens",
    )) as [{ text: string }];
    assert.equal(text, 'Paris is a city. Paris is a city.');
  } finally {
    store.close();
  }
});
