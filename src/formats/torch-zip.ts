/**
 * PyTorch `torch.save` checkpoints (pytorch_model.bin, PyTorch >= 1.6): a stored zip holding
 * `<prefix>/data.pkl` (the pickled state dict) and one `<prefix>/data/<key>` record per storage.
 * Tensors are read lazily from their storage records by positioned reads.
 */
import { FormatError } from '../util/errors.js';
import { RandomAccessFile } from './file-io.js';
import { describePy, PyDict, PyOpaque, PyTuple, type PyValue, type UnpicklePolicy, unpickle } from './pickle.js';
import {
  bytesToFloat32,
  formatShape,
  numelOf,
  STORED_DTYPE_SIZE,
  type StoredDType,
  type TensorInfo,
  type TensorSource,
} from './tensor-file.js';
import { readZipDirectory, type ZipEntry } from './zip.js';

const STORAGE_DTYPES: Record<string, StoredDType> = {
  HalfStorage: 'F16',
  FloatStorage: 'F32',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
  UntypedStorage: 'U8',
};
const CALLABLES = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
]);
/** A state dict's pickle holds ~200 bytes per tensor (Pythia-12b's is ~100 KB): room for 300k tensors. */
const MAX_PICKLE_BYTES = 64 << 20;

class AllowedCallable extends PyOpaque {
  constructor(readonly qualifiedName: string) {
    super();
  }
  describe(): string {
    return this.qualifiedName;
  }
}

class StorageType extends PyOpaque {
  constructor(
    readonly dtype: StoredDType,
    readonly typeName: string,
  ) {
    super();
  }
  describe(): string {
    return `torch.${this.typeName}`;
  }
}

class StorageRef extends PyOpaque {
  constructor(
    readonly key: string,
    readonly dtype: StoredDType,
    readonly numel: number,
  ) {
    super();
  }
  describe(): string {
    return `storage ${this.key}`;
  }
}

class TensorRef extends PyOpaque {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {
    super();
  }
  describe(): string {
    return `tensor ${formatShape(this.shape)}`;
  }
}

function isCount(v: PyValue): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function countTuple(v: PyValue): number[] | undefined {
  if (!(v instanceof PyTuple) || !v.items.every(isCount)) return undefined;
  return v.items as number[];
}

/** Resolves exactly the globals, calls and persistent ids that a PyTorch state dict uses. */
class StateDictPolicy implements UnpicklePolicy {
  private readonly storages = new Map<string, StorageRef>();

  constructor(private readonly file: string) {}

  private fail(message: string): never {
    throw new FormatError(this.file, message);
  }

  findGlobal(module: string, name: string): PyValue | undefined {
    const qualified = `${module}.${name}`;
    if (CALLABLES.has(qualified)) return new AllowedCallable(qualified);
    if ((module === 'torch' || qualified === 'torch.storage.UntypedStorage') && Object.hasOwn(STORAGE_DTYPES, name)) {
      return new StorageType(STORAGE_DTYPES[name]!, name);
    }
    return undefined;
  }

  call(callable: PyValue, args: PyValue[]): PyValue {
    if (!(callable instanceof AllowedCallable)) return this.fail(`cannot call ${describePy(callable)}`);
    switch (callable.qualifiedName) {
      case 'collections.OrderedDict':
        if (args.length !== 0) this.fail('OrderedDict called with arguments');
        return new PyDict();
      case 'torch._utils._rebuild_tensor_v2': {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        const [storage, offset, size, stride] = args;
        const shape = countTuple(size ?? null);
        const strides = countTuple(stride ?? null);
        if (
          args.length < 6 ||
          args.length > 7 ||
          !(storage instanceof StorageRef) ||
          !isCount(offset ?? null) ||
          !shape ||
          !strides ||
          shape.length !== strides.length
        ) {
          return this.fail(`_rebuild_tensor_v2 got unexpected arguments (${args.map(describePy).join(', ')})`);
        }
        return new TensorRef(storage, offset as number, shape, strides);
      }
      default: {
        // _rebuild_parameter(data, requires_grad, hooks[, state]): the Parameter's tensor
        const data = args[0];
        if (!(data instanceof TensorRef))
          return this.fail(`${callable.qualifiedName} got ${describePy(data ?? null)} instead of a tensor`);
        return data;
      }
    }
  }

  persistentLoad(pid: PyValue): PyValue {
    // ('storage', storage_type, key, location, numel)
    const items = pid instanceof PyTuple ? pid.items : [];
    const [tag, type, key, , numel] = items;
    if (
      items.length !== 5 ||
      tag !== 'storage' ||
      !(type instanceof StorageType) ||
      typeof key !== 'string' ||
      !isCount(numel ?? null)
    ) {
      return this.fail(`unexpected persistent id (${items.map(describePy).join(', ') || describePy(pid)})`);
    }
    if (!/^[A-Za-z0-9_.-]+$/.test(key) || key === '.' || key === '..')
      this.fail(`storage key ${JSON.stringify(key)} is not a plain record name`);
    const seen = this.storages.get(key);
    if (seen) {
      if (seen.dtype !== type.dtype || seen.numel !== numel)
        this.fail(`storage ${key} is used as both ${seen.dtype}[${seen.numel}] and ${type.dtype}[${numel}]`);
      return seen;
    }
    const ref = new StorageRef(key, type.dtype, numel as number);
    this.storages.set(key, ref);
    return ref;
  }
}

interface StoredTensor extends TensorInfo {
  tensor: TensorRef;
  record: ZipEntry;
}

export function openTorchCheckpoint(path: string): TensorSource {
  const file = new RandomAccessFile(path);
  try {
    return new TorchCheckpoint(file, readStateDict(file));
  } catch (e) {
    file.close();
    throw e;
  }
}

function readStateDict(file: RandomAccessFile): StoredTensor[] {
  const fail = (message: string): never => {
    throw new FormatError(file.path, message);
  };
  const records = readZipDirectory(file);
  const first = records.keys().next().value;
  if (first === undefined || !first.includes('/'))
    return fail('zip archive has no <name>/data.pkl record: not a torch.save checkpoint');
  const prefix = first.slice(0, first.indexOf('/') + 1);
  for (const name of records.keys())
    if (!name.startsWith(prefix)) fail(`zip entry ${name} is outside the archive folder ${prefix}`);

  const byteorder = records.get(`${prefix}byteorder`);
  if (byteorder) {
    const order = Buffer.from(file.read(byteorder.dataOffset, byteorder.size, 'byteorder record')).toString('latin1');
    if (order !== 'little') fail(`byteorder is ${JSON.stringify(order)}; only little-endian checkpoints are supported`);
  }
  const pickleRecord = records.get(`${prefix}data.pkl`);
  if (!pickleRecord) return fail(`zip archive has no ${prefix}data.pkl record`);
  if (pickleRecord.size > MAX_PICKLE_BYTES)
    fail(`${prefix}data.pkl is ${pickleRecord.size} bytes, more than a state dict needs`);
  const pickle = file.read(pickleRecord.dataOffset, pickleRecord.size, 'data.pkl');
  const root = unpickle(pickle, file.path, new StateDictPolicy(file.path));
  if (!(root instanceof PyDict))
    return fail(`data.pkl holds a ${describePy(root)}, expected a state dict (name → tensor)`);

  const tensors: StoredTensor[] = [];
  for (const [name, value] of root.entries) {
    if (typeof name !== 'string') return fail(`state dict key ${describePy(name)} is not a string`);
    if (!(value instanceof TensorRef)) return fail(`state dict entry ${name} is a ${describePy(value)}, not a tensor`);
    const { storage } = value;
    const record = records.get(`${prefix}data/${storage.key}`);
    if (!record)
      return fail(`tensor ${name}: storage ${storage.key} has no record ${prefix}data/${storage.key} in the archive`);
    const storageBytes = storage.numel * STORED_DTYPE_SIZE[storage.dtype];
    if (record.size !== storageBytes)
      fail(
        `tensor ${name}: record data/${storage.key} has ${record.size} bytes but ${storage.dtype} storage of ${storage.numel} needs ${storageBytes}`,
      );
    if (numelOf(value.shape) > 0) {
      let last = value.offset;
      for (let d = 0; d < value.shape.length; d++) last += (value.shape[d]! - 1) * value.stride[d]!;
      if (last >= storage.numel) {
        fail(
          `tensor ${name}: offset ${value.offset}, shape ${formatShape(value.shape)}, stride ${formatShape(value.stride)} reach element ${last} of a storage of ${storage.numel}`,
        );
      }
    }
    tensors.push({ name, dtype: storage.dtype, shape: value.shape, tensor: value, record });
  }
  return tensors;
}

function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d]!;
  }
  return true;
}

/** Copies a strided view out of `span` (storage elements from the view's first one on) into C order. */
function gather(
  span: Uint8Array,
  shape: readonly number[],
  stride: readonly number[],
  elementSize: number,
): Uint8Array {
  const out = new Uint8Array(numelOf(shape) * elementSize);
  if (out.length === 0) return out;
  const rank = shape.length;
  const index = new Array<number>(rank).fill(0);
  let source = 0; // in elements
  for (let o = 0; o < out.length; o += elementSize) {
    out.set(span.subarray(source * elementSize, (source + 1) * elementSize), o);
    for (let d = rank - 1; d >= 0; d--) {
      if (++index[d]! < shape[d]!) {
        source += stride[d]!;
        break;
      }
      source -= (shape[d]! - 1) * stride[d]!;
      index[d] = 0;
    }
  }
  return out;
}

class TorchCheckpoint implements TensorSource {
  private readonly byName: Map<string, StoredTensor>;

  constructor(
    private readonly handle: RandomAccessFile,
    private readonly tensors: StoredTensor[],
  ) {
    this.byName = new Map(tensors.map((t) => [t.name, t]));
  }

  get file(): string {
    return this.handle.path;
  }

  list(): TensorInfo[] {
    return this.tensors.map(({ name, dtype, shape }) => ({ name, dtype, shape: [...shape] }));
  }

  readRaw(name: string): { dtype: StoredDType; shape: number[]; data: Uint8Array } {
    const t = this.byName.get(name);
    if (!t) throw new FormatError(this.file, `no tensor named ${JSON.stringify(name)}`);
    const { shape, stride, offset } = t.tensor;
    const size = STORED_DTYPE_SIZE[t.dtype];
    const numel = numelOf(shape);
    const start = t.record.dataOffset + offset * size;
    if (isContiguous(shape, stride))
      return { dtype: t.dtype, shape: [...shape], data: this.handle.read(start, numel * size, `tensor ${name}`) };
    let last = 0;
    for (let d = 0; d < shape.length; d++) last += numel === 0 ? 0 : (shape[d]! - 1) * stride[d]!;
    const span = numel === 0 ? new Uint8Array(0) : this.handle.read(start, (last + 1) * size, `tensor ${name}`);
    return { dtype: t.dtype, shape: [...shape], data: gather(span, shape, stride, size) };
  }

  readFloat32(name: string): Float32Array {
    const { dtype, data } = this.readRaw(name);
    return bytesToFloat32(this.file, name, dtype, data);
  }

  close(): void {
    this.handle.close();
  }
}
