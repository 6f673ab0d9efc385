/**
 * A restricted unpickler: enough of pickle protocol 2 (plus SHORT_BINUNICODE, MEMOIZE, FRAME,
 * STACK_GLOBAL) to read PyTorch state dicts. It executes nothing: every GLOBAL is resolved by
 * the caller's policy, which refuses all names it does not know, and REDUCE/BINPERSID go to the
 * policy as well.
 */
import { FormatError } from '../util/errors.js';

export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

export type PyKey = string | number | boolean | null;

export class PyDict {
  readonly entries = new Map<PyKey, PyValue>();
  /** State given by BUILD (an OrderedDict's __dict__, e.g. PyTorch's `_metadata`). */
  attributes: PyValue = null;
}

/** Values that only the policy understands (storages, tensors, allowed globals). */
export abstract class PyOpaque {
  abstract describe(): string;
}

export type PyValue = null | boolean | number | string | PyValue[] | PyTuple | PyDict | PyOpaque;

export interface UnpicklePolicy {
  /** The value for `GLOBAL module name`; throw (or return undefined) to refuse it. */
  findGlobal(module: string, name: string): PyValue | undefined;
  /** REDUCE: call an allowed global with its arguments. */
  call(callable: PyValue, args: PyValue[]): PyValue;
  /** BINPERSID: resolve a persistent id such as PyTorch's ('storage', type, key, location, numel). */
  persistentLoad(pid: PyValue): PyValue;
}

export function describePy(v: PyValue): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'list';
  if (v instanceof PyTuple) return `tuple of ${v.items.length}`;
  if (v instanceof PyDict) return 'dict';
  if (v instanceof PyOpaque) return v.describe();
  return typeof v === 'string' ? `str ${JSON.stringify(v.slice(0, 40))}` : `${typeof v} ${String(v)}`;
}

const MAX_PROTOCOL = 5;

/**
 * A bound on the memory one pickle may make us hold, in (approximate) bytes: a fixed allowance
 * plus a multiple of the pickle's own size. One-byte opcodes such as EMPTY_DICT or MARK each make
 * an object of tens to hundreds of bytes, so without a bound 10 MB of them take gigabytes. A
 * PyTorch state dict's pickle is charged about 12 bytes per byte (test/faults/hostile-files.test.ts).
 */
export const PICKLE_MEMORY_ALLOWANCE = 16 << 20;
export const PICKLE_MEMORY_PER_BYTE = 16;
/** Rough sizes of what each opcode makes (V8, 64-bit). */
const COST = { slot: 8, list: 56, tuple: 56, dict: 200, entry: 48, memo: 48, string: 24, opaque: 64 } as const;

export interface PickleMemoryBound {
  allowance: number;
  perByte: number;
}

export function unpickle(
  bytes: Uint8Array,
  file: string,
  policy: UnpicklePolicy,
  bound: PickleMemoryBound = { allowance: PICKLE_MEMORY_ALLOWANCE, perByte: PICKLE_MEMORY_PER_BYTE },
): PyValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const memo = new Map<number, PyValue>();
  const marks: PyValue[][] = [];
  let stack: PyValue[] = [];
  let pos = 0;
  let opAt = 0;
  const budget = bound.allowance + bound.perByte * bytes.length;
  let used = 0;

  const fail = (message: string): never => {
    throw new FormatError(file, `pickle byte ${opAt}: ${message}`);
  };
  const charge = (cost: number): void => {
    used += cost;
    if (used > budget) {
      fail(
        `the pickle builds more objects than ${bytes.length} bytes of a state dict can describe (over ${budget} bytes of memory): refusing it`,
      );
    }
  };
  const push = (v: PyValue, cost: number): void => {
    charge(COST.slot + cost);
    stack.push(v);
  };
  const memoize = (i: number, v: PyValue): void => {
    if (!memo.has(i)) charge(COST.memo);
    memo.set(i, v);
  };
  const need = (n: number): number => {
    if (pos + n > bytes.length) fail('pickle data is truncated');
    const at = pos;
    pos += n;
    return at;
  };
  const text = (n: number): string => {
    const at = need(n);
    charge(COST.string + 2 * n);
    try {
      return utf8.decode(bytes.subarray(at, at + n));
    } catch {
      return fail('string is not valid UTF-8');
    }
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('pickle data is truncated (GLOBAL name without a newline)');
    const s = text(end - pos);
    pos++; // the newline
    return s;
  };
  const pop = (): PyValue => {
    if (stack.length === 0) fail('stack underflow');
    return stack.pop()!;
  };
  const top = (): PyValue => {
    if (stack.length === 0) fail('stack underflow');
    return stack[stack.length - 1]!;
  };
  const popMark = (): PyValue[] => {
    const items = stack;
    const outer = marks.pop();
    if (outer === undefined) fail('no MARK to pop to');
    stack = outer!;
    return items;
  };
  const key = (k: PyValue): PyKey => {
    if (k === null || typeof k === 'string' || typeof k === 'number' || typeof k === 'boolean') return k;
    return fail(`unsupported dict key (${describePy(k)})`);
  };
  const dictOnTop = (): PyDict => {
    const d = top();
    if (!(d instanceof PyDict)) return fail(`expected a dict under SETITEM, found ${describePy(d)}`);
    return d;
  };
  const listOnTop = (): PyValue[] => {
    const l = top();
    if (!Array.isArray(l)) return fail(`expected a list under APPEND, found ${describePy(l)}`);
    return l;
  };
  const global = (module: string, name: string): PyValue => {
    const value = policy.findGlobal(module, name);
    if (value === undefined) fail(`global ${module}.${name} is not allowed (only PyTorch state-dict types are)`);
    return value!;
  };
  const memoGet = (i: number): PyValue => {
    if (!memo.has(i)) fail(`memo key ${i} was never stored`);
    return memo.get(i)!;
  };

  for (;;) {
    opAt = pos;
    const op = bytes[need(1)]!;
    switch (op) {
      case 0x80: {
        // PROTO
        const v = bytes[need(1)]!;
        if (v > MAX_PROTOCOL) fail(`pickle protocol ${v} is not supported`);
        break;
      }
      case 0x95:
        need(8);
        break; // FRAME: a length hint only
      case 0x2e: {
        // STOP
        const result = pop();
        if (marks.length !== 0 || stack.length !== 0) fail('STOP with values left on the stack');
        return result;
      }
      case 0x63: {
        // GLOBAL
        const module = line();
        const name = line();
        push(global(module, name), COST.opaque);
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        push(global(module as string, name as string), COST.opaque);
        break;
      }
      case 0x71:
        memoize(bytes[need(1)]!, top());
        break; // BINPUT
      case 0x72:
        memoize(view.getUint32(need(4), true), top());
        break; // LONG_BINPUT
      case 0x94:
        memoize(memo.size, top());
        break; // MEMOIZE
      case 0x68:
        push(memoGet(bytes[need(1)]!), 0);
        break; // BINGET
      case 0x6a:
        push(memoGet(view.getUint32(need(4), true)), 0);
        break; // LONG_BINGET
      case 0x28:
        charge(COST.list);
        marks.push(stack);
        stack = [];
        break; // MARK
      case 0x7d:
        push(new PyDict(), COST.dict);
        break; // EMPTY_DICT
      case 0x5d:
        push([], COST.list);
        break; // EMPTY_LIST
      case 0x29:
        push(new PyTuple([]), COST.tuple);
        break; // EMPTY_TUPLE
      case 0x58:
        push(text(view.getUint32(need(4), true)), 0);
        break; // BINUNICODE
      case 0x8c:
        push(text(bytes[need(1)]!), 0);
        break; // SHORT_BINUNICODE
      case 0x4b:
        push(bytes[need(1)]!, 0);
        break; // BININT1
      case 0x4d:
        push(view.getUint16(need(2), true), 0);
        break; // BININT2
      case 0x4a:
        push(view.getInt32(need(4), true), 0);
        break; // BININT
      case 0x8a: {
        // LONG1: little-endian two's complement
        const n = bytes[need(1)]!;
        const at = need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[at + i]!);
        if (n > 0 && bytes[at + n - 1]! >= 0x80) v -= 1n << BigInt(8 * n);
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER))
          fail(`integer ${v} is too large`);
        push(Number(v), 0);
        break;
      }
      case 0x47:
        push(view.getFloat64(need(8), false), 0);
        break; // BINFLOAT (big-endian)
      case 0x74: {
        const items = popMark();
        push(new PyTuple(items), COST.tuple);
        break;
      } // TUPLE (popMark swaps `stack`)
      case 0x85:
        push(new PyTuple([pop()]), COST.tuple);
        break; // TUPLE1
      case 0x86: {
        const b = pop();
        push(new PyTuple([pop(), b]), COST.tuple);
        break;
      } // TUPLE2
      case 0x87: {
        const c = pop();
        const b = pop();
        push(new PyTuple([pop(), b, c]), COST.tuple);
        break;
      } // TUPLE3
      case 0x88:
        push(true, 0);
        break; // NEWTRUE
      case 0x89:
        push(false, 0);
        break; // NEWFALSE
      case 0x4e:
        push(null, 0);
        break; // NONE
      case 0x52: {
        // REDUCE
        const args = pop();
        const callable = pop();
        if (!(args instanceof PyTuple)) fail(`REDUCE arguments are a ${describePy(args)}, not a tuple`);
        push(policy.call(callable, (args as PyTuple).items), COST.opaque);
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const obj = top();
        if (!(obj instanceof PyDict)) fail(`BUILD on ${describePy(obj)} is not supported`);
        (obj as PyDict).attributes = state;
        break;
      }
      case 0x73: {
        // SETITEM
        const value = pop();
        const k = key(pop());
        charge(COST.entry);
        dictOnTop().entries.set(k, value);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        if (items.length % 2 !== 0) fail('SETITEMS with an odd number of items');
        const d = dictOnTop();
        charge((items.length / 2) * COST.entry);
        for (let i = 0; i < items.length; i += 2) d.entries.set(key(items[i]!), items[i + 1]!);
        break;
      }
      case 0x61: {
        const v = pop();
        listOnTop().push(v);
        break;
      } // APPEND
      case 0x65: {
        const items = popMark();
        const l = listOnTop();
        for (const v of items) l.push(v);
        break;
      } // APPENDS
      case 0x51:
        push(policy.persistentLoad(pop()), COST.opaque);
        break; // BINPERSID
      default:
        fail(`opcode 0x${op.toString(16).padStart(2, '0')} is not supported`);
    }
  }
}
