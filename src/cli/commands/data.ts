import { statSync } from 'node:fs';
import cliProgress from 'cli-progress';
import { type Command, InvalidArgumentError } from 'commander';
import { validateTxtMode } from '../../data/corpus.js';
import { dedupCorpus } from '../../data/dedup.js';
import { tokenizeCorpus } from '../../data/tokenize.js';
import { loadTokenizer } from '../../data/tokenizer.js';
import { addTokenizerOption, nonNegativeInt, positiveInt, requiredTokenizer } from '../arguments.js';

function parseFraction(value: string): number {
  const x = Number(value);
  if (!(x > 0 && x <= 1)) throw new InvalidArgumentError('expected a number in (0, 1].');
  return x;
}

export function humanCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}

/** Total size of the input files, the denominator of progress bars over bytes read. */
export function totalBytes(paths: readonly string[]): number {
  return paths.reduce((sum, p) => sum + statSync(p).size, 0);
}

/** A progress bar on stderr (drawn only when stderr is a terminal) over bytes read, with a caller's tail. */
export function byteProgressBar(label: string, tail: string): cliProgress.SingleBar {
  return new cliProgress.SingleBar(
    {
      format: `${label} |{bar}| {percentage}% | ${tail} | ETA {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
}

export function registerData(program: Command): void {
  const data = program
    .command('data')
    .description('prepare corpora: tokenize into GPT-NeoX .bin/.idx datasets, remove near-duplicates');

  const tokenize = data
    .command('tokenize')
    .description(
      'tokenize documents into <out>.bin/<out>.idx (GPT-NeoX MMapIndexedDataset, one item per document, uint16 when the vocabulary fits, else int32)',
    )
    .requiredOption('--input <files...>', 'corpus files: .txt, .jsonl, .txt.zst or .jsonl.zst');
  addTokenizerOption(tokenize, 'a Hugging Face tokenizer.json, e.g. from `pythia tokenizer train` (required)')
    .requiredOption('--out <prefix>', 'output path prefix; writes <prefix>.bin and <prefix>.idx')
    .option(
      '--append-eod',
      'append <|endoftext|> to every document, as GPT-NeoX preprocess_data.py --append-eod',
      false,
    )
    .option('--text-field <name>', 'JSON field holding the text in .jsonl input', 'text')
    .option(
      '--txt-mode <mode>',
      '.txt documents: "blocks" (separated by blank lines) or "file" (one per file)',
      'blocks',
    )
    .option('--skip-invalid', 'skip invalid JSON lines (and count them) instead of stopping', false)
    .option('--workers <n>', 'native encoder threads (default: one per core)', positiveInt)
    .option('--json', 'print the summary as JSON')
    .action(
      async (opts: {
        input: string[];
        tokenizer?: string;
        vocabFile?: string;
        json?: boolean;
        out: string;
        appendEod: boolean;
        textField: string;
        txtMode: string;
        skipInvalid: boolean;
        workers?: number;
      }) => {
        // The encoder's thread pool (rayon) reads this once, when it first starts.
        if (opts.workers !== undefined) process.env.RAYON_NUM_THREADS = String(opts.workers);
        const txtMode = validateTxtMode(opts.txtMode);
        const tokenizer = await loadTokenizer(requiredTokenizer(opts));
        const total = totalBytes(opts.input);
        const bar = byteProgressBar('tokenize', '{docs} docs | {tokens} tokens | {rate} tok/s');
        const start = performance.now();
        bar.start(total, 0, { docs: '0', tokens: '0', rate: '0' });
        try {
          const summary = await tokenizeCorpus({
            inputs: opts.input,
            tokenizer,
            out: opts.out,
            appendEod: opts.appendEod,
            textField: opts.textField,
            txtMode,
            skipInvalid: opts.skipInvalid,
            onProgress: (p) => {
              const seconds = (performance.now() - start) / 1000;
              bar.update(p.bytesRead, {
                docs: humanCount(p.documents),
                tokens: humanCount(p.tokens),
                rate: humanCount(p.tokens / Math.max(seconds, 1e-3)),
              });
            },
          });
          bar.update(total);
          bar.stop();
          const seconds = (performance.now() - start) / 1000;
          if (opts.json) {
            const eod = opts.appendEod ? tokenizer.eodId : null;
            process.stdout.write(
              `${JSON.stringify({ ...summary, bin: `${summary.prefix}.bin`, idx: `${summary.prefix}.idx`, eodAppended: eod, seconds }, null, 2)}\n`,
            );
            return;
          }
          const notes = [
            summary.emptyDocuments > 0 ? `${summary.emptyDocuments} empty documents dropped` : '',
            summary.invalidLines > 0 ? `${summary.invalidLines} invalid lines skipped` : '',
          ].filter((s) => s);
          process.stdout.write(
            `wrote ${summary.prefix}.bin and ${summary.prefix}.idx: ${summary.documents} documents, ${summary.tokens} tokens (${summary.dtype}` +
              `${opts.appendEod ? `, EOD ${tokenizer.eodId} appended` : ', no EOD'}) in ${seconds.toFixed(1)} s` +
              `${notes.length ? `; ${notes.join(', ')}` : ''}\n`,
          );
        } catch (e) {
          bar.stop();
          throw e;
        }
      },
    );

  data
    .command('dedup')
    .description(
      "remove near-duplicate documents with MinHash LSH (Pythia's deduplicated Pile used Jaccard 0.87): the first of each group is kept",
    )
    .requiredOption('--input <files...>', 'corpus files: .txt, .jsonl, .txt.zst or .jsonl.zst')
    .requiredOption('--out <file.jsonl>', 'kept documents, one JSON object per line (.jsonl objects are copied whole)')
    .option(
      '--report <file.jsonl>',
      'removed documents, one JSON line each: which kept document they duplicate and the estimated Jaccard (default: <out without .jsonl>.removed.jsonl)',
    )
    .option('--threshold <j>', 'Jaccard similarity at or above which a document is a duplicate', parseFraction, 0.87)
    .option('--shingle <words>', 'words per shingle', positiveInt, 5)
    .option('--permutations <n>', 'MinHash permutations (signature length)', positiveInt, 128)
    .option(
      '--bands <b>',
      'LSH bands (rows = permutations / bands); default: the optimum for the threshold',
      positiveInt,
    )
    .option('--seed <n>', 'seed of the MinHash permutations', nonNegativeInt, 1)
    .option(
      '--text-field <name>',
      'JSON field holding the text in .jsonl input (also the field written for .txt input)',
      'text',
    )
    .option(
      '--txt-mode <mode>',
      '.txt documents: "blocks" (separated by blank lines) or "file" (one per file)',
      'blocks',
    )
    .option('--skip-invalid', 'skip invalid JSON lines (and count them) instead of stopping', false)
    .option('--json', 'print the summary as JSON')
    .action(
      async (opts: {
        input: string[];
        out: string;
        json?: boolean;
        report?: string;
        threshold: number;
        shingle: number;
        permutations: number;
        bands?: number;
        seed: number;
        textField: string;
        txtMode: string;
        skipInvalid: boolean;
      }) => {
        const txtMode = validateTxtMode(opts.txtMode);
        const report = opts.report ?? `${opts.out.replace(/\.jsonl$/, '')}.removed.jsonl`;
        const total = totalBytes(opts.input);
        const bar = byteProgressBar('dedup', '{docs} docs | {removed} removed');
        bar.start(total, 0, { docs: '0', removed: '0' });
        try {
          const summary = await dedupCorpus({
            inputs: opts.input,
            out: opts.out,
            report,
            threshold: opts.threshold,
            shingle: opts.shingle,
            permutations: opts.permutations,
            bands: opts.bands,
            seed: opts.seed,
            textField: opts.textField,
            txtMode,
            skipInvalid: opts.skipInvalid,
            onProgress: (p) =>
              bar.update(p.bytesRead, { docs: humanCount(p.documents), removed: humanCount(p.removed) }),
          });
          bar.update(total);
          bar.stop();
          if (opts.json) {
            process.stdout.write(
              `${JSON.stringify({ ...summary, out: opts.out, report, threshold: opts.threshold, shingle: opts.shingle, permutations: opts.permutations, seed: opts.seed }, null, 2)}\n`,
            );
            return;
          }
          const { bands: b, rows } = summary.lsh;
          process.stdout.write(
            `kept ${summary.kept} of ${summary.documents} documents, removed ${summary.removed} near-duplicates ` +
              `(Jaccard ≥ ${opts.threshold}, ${opts.shingle}-word shingles, ${opts.permutations} permutations, ${b} bands × ${rows} rows, seed ${opts.seed})\n` +
              `kept: ${opts.out}\nremoved, with the kept document each duplicates and the estimated Jaccard: ${report}\n` +
              (summary.invalidLines > 0 ? `${summary.invalidLines} invalid lines skipped\n` : ''),
          );
        } catch (e) {
          bar.stop();
          throw e;
        }
      },
    );
}
