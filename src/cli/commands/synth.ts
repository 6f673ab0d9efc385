import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { DEFAULT_OPTIONS, type SynthOptions } from '../../synth/corpus.js';
import { DEFAULT_MIX, formatMix, parseMix, SOURCES } from '../../synth/mix.js';
import { type SynthProgress, type SynthStage, type SynthSummary, synthesize } from '../../synth/synthesize.js';
import { ConfigError } from '../../util/errors.js';

interface SynthFlags {
  out: string;
  seed: string;
  tokens?: string;
  documents?: string;
  vocabSize: string;
  mix?: string;
  entities: string;
  entityZipf: string;
  operandZipf: string;
  canariesPerLevel: string;
  json?: boolean;
}

function numberFlag(flag: string, text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw new ConfigError(`${flag}: expected a number, got "${text}"`);
  return value;
}

export function synthOptionsFromFlags(flags: SynthFlags): SynthOptions {
  if (flags.tokens !== undefined && flags.documents !== undefined) {
    throw new ConfigError('--tokens and --documents: give one size, not both');
  }
  return {
    ...DEFAULT_OPTIONS,
    seed: numberFlag('--seed', flags.seed),
    tokens: flags.tokens !== undefined ? numberFlag('--tokens', flags.tokens) : DEFAULT_OPTIONS.tokens,
    documents: flags.documents !== undefined ? numberFlag('--documents', flags.documents) : undefined,
    vocabSize: numberFlag('--vocab-size', flags.vocabSize),
    mix: flags.mix !== undefined ? parseMix(flags.mix) : DEFAULT_MIX,
    entities: numberFlag('--entities', flags.entities),
    entityZipf: numberFlag('--entity-zipf', flags.entityZipf),
    operandZipf: numberFlag('--operand-zipf', flags.operandZipf),
    canariesPerLevel: numberFlag('--canaries-per-level', flags.canariesPerLevel),
  };
}

const STAGE_LABELS: Record<SynthStage, string> = {
  generate: 'generating documents',
  corpus: 'writing corpus.jsonl',
  tasks: 'writing tasks',
  tokenizer: 'training the tokenizer',
  tokenize: 'tokenizing',
  truth: 'writing truth.json',
};

/** One stderr line per stage; a bar for the stages that count documents, when stderr is a terminal. */
function progressReporter(): { report: (p: SynthProgress) => void; stop: () => void } {
  let stage: SynthStage | undefined;
  let bar: cliProgress.SingleBar | undefined;
  const stop = (): void => {
    bar?.stop();
    bar = undefined;
  };
  const report = (p: SynthProgress): void => {
    if (p.stage !== stage) {
      stop();
      stage = p.stage;
      if (p.total !== undefined && process.stderr.isTTY) {
        bar = new cliProgress.SingleBar(
          {
            format: `synth: ${STAGE_LABELS[p.stage]} [{bar}] {value}/{total} documents`,
            stream: process.stderr,
            hideCursor: true,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(p.total, p.done ?? 0);
      } else {
        process.stderr.write(`synth: ${STAGE_LABELS[p.stage]}\n`);
      }
    } else if (p.done !== undefined) {
      bar?.update(p.done);
    }
  };
  return { report, stop };
}

export function formatSummary(s: SynthSummary): string {
  const lines = [
    `wrote ${s.out}: ${s.documents} documents, ${s.tokens} tokens (EOD included), vocabulary ${s.vocabSize}`,
  ];
  for (const source of SOURCES) {
    lines.push(
      `  ${source.padEnd(12)} ${String(s.documentsBySource[source]).padStart(9)} documents ${String(s.tokensBySource[source]).padStart(11)} tokens`,
    );
  }
  lines.push(`  ${s.entities} entities, ${s.canaries} canaries`);
  lines.push(`files: ${s.files.join(', ')}`);
  return `${lines.join('\n')}\n`;
}

/** Registers `pythia synth`. */
export function registerSynth(program: Command): void {
  program
    .command('synth')
    .description(
      'Generate the synthetic mini-Pile with known ground truth: corpus.jsonl, tasks/*.jsonl, truth.json, ' +
        'a trained tokenizer.json and the tokenized dataset data/corpus_text_document.bin/.idx (same seed, same bytes)',
    )
    .requiredOption('--out <dir>', 'output folder (created if missing; files of the same names are replaced)')
    .option('--seed <n>', 'seed of the generator, 0 to 2^32-1', String(DEFAULT_OPTIONS.seed))
    .option(
      '--tokens <n>',
      `corpus size in pre-tokens (words and punctuation; BPE tokens come out a few percent higher) (default: ${DEFAULT_OPTIONS.tokens})`,
    )
    .option('--documents <n>', 'exact number of documents instead of --tokens (narrative fills the remainder)')
    .option(
      '--vocab-size <n>',
      'vocabulary of the trained tokenizer, special tokens included',
      String(DEFAULT_OPTIONS.vocabSize),
    )
    .option(
      '--mix <weights>',
      `source weights in pre-tokens, e.g. facts=0.3,narrative=0.7 (unnamed sources get 0; scaled to sum to 1) (default: ${formatMix(DEFAULT_MIX)})`,
    )
    .option(
      '--entities <n>',
      'most entities in the facts source (fewer if the rarest would get no mention)',
      String(DEFAULT_OPTIONS.entities),
    )
    .option('--entity-zipf <s>', 'Zipf exponent of entity mention counts', String(DEFAULT_OPTIONS.entityZipf))
    .option(
      '--operand-zipf <s>',
      'Zipf exponent of arithmetic operand frequencies',
      String(DEFAULT_OPTIONS.operandZipf),
    )
    .option(
      '--canaries-per-level <n>',
      'canaries at each duplication level 1, 2, 4, ...',
      String(DEFAULT_OPTIONS.canariesPerLevel),
    )
    .option('--json', 'print the summary as JSON')
    .action(async (flags: SynthFlags) => {
      const options = synthOptionsFromFlags(flags);
      const progress = progressReporter();
      try {
        const summary = await synthesize(flags.out, options, progress.report);
        progress.stop();
        process.stdout.write(flags.json ? `${JSON.stringify(summary, null, 2)}\n` : formatSummary(summary));
      } finally {
        progress.stop();
      }
    });
}
