import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openSafetensors } from '../../src/formats/index.js';
import { fixtureDir, repoRoot } from '../support/paths.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
const model = join(fixtureDir('parallel-r25'), 'model');

test('pythia forward writes logits, hidden states, loss and gradients that match HF', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pythia-cli-'));
  const expected = openSafetensors(join(fixtureDir('parallel-r25'), 'expected.safetensors'));
  const raw = expected.readRaw('input_ids');
  const ids = Array.from(new BigInt64Array(raw.data.buffer, 0, raw.data.byteLength / 8), Number);
  const seq = raw.shape[1]!;
  writeFileSync(join(dir, 'tokens.json'), JSON.stringify([ids.slice(0, seq), ids.slice(seq)]));
  const r = run(
    'forward',
    model,
    '--tokens',
    join(dir, 'tokens.json'),
    '--out',
    join(dir, 'out.safetensors'),
    '--hidden-states',
    '--grads',
    '--loss',
    '--threads',
    '1',
  );
  assert.equal(r.status, 0, r.stderr);
  const out = openSafetensors(join(dir, 'out.safetensors'));
  assert.deepEqual(out.list().find((t) => t.name === 'logits')!.shape, [2, seq, 211]);
  assert.ok(Math.abs(out.readFloat32('loss')[0]! - expected.readFloat32('loss')[0]!) < 1e-5);
  assert.ok(out.list().some((t) => t.name === 'grad.gpt_neox.layers.1.attention.dense.weight'));
  // --hidden-states writes TransformerLens's names: HF's hidden_states[i] for every layer i.
  const hidden = out.list().filter((t) => t.name.includes('hook_resid_pre'));
  assert.deepEqual(
    hidden.map((t) => t.name),
    ['blocks.0.hook_resid_pre', 'blocks.1.hook_resid_pre'],
  );
  const hf = expected.readFloat32('hidden_states.1');
  const ours = out.readFloat32('blocks.1.hook_resid_pre');
  assert.ok(hf.every((v, i) => Math.abs(v - ours[i]!) < 1e-4));
});

test('pythia generate prints the prompt and its greedy continuation', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pythia-cli-'));
  const g = JSON.parse(readFileSync(join(fixtureDir('parallel-r25'), 'generate.json'), 'utf8'));
  writeFileSync(join(dir, 'p.json'), JSON.stringify([g.prompt]));
  const r = run('generate', model, '--tokens', join(dir, 'p.json'), '--max-new-tokens', String(g.max_new_tokens));
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), g.hf_generate);
});

test('bad token files get a one-line error naming the file and the problem', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pythia-cli-'));
  const cases: [string, RegExp][] = [
    ['[[1, 2], [3]]', /row 1 has 1 tokens but row 0 has 2/],
    ['[[1, 500]]', /token id 500 is outside the vocabulary \[0, 211\)/],
    ['{"a": 1}', /expected a non-empty JSON array of arrays/],
    ['[[1, -2]]', /expected a non-negative integer token id/],
    ['[[1, 2', /not valid JSON/],
  ];
  for (const [content, message] of cases) {
    const file = join(dir, 'bad.json');
    writeFileSync(file, content);
    const r = run('forward', model, '--tokens', file, '--out', join(dir, 'o.safetensors'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, message);
    assert.ok(
      r.stderr.startsWith(`pythia: ${file}`) || r.stderr.startsWith('pythia: tokens') || r.stderr.includes(file),
      r.stderr,
    );
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test('pythia inspect summarises a checkpoint', () => {
  const r = run('inspect', model, '--json');
  assert.equal(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.equal(info.parameters, 127104);
  assert.deepEqual(info.dtypes, ['F32']);
});
