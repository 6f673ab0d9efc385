/**
 * Hugging Face `tokenizer.json` files (GPT-NeoX-20B's and ours), loaded with the official
 * `tokenizers` package (Rust, Node bindings). Encoding runs on the package's native thread pool in
 * a child process (src/data/tokenizer-process.ts), where a native abort (a regex that backtracks
 * without end) cannot take this process down: it becomes a one-line FormatError.
 * `decode` is synchronous: ids become token strings through the vocabulary, then the tokenizer's
 * own decoder (also native) turns them into text, the same two steps the package's async decode
 * takes with special tokens kept.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { Tokenizer } from 'tokenizers';
import { parseJsonFile } from '../formats/strict-json.js';
import { DataError, FormatError } from '../util/errors.js';

export const EOD_TOKEN = '<|endoftext|>';
export const PAD_TOKEN = '<|padding|>';

export interface TextTokenizer {
  /** Vocabulary size including added/special tokens (largest id + 1). */
  readonly vocabSize: number;
  /** Id of `<|endoftext|>`. */
  readonly eodId: number;
  /** Id of `<|padding|>` if present. */
  readonly padId: number | undefined;
  /**
   * Whether a text may be encoded in pieces cut at the places `isSafeCut` (src/data/tokenize.ts)
   * allows, giving exactly the ids of the whole (see `safeToSplit`).
   */
  readonly splitsSafely: boolean;
  encode(text: string): Promise<number[]>;
  encodeBatch(texts: string[]): Promise<number[][]>;
  decode(ids: readonly number[]): string;
}

/** Largest vocabulary we accept (largest id + 1): far above any real one, far below 2^31. */
export const MAX_VOCAB_SIZE = 1 << 22;

class HfTokenizer implements TextTokenizer {
  private readonly tokens: (string | undefined)[] = [];
  private readonly encoder: EncoderProcess;
  /** Largest id + 1: ids may have gaps, and this is the bound that dtypes and embeddings need. */
  readonly vocabSize: number;

  constructor(
    private readonly path: string,
    private readonly inner: Tokenizer,
    readonly eodId: number,
    readonly padId: number | undefined,
    readonly splitsSafely: boolean,
  ) {
    const vocab = Object.entries(inner.getVocab(true));
    let largest = -1;
    for (const [, id] of vocab) largest = Math.max(largest, id);
    if (largest + 1 > MAX_VOCAB_SIZE) {
      throw new FormatError(
        path,
        `largest token id is ${largest}, more than a vocabulary of ${MAX_VOCAB_SIZE} (the most we support) needs`,
      );
    }
    for (const [token, id] of vocab) this.tokens[id] = token;
    this.vocabSize = this.tokens.length;
    this.encoder = new EncoderProcess(path);
  }

  async encode(text: string): Promise<number[]> {
    return (await this.encodeBatch([text]))[0]!;
  }

  async encodeBatch(texts: string[]): Promise<number[][]> {
    if (texts.length === 0) return [];
    return (await this.encoder.encode(texts)).map((ids) => Array.from(ids));
  }

  decode(ids: readonly number[]): string {
    const tokens = ids.map((id) => {
      const token = Number.isInteger(id) ? this.tokens[id] : undefined;
      if (token === undefined)
        throw new DataError(`token id ${id} is not in the vocabulary of ${this.path} (size ${this.vocabSize})`);
      return token;
    });
    const decoder = this.inner.getDecoder();
    return decoder ? decoder.decode(tokens) : tokens.join(' ');
  }
}

export async function loadTokenizer(path: string): Promise<TextTokenizer> {
  if (!existsSync(path)) throw new FormatError(path, 'tokenizer file not found');
  let json: unknown;
  try {
    json = parseJsonFile(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new FormatError(path, `not a tokenizer.json: invalid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  let inner: Tokenizer;
  try {
    inner = Tokenizer.fromFile(path);
  } catch (e) {
    const message = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    throw new FormatError(path, `not a Hugging Face tokenizer.json (${message})`);
  }
  const eodId = inner.tokenToId(EOD_TOKEN);
  if (eodId === null || eodId === undefined)
    throw new FormatError(path, `added_tokens: expected the end-of-document token ${EOD_TOKEN}`);
  const padId = inner.tokenToId(PAD_TOKEN) ?? undefined;
  return new HfTokenizer(path, inner, eodId, padId, safeToSplit(json));
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * True for the tokenizers where cutting a text after a "\n", or before a " ", that has a letter,
 * number, punctuation or symbol on each side changes no id: byte-level BPE with GPT-2's
 * pre-tokenizer regex (GPT-NeoX-20B's and ours), no prefix space, no normalizer but NFC, no
 * post-processor that adds tokens, and no added token that strips the whitespace around it or
 * could match across such a cut (one holding a newline, or a space other than runs of two or more
 * spaces only, as GPT-NeoX-20B's whitespace tokens are). There no pre-token holds a non-space
 * character followed by whitespace, so the pieces pre-tokenize as the whole does; BPE never merges
 * across pre-tokens, and NFC never composes with a newline or a space.
 */
export function safeToSplit(json: unknown): boolean {
  if (!isObject(json)) return false;
  const {
    normalizer,
    pre_tokenizer: pre,
    post_processor: post,
    model,
    added_tokens: added,
    truncation,
    padding,
  } = json;
  const normalizerOk =
    normalizer === null || normalizer === undefined || (isObject(normalizer) && normalizer.type === 'NFC');
  const preOk = isObject(pre) && pre.type === 'ByteLevel' && pre.add_prefix_space === false && pre.use_regex !== false;
  const postOk = post === null || post === undefined || (isObject(post) && post.type === 'ByteLevel');
  const modelOk = isObject(model) && model.type === 'BPE' && (model.dropout === null || model.dropout === undefined);
  const spacesOnly = (s: string): boolean => /^ {2,}$/.test(s);
  const addedOk =
    Array.isArray(added) &&
    added.every(
      (t) =>
        isObject(t) &&
        typeof t.content === 'string' &&
        !t.content.includes('\n') &&
        (!t.content.includes(' ') || spacesOnly(t.content)) &&
        t.lstrip !== true &&
        t.rstrip !== true,
    );
  const noExtras = (truncation === null || truncation === undefined) && (padding === null || padding === undefined);
  return normalizerOk && preOk && postOk && modelOk && addedOk && noExtras;
}

interface EncodeReply {
  id: number;
  ids?: Int32Array[];
  error?: string;
}

/** The encoding child process, started on first use; it holds the parent open only while it works. */
class EncoderProcess {
  private child: ChildProcess | undefined;
  private readonly pending = new Map<number, { resolve: (ids: Int32Array[]) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private stderr = '';

  constructor(private readonly path: string) {}

  encode(texts: string[]): Promise<Int32Array[]> {
    const child = this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.hold(true);
      child.send({ id, texts });
    });
  }

  private hold(busy: boolean): void {
    const child = this.child;
    if (!child) return;
    const handles = [child, child.channel, child.stderr] as ({ ref(): void; unref(): void } | null | undefined)[];
    for (const h of handles) if (h) busy ? h.ref() : h.unref();
  }

  private start(): ChildProcess {
    if (this.child) return this.child;
    const child = fork(new URL('./tokenizer-process.js', import.meta.url), [this.path], {
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => (this.stderr = (this.stderr + chunk).slice(-16384)));
    child.on('message', (reply: EncodeReply) => {
      const waiting = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (this.pending.size === 0) this.hold(false);
      if (!waiting) return;
      if (reply.ids) waiting.resolve(reply.ids);
      else waiting.reject(new FormatError(this.path, `cannot encode: ${reply.error}`));
    });
    const failAll = (failure: Error): void => {
      this.child = undefined;
      for (const waiting of this.pending.values()) waiting.reject(failure);
      this.pending.clear();
    };
    child.on('error', failAll);
    // 'close' comes after the exit and after stderr is read to its end.
    child.on('close', (code, signal) => {
      const panic = panicMessage(this.stderr);
      const reason = panic ?? this.stderr.trim().split('\n').at(-1) ?? '';
      const hint =
        panic && /regex|onig|retry-limit/i.test(panic)
          ? ': its pre-tokenizer regex backtracks without end on this text'
          : '';
      failAll(
        new FormatError(
          this.path,
          `the tokenizer aborted while encoding (${reason || `exit ${signal ?? code}`})${hint}`,
        ),
      );
    });
    this.child = child;
    return child;
  }
}

/** The message of a Rust panic (the line after "panicked at"), if stderr holds one. */
function panicMessage(stderr: string): string | undefined {
  const lines = stderr.split('\n');
  const at = lines.findIndex((l) => l.includes('panicked at'));
  return at >= 0 ? lines[at + 1]?.trim() || undefined : undefined;
}
