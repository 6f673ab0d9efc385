/**
 * A JSON parser for file headers and task lines that, unlike JSON.parse, refuses duplicate object
 * keys (safetensors requires it) and bounds nesting, so that no later recursive reader or writer
 * (JSON.stringify included) can overflow the stack on what it returns. Objects come back with a
 * null prototype, so a key such as "__proto__" is just a key. Errors are messages with a character
 * position; callers wrap them.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export type JsonObject = { [key: string]: JsonValue };

/** Arrays and objects nested more deeply than this are refused. */
export const MAX_JSON_DEPTH = 64;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

export class JsonSyntaxError extends Error {}

export interface StrictJsonLimits {
  /** Refuse documents of more values than this (objects, arrays and scalars all count). */
  maxValues?: number;
}

export function parseStrictJson(text: string, limits: StrictJsonLimits = {}): JsonValue {
  let pos = 0;
  let valuesLeft = limits.maxValues ?? Infinity;

  const fail = (what: string): never => {
    throw new JsonSyntaxError(`${what} at character ${pos}`);
  };
  const skipSpace = (): void => {
    while (pos < text.length && ' \t\n\r'.includes(text[pos]!)) pos++;
  };
  const expect = (ch: string): void => {
    if (text[pos] !== ch) fail(`expected '${ch}'`);
    pos++;
  };

  const parseString = (): string => {
    expect('"');
    let out = '';
    for (;;) {
      // Plain runs are sliced whole: adding characters one by one builds a tree of tiny strings.
      const start = pos;
      while (pos < text.length) {
        const code = text.charCodeAt(pos);
        if (code === 0x22 || code === 0x5c || code < 0x20) break;
        pos++;
      }
      if (pos > start) out += text.slice(start, pos);
      if (pos >= text.length) fail('unterminated string');
      const ch = text[pos++]!;
      if (ch === '"') return out;
      if (ch < ' ') fail('control character in string');
      const esc = text[pos++];
      if (esc === 'u') {
        const hex = text.slice(pos, pos + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape');
        out += String.fromCharCode(parseInt(hex, 16));
        pos += 4;
      } else if (esc !== undefined && Object.hasOwn(ESCAPES, esc)) {
        out += ESCAPES[esc];
      } else {
        fail('bad escape');
      }
    }
  };

  /** `depth`: how many arrays and objects enclose the value. */
  const parseValue = (depth: number): JsonValue => {
    if (--valuesLeft < 0) fail(`more than ${limits.maxValues} values`);
    skipSpace();
    const ch = text[pos];
    if ((ch === '{' || ch === '[') && depth >= MAX_JSON_DEPTH)
      fail(`nested deeper than ${MAX_JSON_DEPTH} arrays and objects`);
    if (ch === '{') {
      pos++;
      const obj: JsonObject = Object.create(null) as JsonObject;
      skipSpace();
      if (text[pos] === '}') {
        pos++;
        return obj;
      }
      for (;;) {
        skipSpace();
        const keyAt = pos;
        const key = parseString();
        if (Object.hasOwn(obj, key)) {
          pos = keyAt;
          fail(`duplicate key ${JSON.stringify(key)}`);
        }
        skipSpace();
        expect(':');
        obj[key] = parseValue(depth + 1);
        skipSpace();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        expect('}');
        return obj;
      }
    }
    if (ch === '[') {
      pos++;
      const arr: JsonValue[] = [];
      skipSpace();
      if (text[pos] === ']') {
        pos++;
        return arr;
      }
      for (;;) {
        arr.push(parseValue(depth + 1));
        skipSpace();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        expect(']');
        return arr;
      }
    }
    if (ch === '"') return parseString();
    for (const [word, value] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return value;
      }
    }
    NUMBER.lastIndex = pos;
    const m = NUMBER.exec(text);
    if (!m) return fail('expected a JSON value');
    // JSON.parse makes 1e400 Infinity, which JSON.stringify writes back as null.
    const n = Number(m[0]);
    if (!Number.isFinite(n)) fail(`number ${m[0]} is beyond the range of a double`);
    pos += m[0].length;
    return n;
  };

  // Named in words: quoted, the mark is invisible.
  if (text.charCodeAt(0) === 0xfeff) throw new JsonSyntaxError('starts with a UTF-8 byte-order mark (U+FEFF)');
  const value = parseValue(0);
  skipSpace();
  if (pos !== text.length) fail('unexpected text after the JSON value');
  return value;
}

export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** JSON.parse for whole files, with a leading byte-order mark named in words rather than quoted. */
export function parseJsonFile(text: string): unknown {
  if (text.charCodeAt(0) === 0xfeff) throw new SyntaxError('starts with a UTF-8 byte-order mark (U+FEFF)');
  return JSON.parse(text);
}
