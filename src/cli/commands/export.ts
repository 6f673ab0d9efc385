/** `pythia export neox-config`: GPT-NeoX v1.0 configs for a preset model or a whole suite. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadTokenizer } from '../../data/tokenizer.js';
import { neoxConfigYaml } from '../../train/neox-config.js';
import { modelPreset, SUITE_NAMES, suitePreset, withTokenizerVocab, type ModelPreset } from '../../train/recipes.js';
import { addTokenizerOption, tokenizerFlag } from '../arguments.js';
import { writeFileAtomic } from '../../util/atomic.js';

interface ExportOptions {
  preset: string;
  out: string;
  data?: string;
  tokenizer?: string;
  vocabFile?: string;
  save?: string;
}

export function registerExport(program: Command): void {
  const exp = program.command('export').description('write configurations for other engines');
  const neox = exp
    .command('neox-config')
    .description(
      'write GPT-NeoX v1.0 YAML configs (architecture, recipe, seed, checkpoint schedule, evaluation, data and tokenizer paths) ' +
        'so the same models train on a GPT-NeoX cluster; one <out>/<model>.yml per model',
    )
    .requiredOption('--preset <name>', `a model (70m ... 12b, pythia-70m, nano-100k, ...) or a suite (${SUITE_NAMES.join(', ')})`)
    .requiredOption('--out <dir>', 'folder for the .yml files')
    .option('--data <prefix>', 'dataset prefix for train/valid/test-data-paths (the cluster\'s path)');
  addTokenizerOption(neox, 'tokenizer path for vocab-file; when it exists here, its size sets the padded vocabulary')
    .option('--save <dir>', 'checkpoint folder for the configs\' save and load keys')
    .action(async (opts: ExportOptions) => {
      const tokenizerPath = tokenizerFlag(opts);
      const tokenizerVocab = tokenizerPath && existsSync(tokenizerPath) ? (await loadTokenizer(tokenizerPath)).vocabSize : undefined;
      const models: ModelPreset[] = (SUITE_NAMES as readonly string[]).includes(opts.preset) ? suitePreset(opts.preset).models : [modelPreset(opts.preset)];
      for (const model of models) {
        const preset = withTokenizerVocab(model, tokenizerVocab);
        const path = join(opts.out, `${preset.name}.yml`);
        const saveDir = opts.save ? join(opts.save, preset.name) : undefined;
        await writeFileAtomic(path, neoxConfigYaml(preset, { dataPrefix: opts.data, vocabFile: tokenizerPath, saveDir }));
        process.stdout.write(`${path}\n`);
      }
    });
}
