/**
 * Hugging Face `tokenizer.json` files (GPT-NeoX-20B's and ours), loaded with the official
 * `tokenizers` package (Rust, Node bindings). Encoding runs on the package's native thread pool.
 * `decode` is synchronous: ids become token strings through the vocabulary, then the tokenizer's
 * own decoder (also native) turns them into text, the same two steps the package's async decode
 * takes with special tokens kept.
 */
import { existsSync, readFileSync } from 'node:fs';
import { Tokenizer } from 'tokenizers';
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
  encode(text: string): Promise<number[]>;
  encodeBatch(texts: string[]): Promise<number[][]>;
  decode(ids: readonly number[]): string;
}

class HfTokenizer implements TextTokenizer {
  private readonly tokens: (string | undefined)[] = [];
  /** Largest id + 1: ids may have gaps, and this is the bound that dtypes and embeddings need. */
  readonly vocabSize: number;

  constructor(
    private readonly path: string,
    private readonly inner: Tokenizer,
    readonly eodId: number,
    readonly padId: number | undefined,
  ) {
    for (const [token, id] of Object.entries(inner.getVocab(true))) this.tokens[id] = token;
    this.vocabSize = this.tokens.length;
  }

  async encode(text: string): Promise<number[]> {
    return (await this.inner.encode(text)).getIds();
  }

  async encodeBatch(texts: string[]): Promise<number[][]> {
    if (texts.length === 0) return [];
    return (await this.inner.encodeBatch(texts)).map((encoding) => encoding.getIds());
  }

  decode(ids: readonly number[]): string {
    const tokens = ids.map((id) => {
      const token = Number.isInteger(id) ? this.tokens[id] : undefined;
      if (token === undefined) throw new DataError(`token id ${id} is not in the vocabulary of ${this.path} (size ${this.vocabSize})`);
      return token;
    });
    const decoder = this.inner.getDecoder();
    return decoder ? decoder.decode(tokens) : tokens.join(' ');
  }
}

export async function loadTokenizer(path: string): Promise<TextTokenizer> {
  if (!existsSync(path)) throw new FormatError(path, 'tokenizer file not found');
  try {
    JSON.parse(readFileSync(path, 'utf8'));
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
  if (eodId === null || eodId === undefined) throw new FormatError(path, `added_tokens: expected the end-of-document token ${EOD_TOKEN}`);
  const padId = inner.tokenToId(PAD_TOKEN) ?? undefined;
  return new HfTokenizer(path, inner, eodId, padId);
}
