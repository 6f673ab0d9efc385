/**
 * `pythia export neox-config`: GPT-NeoX v1.0 configs for a preset model or a whole suite.
 * `pythia export onnx`, `pythia export web`: checkpoints for transformers.js and for a browser page.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadTokenizer } from '../../data/tokenizer.js';
import type { ExportDType } from '../../export/onnx-model.js';
import { exportOnnx } from '../../export/transformers-js.js';
import { exportWeb } from '../../export/web.js';
import { resolveCheckpoint } from '../../model/hub-cache.js';
import { neoxConfigYaml } from '../../train/neox-config.js';
import { type ModelPreset, modelPreset, SUITE_NAMES, suitePreset, withTokenizerVocab } from '../../train/recipes.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { addTokenizerOption, refusedMaxMemoryOption, refuseMaxMemory, tokenizerFlag } from '../arguments.js';
import { UserError } from '../errors.js';

interface ExportOptions {
  preset: string;
  out: string;
  data?: string;
  tokenizer?: string;
  vocabFile?: string;
  save?: string;
}

export function registerExport(program: Command): void {
  const exp = program.command('export').description('write configurations and models for other engines and clients');
  const neox = exp
    .command('neox-config')
    .description(
      'write GPT-NeoX v1.0 YAML configs (architecture, recipe, seed, checkpoint schedule, evaluation, data and tokenizer paths) ' +
        'so the same models train on a GPT-NeoX cluster; one <out>/<model>.yml per model',
    )
    .requiredOption(
      '--preset <name>',
      `a model (70m ... 12b, pythia-70m, pythia-70m-deduped, nano-100k, ...) or a suite (${SUITE_NAMES.join(', ')})`,
    )
    .requiredOption('--out <dir>', 'folder for the .yml files')
    .option('--data <prefix>', "dataset prefix for train/valid/test-data-paths (the cluster's path)");
  addTokenizerOption(neox, 'tokenizer path for vocab-file; when it exists here, its size sets the padded vocabulary')
    .option('--save <dir>', "checkpoint folder for the configs' save and load keys")
    .action(async (opts: ExportOptions) => {
      const tokenizerPath = tokenizerFlag(opts);
      const tokenizerVocab =
        tokenizerPath && existsSync(tokenizerPath) ? (await loadTokenizer(tokenizerPath)).vocabSize : undefined;
      const models: ModelPreset[] = (SUITE_NAMES as readonly string[]).includes(opts.preset)
        ? suitePreset(opts.preset).models
        : [modelPreset(opts.preset)];
      for (const model of models) {
        const preset = withTokenizerVocab(model, tokenizerVocab);
        const path = join(opts.out, `${preset.name}.yml`);
        const saveDir = opts.save ? join(opts.save, preset.name) : undefined;
        await writeFileAtomic(
          path,
          neoxConfigYaml(preset, { dataPrefix: opts.data, vocabFile: tokenizerPath, saveDir }),
        );
        process.stdout.write(`${path}\n`);
      }
    });
  registerModelExports(exp);
}

interface ModelExportOptions {
  out: string;
  dtype: string;
  tokenizer?: string;
  externalData?: boolean;
  /** `export web`: false with --no-attention. */
  attention?: boolean;
  /** Refused: exports cannot stream. */
  maxMemory?: number;
}

function exportDType(value: string): ExportDType {
  if (value === 'fp32' || value === 'fp16') return value;
  throw new UserError(`--dtype: expected fp32 or fp16, got ${JSON.stringify(value)}`);
}

const EXPORT_CANNOT_STREAM = 'export cannot stream: the exported model holds every weight at once';

/** `export onnx` and `export web`: checkpoints for transformers.js and for the browser page. */
function registerModelExports(exp: Command): void {
  exp
    .command('onnx')
    .description(
      'write a checkpoint in the layout transformers.js loads: config.json, generation_config.json, tokenizer.json, ' +
        'tokenizer_config.json and onnx/model.onnx (onnx/model_fp16.onnx with --dtype fp16) with a KV cache; ' +
        'weights over 1.9 GiB go to onnx/model[_fp16].onnx_data',
    )
    .argument(
      '<checkpoint>',
      'a Hugging Face GPT-NeoX checkpoint folder, or an id org/name@revision from the local hub cache',
    )
    .requiredOption('--out <dir>', 'folder to write (files of the other dtype already there are kept)')
    .option('--dtype <dtype>', 'fp32, or fp16 (float16 weights, float32 arithmetic)', 'fp32')
    .option('--tokenizer <file>', "tokenizer.json to ship (default: the checkpoint's own)")
    .option('--external-data', 'put the weights in onnx/model[_fp16].onnx_data whatever their size')
    .addOption(refusedMaxMemoryOption())
    .action(async (checkpoint: string, opts: ModelExportOptions) => {
      refuseMaxMemory(opts, EXPORT_CANNOT_STREAM);
      const result = await exportOnnx(resolveCheckpoint(checkpoint).dir, opts.out, {
        dtype: exportDType(opts.dtype),
        tokenizerPath: opts.tokenizer,
        externalData: opts.externalData,
      });
      for (const file of result.files) process.stdout.write(`${join(result.dir, file)}\n`);
      if (!result.tokenizer)
        process.stderr.write(`pythia: ${checkpoint} has no tokenizer.json: none exported (pass --tokenizer)\n`);
    });
  exp
    .command('web')
    .description(
      'write a static page that runs the checkpoints in a browser (onnxruntime-web, nothing fetched from the network): ' +
        'pick a checkpoint, type a prompt, see greedy and sampled continuations with per-token probabilities, ' +
        'compare two checkpoints; serve the folder over HTTP (python3 -m http.server --directory <out>)',
    )
    .argument(
      '<checkpoints...>',
      'checkpoint folders (steps of one model, or models of several sizes), or ids org/name@revision from the local hub cache',
    )
    .requiredOption('--out <dir>', 'folder for the page')
    .option('--dtype <dtype>', 'fp32, or fp16 (half the download, float32 arithmetic)', 'fp32')
    .option('--tokenizer <file>', 'tokenizer.json for checkpoints that carry none')
    .option(
      '--no-attention',
      "leave out the attention viewer's graphs (onnx/attention[_fp16].onnx, a second copy of each checkpoint's weights)",
    )
    .addOption(refusedMaxMemoryOption())
    .action(async (checkpoints: string[], opts: ModelExportOptions) => {
      refuseMaxMemory(opts, EXPORT_CANNOT_STREAM);
      const entries = await exportWeb(
        checkpoints.map((c) => resolveCheckpoint(c).dir),
        opts.out,
        { dtype: exportDType(opts.dtype), tokenizerPath: opts.tokenizer, attention: opts.attention },
      );
      for (const e of entries) process.stdout.write(`${join(opts.out, e.path)}\n`);
      process.stdout.write(`${join(opts.out, 'index.html')}\n`);
    });
}
