/**
 * Python's `ast.literal_eval` for the values lm-evaluation-harness reads back from a rendered
 * template (`doc_to_choice: "{{[sol1, sol2]}}"` renders a list, which lm-eval evaluates): lists and
 * tuples, strings in single or double quotes with Python's escapes, integers, floats, `True`,
 * `False` and `None`. Anything else is a DataError saying where the text stops being a literal.
 */
import { DataError } from '../../util/errors.js';

export type PythonLiteral = string | number | boolean | null | PythonLiteral[];

const SIMPLE_ESCAPES: Record<string, string> = {
  '\n': '',
  '\\': '\\',
  "'": "'",
  '"': '"',
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
};

export function literalEval(text: string): PythonLiteral {
  let at = 0;
  const fail = (what: string): never => {
    throw new DataError(`not a Python literal (${what} at character ${at} of ${JSON.stringify(text)})`);
  };
  const space = () => {
    while (at < text.length && ' \t\n\r\f\v'.includes(text[at]!)) at++;
  };
  const string = (): string => {
    const quote = text[at++]!;
    let out = '';
    while (at < text.length && text[at] !== quote) {
      const c = text[at++]!;
      if (c === '\n') fail('a newline inside a string');
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = text[at++];
      if (e === undefined) break;
      if (e in SIMPLE_ESCAPES) out += SIMPLE_ESCAPES[e];
      else if (e === 'x' || e === 'u' || e === 'U') {
        const digits = { x: 2, u: 4, U: 8 }[e];
        const hex = text.slice(at, at + digits);
        if (!new RegExp(`^[0-9a-fA-F]{${digits}}$`).test(hex)) fail(`a bad \\${e} escape`);
        const code = Number.parseInt(hex, 16);
        if (code > 0x10ffff) fail(`a bad \\${e} escape`);
        out += String.fromCodePoint(code);
        at += digits;
      } else if (/[0-7]/.test(e)) {
        let octal = e;
        while (octal.length < 3 && /[0-7]/.test(text[at] ?? '')) octal += text[at++];
        out += String.fromCodePoint(Number.parseInt(octal, 8));
      } else out += `\\${e}`;
    }
    if (text[at] !== quote) fail('an unterminated string');
    at++;
    return out;
  };
  const value = (): PythonLiteral => {
    space();
    const c = text[at];
    if (c === undefined) return fail('the end');
    if (c === "'" || c === '"') {
      let s = string();
      // Adjacent strings concatenate, as in Python source.
      for (space(); text[at] === "'" || text[at] === '"'; space()) s += string();
      return s;
    }
    if (c === '[' || c === '(') {
      const close = c === '[' ? ']' : ')';
      at++;
      const items: PythonLiteral[] = [];
      for (space(); text[at] !== close; space()) {
        items.push(value());
        space();
        if (text[at] === ',') at++;
        else if (text[at] !== close) fail(`expected "," or "${close}"`);
      }
      at++;
      return items;
    }
    const word = /^(True|False|None)\b/.exec(text.slice(at));
    if (word) {
      at += word[0].length;
      return word[0] === 'True' ? true : word[0] === 'False' ? false : null;
    }
    const number = /^[-+]?(\d[\d_]*(\.\d*)?|\.\d+)([eE][-+]?\d+)?/.exec(text.slice(at));
    if (number) {
      at += number[0].length;
      return Number(number[0].replaceAll('_', ''));
    }
    return fail(`unexpected ${JSON.stringify(c)}`);
  };
  const result = value();
  space();
  if (at < text.length) fail('text after the literal');
  return result;
}
