/** `--max-memory` sizes and the resident-or-streamed decision against a budget. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NeoXConfig } from '../../src/model/config.js';
import {
  availableMemory,
  float32WeightBytes,
  parseMemorySize,
  planMemory,
  streamedActivationBytes,
  streamingMessage,
} from '../../src/model/memory-budget.js';
import { pythiaArchitecture } from '../../src/model/presets.js';

test('memory sizes: decimal and binary units, bytes without one; anything else refused', () => {
  assert.equal(parseMemorySize('8GB'), 8e9);
  assert.equal(parseMemorySize('512MiB'), 512 * 2 ** 20);
  assert.equal(parseMemorySize('1.5gib'), 1.5 * 2 ** 30);
  assert.equal(parseMemorySize('4096'), 4096);
  assert.equal(parseMemorySize(' 2 kB '), 2000);
  for (const bad of ['', 'lots', '-1GB', '0', '8 GBs', '1e9', 'GB'])
    assert.throws(() => parseMemorySize(bad), /expected a positive size such as 8GB or 512MiB/, bad);
});

test('float32 weight bytes are four per parameter: pythia-12b is 47.4 GB', () => {
  const config: NeoXConfig = {
    ...pythiaArchitecture({ numLayers: 36, hiddenSize: 5120, numHeads: 40, vocabSize: 50688, maxPositions: 2048 }),
    dtype: 'float16',
  };
  const bytes = float32WeightBytes(config);
  assert.ok(bytes > 47.3e9 && bytes < 47.5e9, String(bytes));
});

test('streams exactly when the float32 weights exceed 70% of the budget', () => {
  const config: NeoXConfig = {
    ...pythiaArchitecture({ numLayers: 2, hiddenSize: 32, numHeads: 2, vocabSize: 100, maxPositions: 16 }),
    dtype: 'float32',
  };
  const w = float32WeightBytes(config);
  assert.equal(planMemory(config, Math.ceil(w / 0.7)).stream, false);
  const tight = planMemory(config, Math.floor(w / 0.7) - 1);
  assert.equal(tight.stream, true);
  assert.match(tight.reason!, /exceed 70% of --max-memory/);
  // Without --max-memory, the available memory decides.
  assert.equal(planMemory(config, undefined, 10 * w).stream, false);
  assert.match(planMemory(config, undefined, w).reason!, /exceed 70% of .* available$/);
  // Where nothing is known, resident.
  assert.equal(planMemory(config, undefined, undefined).stream, false);
});

test('the streamed activation budget is half of what the runtime and buffers leave, at least 64 MiB', () => {
  assert.equal(streamedActivationBytes(8 * 2 ** 30, 2 ** 30), (8 * 2 ** 30 - 512 * 2 ** 20 - 2 ** 30) / 2);
  assert.equal(streamedActivationBytes(2 ** 20, 2 ** 30), 64 * 2 ** 20);
  assert.equal(streamedActivationBytes(undefined, 2 ** 30), 2 ** 30);
});

test('the available memory is known on Linux and positive', () => {
  if (process.platform !== 'linux') return;
  const m = availableMemory();
  assert.ok(m !== undefined && m > 0);
});

test('a streamed run says why it streams, and when the budget is below what streaming itself needs', () => {
  const config: NeoXConfig = {
    ...pythiaArchitecture({ numLayers: 2, hiddenSize: 32, numHeads: 2, vocabSize: 100, maxPositions: 16 }),
    dtype: 'float32',
  };
  const tight = planMemory(config, 1000);
  assert.match(
    streamingMessage(tight, 2 ** 20),
    /^float32 weights of .* exceed 70% of --max-memory 1000 B: streaming one layer at a time \(streaming itself needs about 577\.0 MiB: the budget will be exceeded\)$/,
  );
  const roomy = planMemory(config, undefined, 1000);
  assert.match(streamingMessage({ ...roomy, budget: 2 ** 33 }, 2 ** 20), /streaming one layer at a time$/);
});
