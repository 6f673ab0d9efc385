/**
 * The case studies' flags, made from the STUDIES table (src/results/studies.ts) for `pythia eval`
 * and `pythia run` alike: `--studies a,b,c`, each study's shorthand (`--memorization <sequences>`,
 * `--canaries`, `--term-counts`; `--memorization 0` leaves memorization out), and the settings,
 * each with its one default.
 */
import { resolve } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { ATTENTION_MAX_TOKENS } from '../results/attention-study.js';
import {
  DEFAULT_STUDY_SETTINGS,
  parseStudies,
  STUDIES,
  STUDY_NAMES,
  type StudyDefinition,
  type StudyName,
  type StudySettings,
} from '../results/studies.js';
import { NANO_TUNED_LENS_STUDY } from '../results/tuned-lens-study.js';
import { nonNegativeInt, nonNegativeNumber, positiveInt, probability } from './arguments.js';

function studyList(value: string): StudyName[] {
  if (value.trim() === 'none') return [];
  try {
    return parseStudies(value);
  } catch (e) {
    throw new InvalidArgumentError(`${(e as Error).message}.`);
  }
}

/** commander's camel-case key of a flag: `--term-counts` → `termCounts`. */
function flagKey(name: string): string {
  return name.replace(/^--/, '').replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/** Adds the study flags; `selected` is what runs without any (eval: none, run: every study). */
export function addStudyOptions(cmd: Command, selected: readonly StudyName[]): Command {
  cmd.option(
    '--studies <list>',
    `case studies to record, comma-separated: ${STUDY_NAMES.join(', ')}, or none (default: ${selected.length > 0 ? selected.join(',') : 'none'})`,
    studyList,
  );
  for (const name of STUDY_NAMES) {
    const { flag, description }: StudyDefinition = STUDIES[name];
    if (flag.value)
      cmd.option(
        `${flag.name} ${flag.value.placeholder}`,
        `the ${name} study: ${description} (0: without it; default ${DEFAULT_STUDY_SETTINGS[flag.value.setting]})`,
        nonNegativeInt,
      );
    else cmd.option(flag.name, `the ${name} study: ${description}`);
  }
  return cmd
    .option(
      '--window <n>',
      'training-order indices per window of the Poisson test',
      positiveInt,
      DEFAULT_STUDY_SETTINGS.window,
    )
    .option(
      '--held-out-rows <n>',
      'rows of held-out tokens for the studies that read unseen text',
      positiveInt,
      DEFAULT_STUDY_SETTINGS.heldOutRows,
    )
    .option(
      '--held-out-length <n>',
      "tokens per held-out row (at most a training sample's, seq-length + 1)",
      positiveInt,
      DEFAULT_STUDY_SETTINGS.heldOutLength,
    )
    .option(
      '--learned-ratio <r>',
      'token-curves: a token is learned when its loss stays below this fraction of its step-0 loss, in (0, 1]',
      probability,
      DEFAULT_STUDY_SETTINGS.learnedRatio,
    )
    .option(
      '--tuned-lens-steps <n>',
      `the tuned lens's training steps (default ${DEFAULT_STUDY_SETTINGS.tunedLensSteps}, tuned-lens's; the nano suite's pythia run ${NANO_TUNED_LENS_STUDY.tunedLensSteps})`,
      positiveInt,
    )
    .option(
      '--tuned-lens-lr <x>',
      `the tuned lens's lr scale: SGD's learning rate is x × (1 − momentum 0.9), decayed linearly (default ${DEFAULT_STUDY_SETTINGS.tunedLensLr}, tuned-lens's)`,
      nonNegativeNumber,
    )
    .option(
      '--tuned-lens-tokens-per-step <n>',
      `held-out tokens per tuned-lens training step, whole rows (default ${DEFAULT_STUDY_SETTINGS.tunedLensTokensPerStep}, tuned-lens's; the nano suite's pythia run ${NANO_TUNED_LENS_STUDY.tunedLensTokensPerStep})`,
      positiveInt,
    )
    .option(
      '--held-out-data <prefix>',
      "held-out text as a tokenized dataset (.bin/.idx prefix), read from its start (default: each checkpoint's own validation batches; required for hub checkpoints)",
    )
    .option(
      '--attention-text <text>',
      `the attention study's text, its first ${ATTENTION_MAX_TOKENS} tokens (default: ${JSON.stringify(DEFAULT_STUDY_SETTINGS.attentionText)})`,
      DEFAULT_STUDY_SETTINGS.attentionText,
    );
}

/** The studies and settings the flags ask for. */
export function studyFlags(
  flags: Record<string, unknown>,
  selected: readonly StudyName[],
): { studies: StudyName[]; settings: Partial<StudySettings> } {
  const chosen = new Set<StudyName>((flags.studies as StudyName[] | undefined) ?? selected);
  const settings: Partial<StudySettings> = {
    window: flags.window as number,
    heldOutRows: flags.heldOutRows as number,
    heldOutLength: flags.heldOutLength as number,
    learnedRatio: flags.learnedRatio as number,
    attentionText: flags.attentionText as string,
  };
  // Only where given: the nano suite's pythia run has its own tuned-lens defaults.
  for (const name of ['tunedLensSteps', 'tunedLensLr', 'tunedLensTokensPerStep'] as const)
    if (flags[name] !== undefined) settings[name] = flags[name] as number;
  if (flags.heldOutData !== undefined) settings.heldOutData = resolve(flags.heldOutData as string);
  for (const name of STUDY_NAMES) {
    const { flag }: StudyDefinition = STUDIES[name];
    const given = flags[flagKey(flag.name)];
    if (given === undefined || given === false) continue;
    if (flag.value && given === 0) {
      chosen.delete(name);
      continue;
    }
    chosen.add(name);
    if (flag.value) settings[flag.value.setting] = given as number;
  }
  return { studies: STUDY_NAMES.filter((n) => chosen.has(n)), settings };
}
