import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { EOD_TOKEN, learnMerges, PAD_TOKEN, WordCounter, writeTokenizerJson } from '../../data/bpe-trainer.js';
import { readCorpus, validateTxtMode } from '../../data/corpus.js';
import { loadTokenizer } from '../../data/tokenizer.js';
import { ConfigError } from '../../util/errors.js';
import { addTokenizerOption, positiveInt, requiredTokenizer, type TokenizerFlags } from '../arguments.js';
import { byteProgressBar, humanCount, totalBytes } from './data.js';

export function registerTokenizer(program: Command): void {
  const tokenizer = program
    .command('tokenizer')
    .description('train, inspect and use Hugging Face tokenizer.json files');

  tokenizer
    .command('train')
    .description(
      `train a byte-level BPE tokenizer shaped like GPT-NeoX-20B's (${EOD_TOKEN} = 0 is the EOD, ${PAD_TOKEN} = 1) and write a standard tokenizer.json`,
    )
    .requiredOption('--input <files...>', 'corpus files: .txt, .jsonl, .txt.zst or .jsonl.zst')
    .requiredOption(
      '--vocab-size <n>',
      'total vocabulary size, the 2 special tokens and 256 bytes included',
      positiveInt,
    )
    .requiredOption('--out <file>', 'where to write tokenizer.json')
    .option('--text-field <name>', 'JSON field holding the text in .jsonl input', 'text')
    .option(
      '--txt-mode <mode>',
      '.txt documents: "blocks" (separated by blank lines) or "file" (one per file)',
      'blocks',
    )
    .option('--nfc', 'NFC-normalize text, and write an NFC normalizer, as GPT-NeoX-20B does', false)
    .option('--skip-invalid', 'skip invalid JSON lines (and count them) instead of stopping', false)
    .action(
      async (opts: {
        input: string[];
        vocabSize: number;
        out: string;
        textField: string;
        txtMode: string;
        nfc: boolean;
        skipInvalid: boolean;
      }) => {
        const txtMode = validateTxtMode(opts.txtMode);
        const counter = new WordCounter([EOD_TOKEN, PAD_TOKEN], opts.nfc);
        const total = totalBytes(opts.input);
        const reading = byteProgressBar('read ', '{docs} docs | {words} distinct words');
        let bytes = 0;
        let docs = 0;
        reading.start(total, 0, { docs: '0', words: '0' });
        try {
          for await (const record of readCorpus(opts.input, {
            textField: opts.textField,
            txtMode,
            skipInvalid: opts.skipInvalid,
            onBytes: (n) => (bytes += n),
          })) {
            counter.add(record.text);
            if (++docs % 1000 === 0)
              reading.update(bytes, { docs: humanCount(docs), words: humanCount(counter.counts.size) });
          }
          reading.update(total, { docs: humanCount(docs), words: humanCount(counter.counts.size) });
        } finally {
          reading.stop();
        }

        const merging = new cliProgress.SingleBar(
          {
            format: 'merge |{bar}| {value}/{total} tokens | ETA {eta_formatted}',
            stream: process.stderr,
            hideCursor: true,
          },
          cliProgress.Presets.shades_classic,
        );
        merging.start(opts.vocabSize, 0);
        let model: ReturnType<typeof learnMerges>;
        try {
          model = learnMerges(counter, {
            vocabSize: opts.vocabSize,
            nfc: opts.nfc,
            onProgress: (size) => merging.update(size),
          });
          merging.update(model.vocab.length);
        } finally {
          merging.stop();
        }
        await writeTokenizerJson(opts.out, model);
        process.stdout.write(
          `wrote ${opts.out}: ${model.vocab.length} tokens (${model.merges.length} merges) from ${docs} documents, ${counter.counts.size} distinct words\n`,
        );
        if (model.exhausted) {
          process.stderr.write(
            `pythia: note: the corpus ran out of pairs to merge; the vocabulary has ${model.vocab.length} tokens, not ${opts.vocabSize}\n`,
          );
        }
      },
    );

  addTokenizerOption(
    tokenizer.command('encode').description('print the token ids of a text (as a JSON array)'),
    'a Hugging Face tokenizer.json (required)',
  )
    .argument('<text>', 'the text to encode')
    .action(async (text: string, opts: TokenizerFlags) => {
      const tok = await loadTokenizer(requiredTokenizer(opts));
      process.stdout.write(`${JSON.stringify(await tok.encode(text))}\n`);
    });

  addTokenizerOption(
    tokenizer
      .command('decode')
      .description('print the text of token ids (given as separate arguments or one JSON array)'),
    'a Hugging Face tokenizer.json (required)',
  )
    .argument('<ids...>', 'token ids, e.g. 510 3158 or "[510, 3158]"')
    .action(async (args: string[], opts: TokenizerFlags) => {
      const tok = await loadTokenizer(requiredTokenizer(opts));
      const ids = parseIds(args.join(' '));
      process.stdout.write(`${tok.decode(ids)}\n`);
    });
}

function parseIds(text: string): number[] {
  const parts = text
    .replace(/[[\],]/g, ' ')
    .trim()
    .split(/\s+/)
    .filter((s) => s);
  return parts.map((p) => {
    if (!/^\d+$/.test(p)) throw new ConfigError(`<ids>: expected non-negative integer token ids, got "${p}"`);
    return Number(p);
  });
}
