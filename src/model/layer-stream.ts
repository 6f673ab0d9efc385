/**
 * A checkpoint read one stage at a time instead of whole: the embedding, each layer, then the final
 * LayerNorm and the LM head. A stage's tensors are read from the files that hold them (only those
 * bytes), widened to float32 into one reused buffer, and checked finite; the next stage's bytes are
 * read (asynchronously, safetensors) while the caller computes with this one.
 */
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import {
  bf16ToF32,
  f16ToF32,
  openCheckpointWeights,
  STORED_DTYPE_SIZE,
  type StoredDType,
  type TensorSource,
} from '../formats/index.js';
import { bytesToFloat32 } from '../formats/tensor-file.js';
import type { HostTensor } from '../runtime/session.js';
import { FormatError } from '../util/errors.js';
import { checkFinite, readConfig, type StoredParameter, storedParameters, tokenizerOf } from './checkpoint.js';
import { type NeoXConfig, parameterShapes } from './config.js';
import type { Params } from './params.js';

/** One stage's weights by parameter name: views into the stream's reused buffer, valid until the next stage. */
export type StageWeights = Map<string, Float32Array>;

interface StagedTensor {
  param: StoredParameter;
  values: number;
  bytes: number;
}

/** Stage names: `embed`, `layer.<i>`, `head`. */
export interface Stage {
  name: string;
  tensors: StagedTensor[];
}

/** Bytes a stage's reads are placed at, so every typed view of them is aligned. */
const ALIGN = 8;
const aligned = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;
/** Bytes one read asks for at most (a read takes at most 2^31 − 1). */
const MAX_READ = 1 << 30;

function stageOf(name: string): string {
  const m = /^gpt_neox\.layers\.(\d+)\./.exec(name);
  if (m) return `layer.${m[1]}`;
  return name === 'gpt_neox.embed_in.weight' ? 'embed' : 'head';
}

export class LayerStream {
  readonly stages: Stage[];
  private readonly byName: Map<string, StoredParameter>;
  private readonly handles = new Map<string, Promise<FileHandle>>();
  private readonly staging: Uint8Array;
  private readonly values: Float32Array;
  private closed = false;
  /** Settles when the pass in progress ends: passes share the buffers, so they run one after another. */
  private idle: Promise<void> = Promise.resolve();
  /** Passes begun over the checkpoint: each reads every stage's bytes once. */
  private passes = 0;

  private constructor(
    readonly dir: string,
    readonly config: NeoXConfig,
    private readonly source: TensorSource,
    params: StoredParameter[],
  ) {
    this.byName = new Map(params.map((p) => [p.name, p]));
    const shapes = new Map(parameterShapes(config).map((p) => [p.name, p.shape]));
    const stages = new Map<string, Stage>();
    const order = ['embed', ...Array.from({ length: config.numLayers }, (_, i) => `layer.${i}`), 'head'];
    for (const name of order) stages.set(name, { name, tensors: [] });
    for (const { name } of parameterShapes(config)) {
      const param = this.byName.get(name)!;
      const values = shapes.get(name)!.reduce((a, d) => a * d, 1);
      stages.get(stageOf(name))!.tensors.push({ param, values, bytes: values * STORED_DTYPE_SIZE[param.dtype] });
    }
    // Tied embeddings: the head reads the embedding again.
    if (config.tieWordEmbeddings) stages.get('head')!.tensors.push(stages.get('embed')!.tensors[0]!);
    this.stages = [...stages.values()];
    const most = (f: (t: StagedTensor) => number): number =>
      Math.max(...this.stages.map((s) => s.tensors.reduce((a, t) => a + aligned(f(t)), 0)));
    this.staging = new Uint8Array(most((t) => t.bytes));
    this.values = new Float32Array(most((t) => 4 * t.values) / 4);
  }

  /** Opens a checkpoint folder for streaming: its config and tensor list are checked, no weight is read. */
  static open(dir: string): LayerStream {
    const config = readConfig(dir);
    const source = openCheckpointWeights(dir);
    try {
      return new LayerStream(dir, config, source, storedParameters(source, config, dir));
    } catch (e) {
      source.close();
      throw e;
    }
  }

  get tokenizerPath(): string | undefined {
    return tokenizerOf(this.dir);
  }

  /** The stored dtype of each parameter, as found on disk. */
  get storedDTypes(): Map<string, StoredDType> {
    return new Map([...this.byName].map(([name, p]) => [name, p.dtype]));
  }

  /** How many passes over the checkpoint have begun (each reads all its weights once). */
  get passCount(): number {
    return this.passes;
  }

  /** Bytes the stream holds while it runs: the float32 buffer of the largest stage and the bytes read for the next. */
  get bufferBytes(): number {
    return this.values.byteLength + this.staging.byteLength;
  }

  /**
   * Every stage in order, each stage's weights valid until the next is asked for; the next stage's
   * bytes are read while the caller works on the current one. A pass begun while another is under
   * way waits for it to end (both would fill the same buffers).
   */
  async *pass(): AsyncGenerator<{ stage: Stage; weights: StageWeights }> {
    const previous = this.idle;
    let done = (): void => {};
    this.idle = new Promise((resolve) => {
      done = resolve;
    });
    await previous;
    this.passes++;
    let pending: Promise<Uint8Array[]> | undefined;
    try {
      if (this.closed) throw new FormatError(this.dir, 'the checkpoint stream is closed');
      pending = this.read(this.stages[0]!);
      for (let s = 0; s < this.stages.length; s++) {
        const stage = this.stages[s]!;
        const raw = await pending!;
        pending = undefined;
        const weights = this.widen(stage, raw);
        if (s + 1 < this.stages.length) pending = this.read(this.stages[s + 1]!);
        yield { stage, weights };
      }
    } finally {
      await pending?.catch(() => undefined);
      done();
    }
  }

  /** A stage's stored bytes, into the staging buffer where the format allows positioned reads. */
  private async read(stage: Stage): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    let at = 0;
    const reads: Promise<void>[] = [];
    for (const { param, bytes } of stage.tensors) {
      const where = this.source.locate?.(param.stored);
      if (!where) {
        out.push(this.source.readRaw(param.stored).data);
        continue;
      }
      const into = this.staging.subarray(at, at + bytes);
      at += aligned(bytes);
      out.push(into);
      reads.push(this.readAt(where.path, into, where.offset, param.stored));
    }
    await Promise.all(reads);
    return out;
  }

  private async readAt(path: string, into: Uint8Array, offset: number, name: string): Promise<void> {
    let handle = this.handles.get(path);
    if (!handle) {
      handle = open(path, 'r');
      this.handles.set(path, handle);
    }
    const file = await handle.catch((e: NodeJS.ErrnoException) => {
      throw new FormatError(path, `cannot open: ${e.code ?? String(e)}`);
    });
    let done = 0;
    while (done < into.byteLength) {
      const length = Math.min(into.byteLength - done, MAX_READ);
      const { bytesRead } = await file.read(into, done, length, offset + done);
      if (bytesRead === 0)
        throw new FormatError(
          path,
          `tensor ${name} needs bytes up to ${offset + into.byteLength}: the file ends before`,
        );
      done += bytesRead;
    }
  }

  /** Widens a stage's bytes to float32 in the reused buffer and checks them finite. */
  private widen(stage: Stage, raw: Uint8Array[]): StageWeights {
    const weights: StageWeights = new Map();
    let at = 0;
    stage.tensors.forEach(({ param, values }, i) => {
      const bytes = raw[i]!;
      const dst = this.values.subarray(at, at + values);
      at += aligned(4 * values) / 4;
      const half = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 1);
      if (param.dtype === 'F16') f16ToF32(half, dst);
      else if (param.dtype === 'BF16') bf16ToF32(half, dst);
      else dst.set(bytesToFloat32(this.source.file, param.stored, param.dtype, bytes));
      checkFinite(this.source.file, param.stored, dst);
      weights.set(param.name, dst);
    });
    return weights;
  }

  /**
   * Parameters read whole into arrays of their own (not the stream's buffer), checked finite: the
   * few a computation needs beside the stream, such as the lens's final LayerNorm and unembedding.
   */
  readParams(names: readonly string[]): Params {
    const params: Params = new Map();
    for (const name of names) {
      const param = this.byName.get(name);
      if (!param) throw new FormatError(this.source.file, `missing tensor ${name}`);
      const values = this.source.readFloat32(param.stored);
      checkFinite(this.source.file, param.stored, values);
      params.set(name, values);
    }
    return params;
  }

  /** The final LayerNorm's and the unembedding's parameters: what the lenses read beside the activations. */
  readHeadParams(): Params {
    const unembed = this.config.tieWordEmbeddings ? 'gpt_neox.embed_in.weight' : 'embed_out.weight';
    return this.readParams(['gpt_neox.final_layer_norm.weight', 'gpt_neox.final_layer_norm.bias', unembed]);
  }

  /** Closes the checkpoint's files. */
  async close(): Promise<void> {
    this.closed = true;
    this.source.close();
    const handles = [...this.handles.values()];
    this.handles.clear();
    for (const h of handles) await (await h.catch(() => undefined))?.close();
  }
}

/** The embedding of ids [batch·seq]: each token's row of `table` [vocab, H], copied (what the graph's Gather does). */
export function embed(table: Float32Array, ids: BigInt64Array, H: number): Float32Array {
  const out = new Float32Array(ids.length * H);
  ids.forEach((id, i) => {
    const row = Number(id);
    out.set(table.subarray(row * H, (row + 1) * H), i * H);
  });
  return out;
}

/**
 * A stage's weights as feeds of the streamed graphs: a layer's under layer 0's names (the one block
 * graph serves every layer), the head's under their own.
 */
export function stageFeeds(config: NeoXConfig, weights: StageWeights): Record<string, HostTensor> {
  const shapes = shapesOf(config);
  const feeds: Record<string, HostTensor> = {};
  for (const [name, data] of weights) {
    const fed = name.replace(/^gpt_neox\.layers\.\d+\./, 'gpt_neox.layers.0.');
    feeds[fed] = { data, dims: shapes.get(name)! };
  }
  return feeds;
}

const shapeCache = new WeakMap<NeoXConfig, Map<string, number[]>>();

function shapesOf(config: NeoXConfig): Map<string, number[]> {
  let shapes = shapeCache.get(config);
  if (!shapes) {
    shapes = new Map(parameterShapes(config).map((p) => [p.name, p.shape]));
    shapeCache.set(config, shapes);
  }
  return shapes;
}
