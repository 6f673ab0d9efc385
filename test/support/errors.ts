import assert from 'node:assert/strict';
import { FormatError } from '../../src/util/errors.js';

/** `fn` throws a FormatError whose message is one line matching `pattern`. */
export function assertFormatError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FormatError, `expected FormatError, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), 'message is one line');
    assert.match(e.message, pattern);
    return true;
  });
}
