import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fixtureDir, repoRoot } from '../support/paths.js';

const cli = join(repoRoot, 'dist/src/cli/main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
const model = join(fixtureDir('parallel-r25'), 'model');
const work = mkdtempSync(join(tmpdir(), 'pythia-export-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('pythia export onnx writes both dtypes side by side and lists the files', () => {
  const out = join(work, 'both');
  const fp32 = run('export', 'onnx', model, '--out', out);
  assert.equal(fp32.status, 0, fp32.stderr);
  const fp16 = run('export', 'onnx', model, '--out', out, '--dtype', 'fp16', '--external-data');
  assert.equal(fp16.status, 0, fp16.stderr);
  assert.deepEqual(
    fp16.stdout.trim().split('\n'),
    ['onnx/model_fp16.onnx', 'onnx/model_fp16.onnx_data', 'config.json', 'generation_config.json'].map((f) =>
      join(out, f),
    ),
  );
  assert.match(fp16.stderr, /has no tokenizer\.json: none exported \(pass --tokenizer\)/);
  assert.ok(existsSync(join(out, 'onnx', 'model.onnx')), 'the fp32 model stays');
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(config.model_type, 'gpt_neox');
  assert.deepEqual(config['transformers.js_config'], {
    dtype: 'fp16',
    use_external_data_format: { 'model_fp16.onnx': 1 },
  });
});

test('bad input gets one line naming the problem', () => {
  const cases: [string[], RegExp][] = [
    [
      ['export', 'onnx', model, '--out', join(work, 'x'), '--dtype', 'bf16'],
      /^pythia: --dtype: expected fp32 or fp16, got "bf16"\n$/,
    ],
    [
      ['export', 'onnx', join(work, 'missing'), '--out', join(work, 'x')],
      /^pythia: .*missing: no such checkpoint folder, and not a Hugging Face model id \(org\/name or org\/name@revision\)\n$/,
    ],
    [
      ['export', 'web', model, '--out', join(work, 'page')],
      /^pythia: .*model: no tokenizer\.json: the page tokenises prompts with it; pass --tokenizer <tokenizer\.json>\n$/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = run(...args);
    assert.equal(r.status, 1, args.join(' '));
    assert.match(r.stderr, message);
  }
});
