/**
 * GPT-NeoX's index-map cache: the three maps saved as .npy beside the data under GPT-NeoX's own
 * names, built when any is missing (as `_build_index_mappings` does) and otherwise reused. Loaded
 * maps are read with positioned reads of the entries a batch needs, so a batch of a Pythia-sized
 * order (gigabytes of maps) comes back in milliseconds.
 *
 * Beside them we keep `<base>_inputs.json`: a sha256 of the document sizes and the parameters the
 * maps were built from. It is written as "building" before the maps and "complete" after them; maps
 * whose record is incomplete or names other inputs (the data was tokenized again, say) are rebuilt.
 * Maps with no record (GPT-NeoX's own) are used as found, after the checks of openCachedMaps.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { RandomAccessFile } from '../formats/file-io.js';
import { readNpyHeader, writeNpy } from '../formats/npy.js';
import { parseJsonFile } from '../formats/strict-json.js';
import { writeFileAtomic } from '../util/atomic.js';
import { ConfigError, FormatError } from '../util/errors.js';
import { buildIndexMaps, type DocumentRange, type IndexMapFiles, indexMapFiles, planIndexMaps } from './index-maps.js';
import type { IndexArray, IndexMapArrays } from './sample-order.js';

export type IndexMapsPhase = 'doc_idx' | 'sample_idx' | 'shuffle_idx' | 'save';

export interface CachedIndexMapsOptions {
  /**
   * Tokens per item of the indexed dataset. Called only when the maps must be built: checking
   * cached maps needs only their shapes, so a cached order opens without reading all sizes.
   */
  loadSizes: () => Int32Array;
  /** Number of items in the indexed dataset. */
  items: number;
  /**
   * sha256 (hex) of the sizes of the documents in a range, as int32 little-endian bytes; by
   * default computed from `loadSizes`. A dataset can stream it from its index instead.
   */
  sizesSha256?: (documents: DocumentRange) => string;
  /** Defaults to every item. */
  documents?: DocumentRange;
  numSamples: number;
  seqLength: number;
  seed: number;
  /** GPT-NeoX's data_prefix: the files are `<cachePrefix>_<name>_indexmap_...npy`. */
  cachePrefix: string;
  /** "train_0" (train-data-paths, Pythia) or "train" (single data path with a split). */
  name: string;
  onPhase?: (phase: IndexMapsPhase) => void;
}

export interface CachedIndexMaps {
  maps: IndexMapArrays;
  files: IndexMapFiles;
  /** True when the maps were built (and saved) by this call. */
  built: boolean;
}

export async function loadOrBuildIndexMaps(options: CachedIndexMapsOptions): Promise<CachedIndexMaps> {
  const files = indexMapFiles(options.cachePrefix, options.name, options.numSamples, options.seqLength, options.seed);
  const documents = options.documents ?? { start: 0, stop: options.items };
  const sizesSha256 =
    options.sizesSha256 ??
    ((d: DocumentRange) =>
      createHash('sha256')
        .update(int32Bytes(options.loadSizes().subarray(d.start, d.stop)))
        .digest('hex'));
  const inputs: IndexMapInputs = {
    format: 'pythia-ts index-map inputs',
    name: options.name,
    numSamples: options.numSamples,
    seqLength: options.seqLength,
    seed: options.seed,
    documents: { start: documents.start, stop: documents.stop },
    sizesSha256: sizesSha256(documents),
    complete: true,
  };
  if (
    existsSync(files.docIdx) &&
    existsSync(files.sampleIdx) &&
    existsSync(files.shuffleIdx) &&
    recordAllowsReuse(files.inputs, inputs)
  ) {
    return { maps: openCachedMaps(files, documents.stop - documents.start), files, built: false };
  }
  const sizes = options.loadSizes();
  const plan = planIndexMaps({ ...options, sizes, documents });
  const budget = totalmem() * 0.75;
  if (plan.bytes > budget) {
    throw new ConfigError(
      `the index maps for ${options.numSamples} samples of ${options.seqLength} tokens need ${plan.numEpochs} epochs of this dataset ` +
        `and ${(plan.bytes / 2 ** 30).toFixed(1)} GiB of memory (this machine has ${(totalmem() / 2 ** 30).toFixed(1)} GiB): ` +
        'set --train-iters and --batch-size to what the dataset was meant for',
    );
  }
  const { docIdx, sampleIdx, shuffleIdx } = buildIndexMaps({ ...options, sizes, documents }, options.onPhase);
  options.onPhase?.('save');
  // The order GPT-NeoX saves them in; each file appears whole or not at all, and the record says
  // "complete" only once all three are in place.
  await writeFileAtomic(files.inputs, `${JSON.stringify({ ...inputs, complete: false }, null, 2)}\n`);
  await writeNpy(files.docIdx, { shape: [docIdx.length], data: docIdx });
  await writeNpy(files.sampleIdx, { shape: [sampleIdx.length / 2, 2], data: sampleIdx });
  await writeNpy(files.shuffleIdx, { shape: [shuffleIdx.length], data: shuffleIdx });
  await writeFileAtomic(files.inputs, `${JSON.stringify(inputs, null, 2)}\n`);
  return { maps: { docIdx, sampleIdx, shuffleIdx }, files, built: true };
}

/** What a set of maps was built from, as `<base>_inputs.json` holds it. */
interface IndexMapInputs {
  format: 'pythia-ts index-map inputs';
  name: string;
  numSamples: number;
  seqLength: number;
  seed: number;
  documents: DocumentRange;
  sizesSha256: string;
  /** False while the maps are being written. */
  complete: boolean;
}

function int32Bytes(a: Int32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** No record: maps from elsewhere (GPT-NeoX), used as found. A record: it must be complete and match. */
function recordAllowsReuse(path: string, wanted: IndexMapInputs): boolean {
  if (!existsSync(path)) return true;
  try {
    const found = parseJsonFile(readFileSync(path, 'utf8')) as Record<string, unknown>;
    return JSON.stringify(found) === JSON.stringify(wanted);
  } catch {
    return false;
  }
}

/**
 * Opens cached maps after checking their dtypes and that their shapes fit together: doc_idx whole
 * epochs of the documents, sample_idx [S+1, 2], shuffle_idx [S]. Maps that fit but come from other
 * data show up when a sample does not add up to seq_length+1 tokens.
 */
function openCachedMaps(files: IndexMapFiles, documentsPerEpoch: number): IndexMapArrays {
  const arrays: NpyIndexArray[] = [];
  try {
    const docIdx = NpyIndexArray.open(files.docIdx, ['<i4'], 1);
    arrays.push(docIdx);
    if (docIdx.length % documentsPerEpoch !== 0) {
      throw new FormatError(
        files.docIdx,
        `${docIdx.length} entries are not whole epochs of ${documentsPerEpoch} documents: the cached index maps belong to other data; delete them to rebuild`,
      );
    }
    // v1.0 saves int32; later GPT-NeoX versions switch to int64 for large maps.
    const sampleIdx = NpyIndexArray.open(files.sampleIdx, ['<i4', '<i8'], 2);
    arrays.push(sampleIdx);
    if (sampleIdx.shape[1] !== 2)
      throw new FormatError(files.sampleIdx, `shape is (${sampleIdx.shape.join(', ')}), expected (S+1, 2)`);
    const shuffleIdx = NpyIndexArray.open(files.shuffleIdx, SHUFFLE_IDX_DTYPES, 1);
    arrays.push(shuffleIdx);
    if (shuffleIdx.length !== sampleIdx.shape[0]! - 1) {
      throw new FormatError(
        files.shuffleIdx,
        `${shuffleIdx.length} entries, but sample_idx has ${sampleIdx.shape[0]} rows (expected one fewer): the cached index maps do not belong together; delete them to rebuild`,
      );
    }
    return {
      docIdx,
      sampleIdx,
      shuffleIdx,
      close: () =>
        arrays.forEach((a) => {
          a.close();
        }),
    };
  } catch (e) {
    for (const a of arrays) a.close();
    throw e;
  }
}

/** GPT-NeoX saves shuffle_idx as uint32 ('<u4'), or int64 from 2^32 − 2 samples on; we read both. */
const SHUFFLE_IDX_DTYPES: string[] = ['<u4', '<i8'];

const BLOCK_ENTRIES = 1024;

/** One integer .npy array read on demand, a block of entries at a time. */
class NpyIndexArray implements IndexArray {
  readonly length: number;
  private blockStart = -1;
  private block: DataView = new DataView(new ArrayBuffer(0));

  private constructor(
    private readonly file: RandomAccessFile,
    private readonly dtype: string,
    private readonly itemSize: number,
    private readonly dataOffset: number,
    readonly shape: number[],
  ) {
    this.length = shape.reduce((a, b) => a * b, 1);
  }

  static open(path: string, dtypes: string[], dims: number): NpyIndexArray {
    const header = readNpyHeader(path);
    if (!dtypes.includes(header.dtype)) {
      throw new FormatError(path, `dtype is ${header.dtype}, expected ${dtypes.join(' or ')} as GPT-NeoX saves it`);
    }
    if (header.shape.length !== dims)
      throw new FormatError(
        path,
        `shape is (${header.shape.join(', ')}), expected ${dims} dimension${dims > 1 ? 's' : ''}`,
      );
    const itemSize = header.dtype === '<i8' ? 8 : 4;
    return new NpyIndexArray(new RandomAccessFile(path), header.dtype, itemSize, header.dataOffset, header.shape);
  }

  at(i: number): number | undefined {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) return undefined;
    const start = i - (i % BLOCK_ENTRIES);
    if (start !== this.blockStart) {
      const count = Math.min(BLOCK_ENTRIES, this.length - start);
      const bytes = this.file.read(this.dataOffset + start * this.itemSize, count * this.itemSize, 'index map');
      this.block = new DataView(bytes.buffer);
      this.blockStart = start;
    }
    const at = (i - start) * this.itemSize;
    if (this.dtype === '<i8') return Number(this.block.getBigInt64(at, true));
    if (this.dtype === '<u4') return this.block.getUint32(at, true);
    return this.block.getInt32(at, true);
  }

  close(): void {
    this.file.close();
  }
}
