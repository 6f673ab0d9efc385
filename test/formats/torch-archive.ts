/**
 * Builders for tiny torch.save-style archives in tests: a stored zip writer and the pickle
 * opcodes a state dict uses. Written from the zip APPNOTE and pickletools' opcode table.
 */

export interface ZipRecord {
  name: string;
  data: Uint8Array;
}

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b;
}
function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}
function u64(v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 as zip uses it (the readers under test ignore it; it lets other zip tools open these files). */
function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * A zip with stored entries. Like torch's writer, each local header gets an extra field padding
 * the data to a 64-byte boundary while the central directory has none; `zip64` adds the Zip64
 * end record and locator.
 */
export function storedZip(records: ZipRecord[], options: { zip64?: boolean; method?: number } = {}): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const r of records) {
    const name = Buffer.from(r.name, 'utf8');
    const unpadded = offset + 30 + name.length + 4;
    const pad = (64 - (unpadded % 64)) % 64;
    const extra = Buffer.concat([u16(0x4246), u16(pad), Buffer.alloc(pad, 0x5a)]);
    const common = Buffer.concat([
      u16(0),
      u16(options.method ?? 0),
      u16(0),
      u16(0),
      u32(crc32(r.data)),
      u32(r.data.length),
      u32(r.data.length),
      u16(name.length),
    ]);
    const local = Buffer.concat([u32(0x04034b50), u16(20), common, u16(extra.length), name, extra]);
    central.push(
      Buffer.concat([
        u32(0x02014b50),
        u16(20),
        u16(20),
        common,
        u16(0),
        u16(0),
        u16(0),
        u16(0),
        u32(0),
        u32(offset),
        name,
      ]),
    );
    parts.push(local, Buffer.from(r.data));
    offset += local.length + r.data.length;
  }
  const dir = Buffer.concat(central);
  const dirOffset = offset;
  parts.push(dir);
  if (options.zip64) {
    const recordAt = dirOffset + dir.length;
    parts.push(
      Buffer.concat([
        u32(0x06064b50),
        u64(44),
        u16(45),
        u16(45),
        u32(0),
        u32(0),
        u64(records.length),
        u64(records.length),
        u64(dir.length),
        u64(dirOffset),
      ]),
    );
    parts.push(Buffer.concat([u32(0x07064b50), u32(0), u64(recordAt), u32(1)]));
  }
  parts.push(
    Buffer.concat([
      u32(0x06054b50),
      u16(0),
      u16(0),
      u16(records.length),
      u16(records.length),
      u32(dir.length),
      u32(dirOffset),
      u16(0),
    ]),
  );
  return Buffer.concat(parts);
}

/** Pickle opcodes, protocol 2. */
export const op = {
  proto: (): Buffer => Buffer.from([0x80, 2]),
  global: (module: string, name: string): Buffer => Buffer.from(`c${module}\n${name}\n`, 'utf8'),
  str: (s: string): Buffer => {
    const b = Buffer.from(s, 'utf8');
    return Buffer.concat([Buffer.from([0x58]), u32(b.length), b]);
  },
  int: (n: number): Buffer => {
    if (n >= 0 && n < 256) return Buffer.from([0x4b, n]);
    if (n >= 0 && n < 65536) return Buffer.concat([Buffer.from([0x4d]), u16(n)]);
    const b = Buffer.alloc(5);
    b[0] = 0x4a;
    b.writeInt32LE(n, 1);
    return b;
  },
  mark: Buffer.from('('),
  tuple: Buffer.from('t'),
  emptyTuple: Buffer.from(')'),
  emptyDict: Buffer.from('}'),
  reduce: Buffer.from('R'),
  build: Buffer.from('b'),
  setitems: Buffer.from('u'),
  persid: Buffer.from('Q'),
  false: Buffer.from([0x89]),
  stop: Buffer.from('.'),
  binput: (i: number): Buffer => Buffer.from([0x71, i]),
  binget: (i: number): Buffer => Buffer.from([0x68, i]),
};

export interface PickledTensor {
  name: string;
  storageType: string; // e.g. 'FloatStorage'
  key: string;
  storageNumel: number;
  offset: number;
  shape: number[];
  stride: number[];
  parameter?: boolean;
}

function intTuple(values: number[]): Buffer {
  return Buffer.concat([op.mark, ...values.map(op.int), op.tuple]);
}

/** A state dict pickled the way torch.save does it (OrderedDict, _rebuild_tensor_v2, BINPERSID storages). */
export function stateDictPickle(tensors: PickledTensor[]): Buffer {
  const parts: Buffer[] = [
    op.proto(),
    op.global('collections', 'OrderedDict'),
    op.binput(0),
    op.emptyTuple,
    op.reduce,
    op.mark,
  ];
  for (const t of tensors) {
    parts.push(op.str(t.name));
    if (t.parameter) parts.push(op.global('torch._utils', '_rebuild_parameter'), op.mark);
    parts.push(
      op.global('torch._utils', '_rebuild_tensor_v2'),
      op.mark,
      op.mark,
      op.str('storage'),
      op.global('torch', t.storageType),
      op.str(t.key),
      op.str('cpu'),
      op.int(t.storageNumel),
      op.tuple,
      op.persid,
      op.int(t.offset),
      intTuple(t.shape),
      intTuple(t.stride),
      op.false,
      op.binget(0),
      op.emptyTuple,
      op.reduce,
      op.tuple,
      op.reduce,
    );
    if (t.parameter) parts.push(op.false, op.binget(0), op.emptyTuple, op.reduce, op.tuple, op.reduce);
  }
  parts.push(
    op.setitems,
    op.emptyDict,
    op.str('_metadata'),
    op.binget(0),
    op.emptyTuple,
    op.reduce,
    Buffer.from('s'),
    op.build,
    op.stop,
  );
  return Buffer.concat(parts);
}
