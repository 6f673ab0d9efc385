/**
 * Python's string semantics where they differ from JavaScript's, for text processing that must give
 * lm-evaluation-harness's strings character for character: Python indexes and measures strings in
 * code points (JavaScript in UTF-16 units), and its whitespace (`str.isspace()`, `\s` in a str
 * pattern, `strip()`, `split()`) is U+0009-U+000D, U+001C-U+001F, space, U+0085, U+00A0, U+1680,
 * U+2000-U+200A, U+2028, U+2029, U+202F, U+205F and U+3000; JavaScript's `\s` and `trim()` lack
 * U+001C-U+001F and U+0085 and add U+FEFF.
 */

/** The whitespace characters, for a regular-expression character class. */
export const PYTHON_SPACE =
  '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

const SPACES = new RegExp(`[${PYTHON_SPACE}]+`);
const LEADING = new RegExp(`^[${PYTHON_SPACE}]+`);
const TRAILING = new RegExp(`[${PYTHON_SPACE}]+$`);

/** `s.lstrip()` */
export function lstrip(s: string): string {
  return s.replace(LEADING, '');
}

/** `s.rstrip()` */
export function rstrip(s: string): string {
  return s.replace(TRAILING, '');
}

/** `s.strip()` */
export function strip(s: string): string {
  return rstrip(lstrip(s));
}

/** `s.split()`: the runs of non-whitespace. */
export function splitWhitespace(s: string): string[] {
  return s.split(SPACES).filter((part) => part !== '');
}

/** `len(re.split(r"\s+", s))` */
export function countSplitAtSpaces(s: string): number {
  return s.split(SPACES).length;
}

/** `len(s)`: code points. */
export function pythonLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** A Python index (negative counts from the end) into `length` items, or undefined where Python raises IndexError. */
function index(i: number, length: number): number | undefined {
  const at = i < 0 ? i + length : i;
  return at >= 0 && at < length ? at : undefined;
}

/** `s[i]`, in code points; undefined where Python raises IndexError. */
export function charAt(s: string, i: number): string | undefined {
  const points = Array.from(s);
  const at = index(i, points.length);
  return at === undefined ? undefined : points[at];
}

/** `s[start:end]`, in code points, with Python's negative indices and clamping. */
export function slice(s: string, start?: number, end?: number): string {
  const points = Array.from(s);
  const clamp = (i: number) => Math.min(Math.max(i < 0 ? i + points.length : i, 0), points.length);
  return points.slice(start === undefined ? 0 : clamp(start), end === undefined ? points.length : clamp(end)).join('');
}
