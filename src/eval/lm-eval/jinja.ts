/**
 * lm-evaluation-harness's templates (`doc_to_text: "Question: {{goal}}\nAnswer:"`) rendered with
 * `@huggingface/jinja`, set up as lm-eval sets up Jinja (lm_eval/utils.py): the template's trailing
 * newline kept, block tags left as written (no trim_blocks, no lstrip_blocks), and a variable that
 * is not defined, or a missing key or index rendered, an error (StrictUndefined) rather than an
 * empty string. A string's `strip()`, `lstrip()`, `rstrip()` (with or without the characters to
 * strip) and the `trim` filter strip Python's whitespace (src/eval/lm-eval/python-str.ts), not
 * JavaScript's, and a list has Python's `index()` (ARC's `{{choices.label.index(answerKey)}}`).
 *
 * Where `@huggingface/jinja` differs from Python's Jinja otherwise, a template renders differently
 * or fails: lists render as JSON (`["a", "b"]`, the same list once read back), `true`/`false`/`none`
 * as JavaScript writes them, string indices count UTF-16 units, and other list methods and lm-eval's
 * `regex_replace` filter are missing (an error naming the template's key and the row).
 */
import { Environment, Interpreter, parse, Template, tokenize } from '@huggingface/jinja';
import { DataError } from '../../util/errors.js';
import { lstrip, rstrip, strip } from './python-str.js';

export interface CompiledTemplate {
  render(doc: Record<string, unknown>): string;
}

type Value = { value: unknown; constructor: new (value: unknown) => Value };
type Builtins = Map<string, Value>;

/** The runtime's string class, which the package does not export: the value a string is stored as. */
const STRING_PROTOTYPE = Object.getPrototypeOf(new Environment().set('s', '')) as object;
const STRING_BUILTINS = Object.getOwnPropertyDescriptor(STRING_PROTOTYPE, 'builtins')!;
/** The runtime's list class, likewise. */
const ARRAY_PROTOTYPE = Object.getPrototypeOf(new Environment().set('a', [])) as object;
const ARRAY_BUILTINS = Object.getOwnPropertyDescriptor(ARRAY_PROTOTYPE, 'builtins')!;
/** The runtime's integer and function classes, from the values a number and a function are stored as. */
const INTEGER = (new Environment().set('i', 0) as unknown as Value).constructor;
const FUNCTION = (new Environment().set('f', () => undefined) as unknown as Value).constructor;

function pythonStrip(s: string, side: 'both' | 'left' | 'right', chars: unknown): string {
  if (typeof chars !== 'string') return side === 'both' ? strip(s) : side === 'left' ? lstrip(s) : rstrip(s);
  const points = Array.from(s);
  const strippable = new Set(Array.from(chars));
  let start = 0;
  let end = points.length;
  if (side !== 'right') while (start < end && strippable.has(points[start]!)) start++;
  if (side !== 'left') while (end > start && strippable.has(points[end - 1]!)) end--;
  return points.slice(start, end).join('');
}

/** The string methods with Python's whitespace. */
function pythonStringBuiltins(this: Value): Builtins {
  const builtins = new Map(STRING_BUILTINS.get!.call(this) as Builtins);
  const FunctionValue = builtins.get('strip')!.constructor;
  const StringValue = this.constructor;
  for (const [name, side] of [
    ['strip', 'both'],
    ['lstrip', 'left'],
    ['rstrip', 'right'],
  ] as const)
    builtins.set(
      name,
      new FunctionValue((args: Value[]) => new StringValue(pythonStrip(this.value as string, side, args[0]?.value))),
    );
  return builtins;
}

/** A list's `index(x)`: the first position of an equal string, number or boolean; an error where there is none, as Python's ValueError. */
function pythonListBuiltins(this: Value): Builtins {
  const builtins = new Map(ARRAY_BUILTINS.get!.call(this) as Builtins);
  const items = this.value as Value[];
  builtins.set(
    'index',
    new FUNCTION((args: Value[]) => {
      const wanted = args[0]?.value;
      const at = items.findIndex((item) => typeof item.value !== 'object' && item.value === wanted);
      if (at < 0) throw new DataError(`${JSON.stringify(wanted)} is not in the list`);
      return new INTEGER(at);
    }),
  );
  return builtins;
}

type ApplyFilter = (operand: Value, filter: { type: string; value?: unknown }, environment: Environment) => Value;
type Statement = { type: string };
type EvaluateBlock = (statements: Statement[], environment: Environment) => Value;
const interpreter = Interpreter.prototype as unknown as {
  applyFilter: ApplyFilter;
  evaluateBlock: EvaluateBlock;
  evaluate(statement: Statement, environment: Environment): Value & { type: string };
};

/** The `trim` filter with Python's whitespace; the others as the package has them. */
function pythonFilters(original: ApplyFilter): ApplyFilter {
  return function applyFilter(this: unknown, operand, filter, environment) {
    if (filter.type === 'Identifier' && filter.value === 'trim' && Object.getPrototypeOf(operand) === STRING_PROTOTYPE)
      return new operand.constructor(strip(operand.value as string));
    return original.call(this, operand, filter, environment);
  };
}

/**
 * A block's output, where rendering a value that is not defined (a missing key, an index past the
 * end) is an error, as under lm-eval's StrictUndefined.
 */
function strictBlock(this: typeof interpreter, statements: Statement[], environment: Environment): Value {
  let output = '';
  for (const statement of statements) {
    const value = this.evaluate(statement, environment);
    if (value.type === 'UndefinedValue')
      throw new DataError(`a value that is not defined is rendered (a missing key or index, in a ${statement.type})`);
    if (value.type !== 'NullValue') output += String(value);
  }
  return new (STRING_PROTOTYPE.constructor as new (value: string) => Value)(output);
}

/** A name found in no scope is an error, as under lm-eval's StrictUndefined. */
function strictLookup(this: Environment, name: string) {
  for (let scope: Environment | undefined = this; scope; scope = scope.parent) {
    const value = scope.variables.get(name);
    if (value !== undefined) return value;
  }
  throw new DataError(`'${name}' is undefined`);
}

/**
 * Runs `render` with the package's runtime set up as lm-eval's Jinja behaves. Rendering is
 * synchronous, so the changes are in place for this render only.
 */
function withPythonSemantics<T>(render: () => T): T {
  const lookup = Environment.prototype.lookupVariable;
  const applyFilter = interpreter.applyFilter;
  const evaluateBlock = interpreter.evaluateBlock;
  Environment.prototype.lookupVariable = strictLookup;
  interpreter.applyFilter = pythonFilters(applyFilter);
  interpreter.evaluateBlock = strictBlock;
  Object.defineProperty(STRING_PROTOTYPE, 'builtins', { get: pythonStringBuiltins, configurable: true });
  Object.defineProperty(ARRAY_PROTOTYPE, 'builtins', { get: pythonListBuiltins, configurable: true });
  try {
    return render();
  } finally {
    Environment.prototype.lookupVariable = lookup;
    interpreter.applyFilter = applyFilter;
    interpreter.evaluateBlock = evaluateBlock;
    Object.defineProperty(STRING_PROTOTYPE, 'builtins', STRING_BUILTINS);
    Object.defineProperty(ARRAY_PROTOTYPE, 'builtins', ARRAY_BUILTINS);
  }
}

/** Compiles a template; a syntax error is thrown as an Error whose message says what is wrong. */
export function compileTemplate(source: string): CompiledTemplate {
  // Template's constructor trims blocks as chat templates want; lm-eval's environment does not.
  const template = new Template('');
  template.parsed = parse(tokenize(source, {}));
  // The tokenizer drops one trailing newline; lm-eval's keep_trailing_newline puts it back.
  const tail = source.endsWith('\n') ? '\n' : '';
  return {
    render(doc) {
      try {
        return withPythonSemantics(() => template.render(doc)) + tail;
      } catch (e) {
        if (e instanceof DataError) throw e;
        throw new DataError((e as Error).message.split('\n')[0]!);
      }
    },
  };
}
