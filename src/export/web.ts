/**
 * `pythia export web`: a static folder that runs checkpoints in a browser. Each checkpoint is
 * exported as for transformers.js under `models/<id>/`; the page (web-page.ts) loads them with
 * onnxruntime-web's WebAssembly build, whose files are copied from node_modules along with
 * @huggingface/tokenizers and our seeded generator, so nothing is fetched from the network.
 * Browsers load modules and WebAssembly only over HTTP, so the folder is served, not opened.
 */

import { existsSync } from 'node:fs';
import { copyFile, mkdir, rename } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCheckpoint, readConfig } from '../model/checkpoint.js';
import { countParameters, headDim } from '../model/config.js';
import { ATTENTION_VIEWER_CSS, ATTENTION_VIEWER_JS } from '../report/attention-viewer.js';
import { ATTENTION_MAX_TOKENS } from '../results/attention-study.js';
import { tempPathFor, writeFileAtomic } from '../util/atomic.js';
import { ConfigError, FormatError } from '../util/errors.js';
import { writeAttentionModel } from './attention-model.js';
import type { ExportDType } from './onnx-model.js';
import { DTYPE_SUFFIX, exportOnnx } from './transformers-js.js';
import { APP_JS, INDEX_HTML, STYLE_CSS } from './web-page.js';

export interface WebExportOptions {
  dtype?: ExportDType;
  /** tokenizer.json for checkpoints that carry none. */
  tokenizerPath?: string;
  /** Also the attention graph (every head's pattern) for the page's attention viewer; default true. */
  attention?: boolean;
}

/** What the page reads from models.json for each checkpoint. */
export interface WebModelEntry {
  id: string;
  label: string;
  /** The attention viewer's size and step: the checkpoint's parent folder, and N of a `step<N>` folder (else null). */
  size: string;
  step: number | null;
  /** Folder of the export, relative to the page. */
  path: string;
  file: string;
  externalData?: string;
  dtype: ExportDType;
  /** The attention graph (attention-model.ts), relative to the export's folder, and the most tokens the viewer reads. */
  attention?: { file: string; externalData?: string; maxTokens: number };
  config: {
    vocabSize: number;
    hiddenSize: number;
    numLayers: number;
    numHeads: number;
    headDim: number;
    maxPositions: number;
    eosTokenId: number;
    parameters: number;
  };
}

/** Files the page needs from packages: [package, file in its dist folder]. */
const VENDOR: readonly [string, string][] = [
  ['onnxruntime-web', 'ort.wasm.min.mjs'],
  ['onnxruntime-web', 'ort-wasm-simd-threaded.wasm'],
  ['onnxruntime-web', 'ort-wasm-simd-threaded.mjs'],
  ['@huggingface/tokenizers', 'tokenizers.min.mjs'],
];

/** Our compiled modules the page imports, relative to dist/src. */
const LIB = ['util/prng.js', 'util/errors.js'];

/** A label from the checkpoint's last two path parts (`nano-100k/step64`). */
export function checkpointLabel(dir: string): string {
  const full = resolve(dir);
  const parent = basename(dirname(full));
  return parent ? `${parent}/${basename(full)}` : basename(full);
}

/** The attention viewer's size (the parent folder) and step (`step<N>`) of a checkpoint folder. */
export function checkpointPlace(dir: string): { size: string; step: number | null } {
  const full = resolve(dir);
  const step = /^step(\d+)$/.exec(basename(full));
  return { size: basename(dirname(full)) || basename(full), step: step ? Number(step[1]) : null };
}

function uniqueIds(labels: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return labels.map((label) => {
    const id = label.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+|-+$/g, '') || 'model';
    const n = (seen.get(id) ?? 0) + 1;
    seen.set(id, n);
    return n === 1 ? id : `${id}-${n}`;
  });
}

function packageDist(name: string): string {
  try {
    return dirname(createRequire(import.meta.url).resolve(name));
  } catch {
    throw new ConfigError(
      `pythia export web needs the npm package ${name} (a dependency of pythia-ts): reinstall with npm ci`,
    );
  }
}

async function copyAtomic(from: string, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true });
  const tmp = tempPathFor(to);
  await copyFile(from, tmp);
  await rename(tmp, to);
}

export async function exportWeb(
  checkpoints: readonly string[],
  out: string,
  options: WebExportOptions = {},
): Promise<WebModelEntry[]> {
  if (checkpoints.length === 0) throw new ConfigError('pythia export web: give at least one checkpoint folder');
  const dtype = options.dtype ?? 'fp32';
  for (const dir of checkpoints) {
    readConfig(dir);
    if (!options.tokenizerPath && !existsSync(join(dir, 'tokenizer.json'))) {
      throw new FormatError(
        dir,
        'no tokenizer.json: the page tokenises prompts with it; pass --tokenizer <tokenizer.json>',
      );
    }
  }
  for (const [name, file] of VENDOR) {
    const from = join(packageDist(name), file);
    if (!existsSync(from)) throw new ConfigError(`${from} is missing: reinstall ${name} with npm ci`);
    await copyAtomic(from, join(out, 'vendor', file));
  }
  const srcRoot = dirname(dirname(fileURLToPath(import.meta.url)));
  for (const file of LIB) await copyAtomic(join(srcRoot, file), join(out, 'lib', file));

  const labels = checkpoints.map(checkpointLabel);
  const ids = uniqueIds(labels);
  const entries: WebModelEntry[] = [];
  for (const [i, dir] of checkpoints.entries()) {
    const path = `models/${ids[i]}`;
    const own = join(dir, 'tokenizer.json');
    const tokenizerPath = existsSync(own) ? own : options.tokenizerPath;
    const result = await exportOnnx(dir, join(out, path), { dtype, tokenizerPath });
    const config = readConfig(dir);
    const file = `model${DTYPE_SUFFIX[dtype]}.onnx`;
    const external = result.files.includes(`onnx/${file}_data`);
    let attention: WebModelEntry['attention'];
    if (options.attention ?? true) {
      const attentionFile = `attention${DTYPE_SUFFIX[dtype]}.onnx`;
      const { params } = loadCheckpoint(dir);
      const written = await writeAttentionModel(join(out, path, 'onnx'), attentionFile, config, params, dtype);
      attention = {
        file: attentionFile,
        ...(written.length > 1 ? { externalData: written[1] } : {}),
        maxTokens: ATTENTION_MAX_TOKENS,
      };
    }
    entries.push({
      id: ids[i]!,
      label: labels[i]!,
      ...checkpointPlace(dir),
      path,
      file,
      ...(external ? { externalData: `${file}_data` } : {}),
      dtype,
      ...(attention ? { attention } : {}),
      config: {
        vocabSize: config.vocabSize,
        hiddenSize: config.hiddenSize,
        numLayers: config.numLayers,
        numHeads: config.numHeads,
        headDim: headDim(config),
        maxPositions: config.maxPositions,
        eosTokenId: config.eosTokenId,
        parameters: countParameters(config).total,
      },
    });
  }
  await writeFileAtomic(join(out, 'models.json'), `${JSON.stringify(entries, null, 2)}\n`);
  await writeFileAtomic(join(out, 'index.html'), INDEX_HTML);
  await writeFileAtomic(join(out, 'style.css'), STYLE_CSS + ATTENTION_VIEWER_CSS);
  await writeFileAtomic(join(out, 'app.js'), APP_JS);
  await writeFileAtomic(join(out, 'attention-viewer.js'), ATTENTION_VIEWER_JS);
  return entries;
}
