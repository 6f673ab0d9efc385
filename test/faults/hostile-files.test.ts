/**
 * Small hostile files that used to exhaust memory, abort the process or load silently wrong: each
 * is now refused with one line naming the file and what is wrong, before any large allocation.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { trainBpe, writeTokenizerJson } from '../../src/data/bpe-trainer.js';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import { RandomAccessFile } from '../../src/formats/file-io.js';
import { openSafetensors, writeSafetensors } from '../../src/formats/index.js';
import {
  PICKLE_MEMORY_ALLOWANCE,
  PICKLE_MEMORY_PER_BYTE,
  PyDict,
  type UnpicklePolicy,
  unpickle,
} from '../../src/formats/pickle.js';
import { readZipDirectory } from '../../src/formats/zip.js';
import { loadCheckpoint, readConfig } from '../../src/model/checkpoint.js';
import { rotaryTables } from '../../src/model/rotary.js';
import { fixtureDir } from '../support/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'pythia-hostile-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** `fn` throws an error of class `name` whose message is one line matching `pattern`. */
async function refused(fn: () => unknown, name: string, pattern: RegExp): Promise<void> {
  await assert.rejects(
    async () => fn(),
    (e: Error) => {
      assert.equal(e.name, name, e.message);
      assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

/** A copy of a small checkpoint whose config.json `edit` changes. */
function checkpointWith(
  name: string,
  edit: (config: Record<string, unknown>) => Record<string, unknown> | string,
): string {
  const out = join(dir, name);
  cpSync(join(fixtureDir('parallel-r25'), 'model'), out, { recursive: true });
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
  const edited = edit(config);
  writeFileSync(join(out, 'config.json'), typeof edited === 'string' ? edited : JSON.stringify(edited));
  return out;
}

test('config.json: ten million layers, a billion positions, bos/eos outside the vocabulary, duplicate keys', async () => {
  await refused(
    () => loadCheckpoint(checkpointWith('layers', (c) => ({ ...c, num_hidden_layers: 1e7 }))),
    'ConfigError',
    /config\.json: num_hidden_layers is 10000000, more than the 4096 we support/,
  );
  await refused(
    () => loadCheckpoint(checkpointWith('positions', (c) => ({ ...c, max_position_embeddings: 1e9 }))),
    'ConfigError',
    /max_position_embeddings is 1000000000, more than the 1048576/,
  );
  await refused(
    () => readConfig(checkpointWith('vocab', (c) => ({ ...c, vocab_size: 2 ** 31 }))),
    'ConfigError',
    /vocab_size is 2147483648, more than/,
  );
  await refused(
    () => readConfig(checkpointWith('eos', (c) => ({ ...c, eos_token_id: 5000 }))),
    'ConfigError',
    /eos_token_id is 5000, expected a token id in \[0, 211\)/,
  );
  await refused(
    () => readConfig(checkpointWith('bos', (c) => ({ ...c, bos_token_id: -1 }))),
    'ConfigError',
    /bos_token_id is -1/,
  );
  const duplicate = checkpointWith('duplicate', (c) => JSON.stringify(c).replace(/^\{/, '{"num_hidden_layers": 99, '));
  await refused(
    () => readConfig(duplicate),
    'FormatError',
    /config\.json: not valid JSON: duplicate key "num_hidden_layers"/,
  );
});

test('a config.json that starts with a byte-order mark is refused in words, not by quoting the mark', async () => {
  // transformers refuses it too (Python's json: "Unexpected UTF-8 BOM").
  const bom = checkpointWith('bom', (c) => `\uFEFF${JSON.stringify(c)}`);
  await refused(
    () => readConfig(bom),
    'FormatError',
    /^[^\uFEFF]*config\.json: not valid JSON: starts with a UTF-8 byte-order mark \(U\+FEFF\)$/,
  );
});

test('a config.json that does not match its weights is refused before per-layer specs are built', async () => {
  const dir = checkpointWith('more-layers', (c) => ({ ...c, num_hidden_layers: 4000 }));
  await refused(
    () => loadCheckpoint(dir),
    'FormatError',
    /model\.safetensors: holds \d+ parameter tensors, but .*config\.json \(4000 layers\) implies 48004/,
  );
});

test('rotary tables too large to allocate are refused before allocating', async () => {
  await refused(
    () => rotaryTables(1e9, 16, 10000),
    'ConfigError',
    /rotary tables for max_position_embeddings 1000000000 × 16/,
  );
  assert.equal(rotaryTables(2048, 32, 10000).cos.length, 2048 * 32);
});

test('NaN or infinite weights are refused on load, naming the tensor', async () => {
  const original = loadCheckpoint(join(fixtureDir('parallel-r25'), 'model'));
  const source = openSafetensors(join(fixtureDir('parallel-r25'), 'model/model.safetensors'));
  const out = checkpointWith('nan', (c) => c);
  const tensors = source.list().map((info) => {
    const data = Float32Array.from(original.params.get(info.name)!);
    if (info.name === 'gpt_neox.layers.1.mlp.dense_h_to_4h.weight') data[7] = NaN;
    return { name: info.name, dtype: 'F32' as const, shape: info.shape, data };
  });
  source.close();
  await writeSafetensors(join(out, 'model.safetensors'), tensors);
  await refused(
    () => loadCheckpoint(out),
    'FormatError',
    /tensor gpt_neox\.layers\.1\.mlp\.dense_h_to_4h\.weight holds NaN at element 7: weights must be finite/,
  );
});

const noGlobals: UnpicklePolicy = { findGlobal: () => undefined, call: () => null, persistentLoad: () => null };

test('a pickle of ten million EMPTY_DICT (or MARK) opcodes is refused within a memory bound of its size', async () => {
  for (const opcode of [0x7d, 0x28, 0x5d]) {
    const n = 10_000_000;
    const bytes = new Uint8Array(n + 3);
    bytes.set([0x80, 2]);
    bytes.fill(opcode, 2, n + 2);
    bytes[n + 2] = 0x2e;
    const budget = PICKLE_MEMORY_ALLOWANCE + PICKLE_MEMORY_PER_BYTE * bytes.length;
    await refused(
      () => unpickle(bytes, 'bomb.pkl', noGlobals),
      'FormatError',
      new RegExp(
        `bomb\\.pkl: pickle byte \\d+: the pickle builds more objects than ${bytes.length} bytes .* \\(over ${budget} bytes of memory\\)`,
      ),
    );
  }
});

test('a real PyTorch state dict pickle is well inside the memory bound', () => {
  // The same archive read with three quarters of the bound and no fixed allowance still loads.
  const file = new RandomAccessFile(join(fixtureDir('sequential-r100'), 'model/pytorch_model.bin'));
  const record = [...readZipDirectory(file).values()].find((e) => e.name.endsWith('/data.pkl'))!;
  const pickle = file.read(record.dataOffset, record.size, 'data.pkl');
  file.close();
  const seen: string[] = [];
  const policy: UnpicklePolicy = {
    findGlobal: (module, name) => {
      seen.push(`${module}.${name}`);
      return `${module}.${name}`;
    },
    call: () => new PyDict(),
    persistentLoad: () => null,
  };
  assert.ok(unpickle(pickle, 'data.pkl', policy, { allowance: 0, perByte: 12 }) instanceof PyDict);
  assert.ok(seen.includes('torch._utils._rebuild_tensor_v2'));
});

test('a safetensors header of a million zero-size entries is refused without building them all', async () => {
  const entries = Array.from({ length: 200_000 }, (_, i) => `"t${i}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`);
  const header = Buffer.from(`{${entries.join(',')}}`);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  const path = join(dir, 'zero.safetensors');
  writeFileSync(path, Buffer.concat([length, header]));
  await refused(
    () => openSafetensors(path),
    'FormatError',
    /zero\.safetensors: header is not valid JSON: more than 1048576 values/,
  );
});

test('tokenizers: a largest id of 2^31−1 is refused; a regex that backtracks without end is one line, and we live on', async () => {
  const base = join(dir, 'tokenizer.json');
  await writeTokenizerJson(base, await trainBpe(['some words for a tokenizer ', 'aaaa bbbb'], { vocabSize: 280 }));
  const json = JSON.parse(readFileSync(base, 'utf8')) as {
    model: { vocab: Record<string, number> };
    pre_tokenizer: object;
  };
  const last = Object.entries(json.model.vocab).find(([, id]) => id === 279)![0];
  const hugePath = join(dir, 'huge-id.json');
  writeFileSync(
    hugePath,
    JSON.stringify({ ...json, model: { ...json.model, vocab: { ...json.model.vocab, [last]: 2 ** 31 - 1 } } }),
  );
  await refused(
    () => loadTokenizer(hugePath),
    'FormatError',
    /huge-id\.json: largest token id is 2147483647, more than a vocabulary of 4194304/,
  );

  const backtrackPath = join(dir, 'backtrack.json');
  const split = { type: 'Split', pattern: { Regex: '(a|aa)+$' }, behavior: 'Isolated', invert: false };
  writeFileSync(
    backtrackPath,
    JSON.stringify({ ...json, pre_tokenizer: { type: 'Sequence', pretokenizers: [split, json.pre_tokenizer] } }),
  );
  const tokenizer = await loadTokenizer(backtrackPath);
  assert.equal(tokenizer.splitsSafely, false);
  await refused(
    () => tokenizer.encode(`${'a'.repeat(100_000)}b`),
    'FormatError',
    /backtrack\.json: the tokenizer aborted while encoding \(Onig: .*\): its pre-tokenizer regex backtracks without end on this text$/,
  );
  // The encoder starts again for the next text.
  assert.deepEqual(await tokenizer.encode('aaaa'), await (await loadTokenizer(base)).encode('aaaa'));
});
