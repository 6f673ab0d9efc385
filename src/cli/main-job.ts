/**
 * The main job (`npm start`): on the embedded default, generate the synthetic corpus if it is not
 * there yet, then train the nano suite on it. It runs the same `pythia` commands a user would
 * type, so each step can also be run (and resumed) by hand:
 *   pythia synth --out <out>/synth
 *   pythia suite --preset nano --data <out>/synth/data/corpus_text_document --tokenizer <out>/synth/tokenizer.json --out <out>/suite
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const out = process.argv[2] ?? 'runs/default';
const cli = fileURLToPath(new URL('./main.js', import.meta.url));

function pythia(...args: string[]): void {
  process.stderr.write(`\n$ pythia ${args.join(' ')}\n`);
  const r = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const synth = join(out, 'synth');
if (existsSync(join(synth, 'truth.json'))) process.stderr.write(`synthetic corpus: ${synth} (already there)\n`);
else pythia('synth', '--out', synth);
pythia(
  'suite', '--preset', 'nano',
  '--data', join(synth, 'data/corpus_text_document'),
  '--tokenizer', join(synth, 'tokenizer.json'),
  '--out', join(out, 'suite'),
);
