/**
 * A checkpoint folder's weights, however they are stored: model.safetensors,
 * model.safetensors.index.json (sharded), pytorch_model.bin or pytorch_model.bin.index.json.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { FormatError } from '../util/errors.js';
import { openSafetensors } from './safetensors.js';
import { isJsonObject, JsonSyntaxError, type JsonValue, parseStrictJson } from './strict-json.js';
import type { StoredDType, TensorInfo, TensorLocation, TensorSource } from './tensor-file.js';
import { openTorchCheckpoint } from './torch-zip.js';

const LAYOUTS: { file: string; open: (path: string) => TensorSource }[] = [
  { file: 'model.safetensors', open: openSafetensors },
  { file: 'model.safetensors.index.json', open: (p) => openShardedCheckpoint(p, openSafetensors) },
  { file: 'pytorch_model.bin', open: openTorchCheckpoint },
  { file: 'pytorch_model.bin.index.json', open: (p) => openShardedCheckpoint(p, openTorchCheckpoint) },
];

/** Opens a checkpoint folder's weights; a weights file given directly is opened by its name. */
export function openCheckpointWeights(folder: string): TensorSource {
  if (!existsSync(folder)) throw new FormatError(folder, 'no such checkpoint folder or file');
  if (statSync(folder).isFile()) return openWeightsFile(folder);
  for (const layout of LAYOUTS) {
    const path = join(folder, layout.file);
    if (existsSync(path)) return layout.open(path);
  }
  throw new FormatError(folder, `no weights found: expected one of ${LAYOUTS.map((l) => l.file).join(', ')}`);
}

/** The files `openCheckpointWeights(folder)` reads: the weights file, or a shard index and every shard it names. */
export function checkpointWeightFiles(folder: string): string[] {
  const layout = LAYOUTS.find((l) => existsSync(join(folder, l.file)));
  if (!layout)
    throw new FormatError(folder, `no weights found: expected one of ${LAYOUTS.map((l) => l.file).join(', ')}`);
  const path = join(folder, layout.file);
  if (!path.endsWith('.index.json')) return [path];
  return [path, ...[...new Set(readWeightMap(path).values())].sort().map((f) => join(folder, f))];
}

function openWeightsFile(path: string): TensorSource {
  if (path.endsWith('.safetensors.index.json')) return openShardedCheckpoint(path, openSafetensors);
  if (path.endsWith('.bin.index.json')) return openShardedCheckpoint(path, openTorchCheckpoint);
  if (path.endsWith('.safetensors')) return openSafetensors(path);
  if (path.endsWith('.bin') || path.endsWith('.pt') || path.endsWith('.pth')) return openTorchCheckpoint(path);
  throw new FormatError(path, 'unknown weights file type: expected .safetensors, .bin/.pt/.pth or a shard index .json');
}

/** Reads an HF shard index ({"weight_map": {tensor name: shard file}}) and opens every shard it names. */
export function openShardedCheckpoint(indexPath: string, openShard: (path: string) => TensorSource): TensorSource {
  const weightMap = readWeightMap(indexPath);
  const shards = new Map<string, TensorSource>();
  try {
    for (const shardFile of new Set(weightMap.values())) {
      shards.set(shardFile, openShard(join(indexPath, '..', shardFile)));
    }
    return new ShardedSource(indexPath, weightMap, shards);
  } catch (e) {
    for (const s of shards.values()) s.close();
    throw e;
  }
}

function readWeightMap(indexPath: string): Map<string, string> {
  let json: JsonValue = null;
  try {
    json = parseStrictJson(readFileSync(indexPath, 'utf8'));
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw new FormatError(indexPath, `cannot read: ${(e as Error).message}`);
    throw new FormatError(indexPath, `not valid JSON: ${e.message}`);
  }
  const map = isJsonObject(json) ? json.weight_map : undefined;
  if (!isJsonObject(map))
    throw new FormatError(indexPath, 'weight_map is missing or not an object of tensor name → file name');
  const out = new Map<string, string>();
  for (const [name, file] of Object.entries(map)) {
    if (
      typeof file !== 'string' ||
      file === '' ||
      file !== basename(file) ||
      file === '.' ||
      file === '..' ||
      file.includes('\\')
    ) {
      throw new FormatError(
        indexPath,
        `weight_map[${JSON.stringify(name)}] is ${JSON.stringify(file)}, expected a file name in the same folder`,
      );
    }
    out.set(name, file);
  }
  return out;
}

class ShardedSource implements TensorSource {
  private readonly owner = new Map<string, TensorSource>();
  private readonly infos: TensorInfo[] = [];

  constructor(
    readonly file: string,
    weightMap: Map<string, string>,
    private readonly shards: Map<string, TensorSource>,
  ) {
    for (const shard of shards.values()) {
      for (const info of shard.list()) {
        const other = this.owner.get(info.name);
        if (other) throw new FormatError(file, `tensor ${info.name} is stored in both ${other.file} and ${shard.file}`);
        this.owner.set(info.name, shard);
        this.infos.push(info);
      }
    }
    for (const [name, shardFile] of weightMap) {
      const shard = shards.get(shardFile)!;
      if (this.owner.get(name) !== shard)
        throw new FormatError(file, `weight_map puts ${name} in ${shardFile}, which does not hold it`);
    }
  }

  list(): TensorInfo[] {
    return this.infos.map((t) => ({ ...t, shape: [...t.shape] }));
  }

  private shardOf(name: string): TensorSource {
    const shard = this.owner.get(name);
    if (!shard) throw new FormatError(this.file, `no tensor named ${JSON.stringify(name)}`);
    return shard;
  }

  readFloat32(name: string): Float32Array {
    return this.shardOf(name).readFloat32(name);
  }

  readRaw(name: string): { dtype: StoredDType; shape: number[]; data: Uint8Array } {
    return this.shardOf(name).readRaw(name);
  }

  locate(name: string): TensorLocation | undefined {
    return this.shardOf(name).locate?.(name);
  }

  close(): void {
    for (const s of this.shards.values()) s.close();
  }
}
