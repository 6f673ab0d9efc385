/**
 * The child process that encodes for a TextTokenizer (src/data/tokenizer.ts). A tokenizer.json
 * whose pre-tokenizer regex backtracks without end makes the native library abort (a panic that
 * does not unwind); here it can only end this process, and the parent reports it as one line.
 *
 * Messages in: { id, texts }; out: { id, ids: Int32Array[] } or { id, error }.
 */
import { Tokenizer } from 'tokenizers';

interface Request {
  id: number;
  texts: string[];
}

const tokenizer = Tokenizer.fromFile(process.argv[2]!);

process.on('message', (request: Request) => {
  tokenizer.encodeBatch(request.texts).then(
    (encodings) => process.send!({ id: request.id, ids: encodings.map((e) => Int32Array.from(e.getIds())) }),
    (e: unknown) =>
      process.send!({ id: request.id, error: (e instanceof Error ? e.message : String(e)).split('\n')[0] }),
  );
});
process.on('disconnect', () => process.exit(0));
