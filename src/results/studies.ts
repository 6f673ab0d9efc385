/**
 * The case studies as one table: each study's name (as `pythia eval --studies` takes it), its CLI
 * shorthand, the result tables it writes, what one cell of its grid is, and how it records one.
 * `evaluate`, `pythia eval` and `pythia run` iterate this table; a study is one entry here plus its
 * recording function (case-studies.ts). docs/architecture.md shows how to add one.
 *
 * A study's cells are cells of the grid like task cells: sorted, each shard takes every n-th, and
 * one already in the database (its identity in `studies`) is skipped, so a run resumes and shards
 * merge with `pythia results merge`.
 */
import type { TextTokenizer } from '../data/tokenizer.js';
import type { CheckpointRef } from '../eval/checkpoints.js';
import type { EvalModel } from '../eval/run-task.js';
import {
  type MemorizationStudy,
  recordCanaries,
  recordMemorization,
  recordTermCounts,
  type StudyRuntime,
} from './case-studies.js';
import type { ResultsStore } from './store.js';
import { DEFAULT_TUNED_LENS_STUDY, recordTunedLens, type TunedLensStudy } from './tuned-lens-study.js';

/** In the table's order: the order of their cells, flags and report charts. */
export const STUDY_NAMES = ['canaries', 'memorization', 'term-counts', 'tuned-lens'] as const;
export type StudyName = (typeof STUDY_NAMES)[number];

/**
 * The held-out text the studies that read a model on unseen tokens use (analysis/held-out.ts): rows
 * of tokens from the checkpoint's own validation batches, or from the start of `heldOutData`.
 */
export interface HeldOutStudy {
  heldOutRows: number;
  /** Tokens per row; at most a training sample's (seq-length + 1), and the rows' length is what is recorded. */
  heldOutLength: number;
  /** A dataset prefix (`.bin`/`.idx`) to read instead; required for checkpoints without a training record. */
  heldOutData?: string;
}

/** Every study's settings, one default each (`pythia eval` and `pythia run` share them). */
export type StudySettings = MemorizationStudy & HeldOutStudy & TunedLensStudy;

/**
 * Pythia's memorization setting (32-token prompt, 32 generated), scoring up to 1024 sequences per
 * checkpoint; 16 held-out rows of up to 1024 tokens.
 */
export const DEFAULT_STUDY_SETTINGS: StudySettings = {
  sequences: 1024,
  window: 512,
  seed: 1,
  promptLength: 32,
  continuationLength: 32,
  batchSize: 64,
  heldOutRows: 16,
  heldOutLength: 1024,
  ...DEFAULT_TUNED_LENS_STUDY,
};

/** The settings that are numbers, which a shorthand flag can set. */
type NumericSetting = {
  [K in keyof StudySettings]-?: StudySettings[K] extends number ? K : never;
}[keyof StudySettings];

/** A study whose cell is one checkpoint: it runs the loaded model. */
interface CheckpointStudy {
  per: 'checkpoint';
  /** Records the study at one checkpoint; false where there was nothing to record (or it was there). */
  record(
    store: ResultsStore,
    ref: CheckpointRef,
    model: EvalModel,
    settings: StudySettings,
    context: StudyRuntime,
  ): Promise<boolean>;
}

/** A study whose cell is one step of the training order, the same for every model of a suite. */
interface StepStudy {
  per: 'step';
  /** Records the study at these steps (this shard's); how many were recorded now. */
  record(
    store: ResultsStore,
    checkpoints: readonly CheckpointRef[],
    steps: readonly number[],
    tokenizer: TextTokenizer,
    tokenizerSha256: string,
  ): Promise<number>;
}

/** A query of the report over a study's tables. */
export interface ReportQuery {
  sql: string;
}

/** A row's size in the report's queries (`x`: the study's rows, `m`: models): the model, or the baseline an intervention continues. */
export const REPORT_SIZE = 'coalesce(m.baseline, x.model)';
/** The rows of the current run of a study at each checkpoint (the `current_studies` view). */
const CURRENT = 'x.study IN (SELECT study FROM current_studies)';

export type StudyDefinition = (CheckpointStudy | StepStudy) & {
  /** Its `studies.kind`. */
  kind: string;
  /** One line for `--help`. */
  description: string;
  /** The settings it reads (each with one default, DEFAULT_STUDY_SETTINGS). */
  settings: readonly (keyof StudySettings)[];
  /** The shorthand flag that selects it (`pythia eval`, `pythia run`); with a value, the setting it sets. */
  flag: { name: string; value?: { setting: NumericSetting; placeholder: string } };
  /** The result tables it writes (src/results/schema.ts), each keyed by `study` first. */
  tables: readonly string[];
  /** The report's section its charts go in (src/report/charts.ts draws them) and the rows they read. */
  report: { section: 'memorization' | 'terms' | 'inside'; queries: Readonly<Record<string, ReportQuery>> };
};

export const STUDIES = {
  canaries: {
    per: 'checkpoint',
    kind: 'canaries',
    description: "memorization of the synthetic corpus's canaries against their duplication counts",
    settings: ['promptLength', 'continuationLength', 'batchSize'],
    flag: { name: '--canaries' },
    tables: ['canary_memorization'],
    record: recordCanaries,
    report: {
      section: 'memorization',
      queries: {
        // At each model's last studied checkpoint, by duplication count.
        canaries: {
          sql: `WITH current AS (SELECT * FROM canary_memorization x WHERE ${CURRENT}),
      last AS (SELECT model, max(step) AS step FROM current GROUP BY model)
     SELECT x.model, ${REPORT_SIZE} AS size, coalesce(m.run, 'baseline') AS run, x.step, x.duplicates,
       avg(x.memorized::INTEGER) AS memorized_fraction, avg(x.score) AS mean_score, count(*)::INTEGER AS canaries
     FROM current x JOIN last USING (model, step) LEFT JOIN models m ON m.model = x.model
     GROUP BY ALL ORDER BY x.model, x.duplicates`,
        },
      },
    },
  },
  memorization: {
    per: 'checkpoint',
    kind: 'memorization',
    description:
      'memorization (32-token prompt, 32 greedy tokens) of up to <sequences> training sequences per checkpoint, with its Poisson test over --window',
    settings: ['sequences', 'window', 'seed', 'promptLength', 'continuationLength', 'batchSize'],
    flag: { name: '--memorization', value: { setting: 'sequences', placeholder: '<sequences>' } },
    tables: ['memorization', 'memorization_windows', 'memorization_poisson'],
    record: recordMemorization,
    report: {
      section: 'memorization',
      queries: {
        // Windows of training order at each model's last step.
        memorizationWindows: {
          sql: `WITH current AS (SELECT * FROM memorization_windows x WHERE ${CURRENT}),
      pick AS (SELECT model, max(step) AS step FROM current GROUP BY model)
     SELECT x.model, ${REPORT_SIZE} AS size, x.step, x.window_size, x.window_index, x.first_index::DOUBLE AS first_index, x.scored, x.memorized
     FROM current x JOIN pick USING (model, step) LEFT JOIN models m ON m.model = x.model
     WHERE x.scored > 0 ORDER BY m.parameters, x.model, x.window_index`,
        },
        memorizationPoisson: {
          sql: `SELECT * EXCLUDE (study) FROM memorization_poisson x WHERE ${CURRENT} ORDER BY model, step, window_size`,
        },
        memorizedFraction: {
          sql: `SELECT x.model, ${REPORT_SIZE} AS size, coalesce(m.run, 'baseline') AS run, x.step,
       avg(x.memorized::INTEGER) AS fraction, sum(x.memorized::INTEGER)::INTEGER AS memorized, count(*)::INTEGER AS scored, avg(x.score) AS mean_score
     FROM memorization x LEFT JOIN models m ON m.model = x.model WHERE ${CURRENT} GROUP BY ALL ORDER BY x.model, x.step`,
        },
      },
    },
  },
  'term-counts': {
    per: 'step',
    kind: 'term_counts',
    description: "counts of the tasks' key terms in the tokens trained on before each checkpoint's step",
    settings: [],
    flag: { name: '--term-counts' },
    tables: ['term_counts'],
    record: recordTermCounts,
    report: {
      section: 'terms',
      queries: {
        // Accuracy by bins of log10(1 + count), half a decade wide.
        termBins: {
          sql: `SELECT x.model, ${REPORT_SIZE} AS size, x.step, x.task, x.shots,
       floor(log10(1 + x.count) * 2) / 2 + 0.25 AS log_count, avg(x.correct) AS accuracy, count(*)::INTEGER AS items
     FROM term_accuracy x LEFT JOIN models m USING (model)
     WHERE x.count IS NOT NULL AND x.correct IS NOT NULL
     GROUP BY ALL ORDER BY x.model, x.task, x.shots, x.step, log_count`,
        },
        termDelta: {
          sql: `SELECT x.*, ${REPORT_SIZE} AS size FROM term_delta x LEFT JOIN models m USING (model) ORDER BY m.parameters, x.model, x.task, x.shots, x.step`,
        },
      },
    },
  },
  'tuned-lens': {
    per: 'checkpoint',
    kind: 'tuned_lens',
    description:
      "the tuned lens (per-layer affine translators trained on held-out rows with tuned-lens's recipe) with the logit lens's metrics per layer",
    settings: [
      'heldOutRows',
      'heldOutLength',
      'heldOutData',
      'tunedLensSteps',
      'tunedLensLr',
      'tunedLensTokensPerStep',
    ],
    flag: { name: '--tuned-lens' },
    tables: ['lens_layers'],
    record: recordTunedLens,
    report: {
      section: 'inside',
      queries: {
        tunedLensLayers: {
          sql: `SELECT x.model, ${REPORT_SIZE} AS size, coalesce(m.run, 'baseline') AS run, x.step, x.layer,
       x.kl, x.ce, x.entropy, x.top1, x.kl_bpb, x.ce_bpb
     FROM lens_layers x LEFT JOIN models m ON m.model = x.model
     WHERE x.lens = 'tuned' AND ${CURRENT} ORDER BY x.model, x.step, x.layer`,
        },
      },
    },
  },
} satisfies { readonly [K in StudyName]: StudyDefinition };

/** The name of each report query of every study: the keys of `ReportData.studies`. */
export type StudyDataset = {
  [K in StudyName]: keyof (typeof STUDIES)[K]['report']['queries'] & string;
}[StudyName];

/** `a,b,c` as study names, each checked against the table. */
export function parseStudies(value: string): StudyName[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const unknown = names.filter((n) => !(STUDY_NAMES as readonly string[]).includes(n));
  if (unknown.length > 0)
    throw new Error(
      `unknown ${unknown.length > 1 ? 'studies' : 'study'} ${unknown.join(', ')} (studies: ${STUDY_NAMES.join(', ')})`,
    );
  return names as StudyName[];
}

export interface StudyCell {
  study: StudyName;
  /** The checkpoint (per-checkpoint studies); the step alone for per-step ones. */
  model: string | null;
  step: number;
}

/**
 * The cells of the selected studies over these checkpoints, in the grid's order (study by study in
 * the table's order, then model, then step), then this shard's share of each study's cells.
 */
export function studyCells(
  studies: readonly StudyName[],
  checkpoints: readonly CheckpointRef[],
  shard?: { index: number; count: number },
): StudyCell[] {
  const sorted = [...checkpoints].sort((a, b) => (a.model < b.model ? -1 : a.model > b.model ? 1 : a.step - b.step));
  const steps = [...new Set(checkpoints.map((c) => c.step))].sort((a, b) => a - b);
  return STUDY_NAMES.filter((name) => studies.includes(name)).flatMap((study) => {
    const cells: StudyCell[] =
      STUDIES[study].per === 'checkpoint'
        ? sorted.map((c) => ({ study, model: c.model, step: c.step }))
        : steps.map((step) => ({ study, model: null, step }));
    return shard ? cells.filter((_, i) => i % shard.count === shard.index) : cells;
  });
}
