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
import { type AttentionStudy, DEFAULT_ATTENTION_TEXT, recordAttention } from './attention-study.js';
import {
  type MemorizationStudy,
  recordCanaries,
  recordMemorization,
  recordTermCounts,
  type StudyRuntime,
} from './case-studies.js';
import { type RepeatedTokensStudy, recordHeads, recordIcl } from './heads-study.js';
import { recordLogitLens } from './lens-study.js';
import type { ResultsStore } from './store.js';
import { recordTokenCurves, type TokenCurvesStudy } from './token-curves-study.js';
import { DEFAULT_TUNED_LENS_STUDY, recordTunedLens, type TunedLensStudy } from './tuned-lens-study.js';
import { recordWeights } from './weights-study.js';

/** In the table's order: the order of their cells, flags and report charts. */
export const STUDY_NAMES = [
  'canaries',
  'memorization',
  'term-counts',
  'logit-lens',
  'tuned-lens',
  'heads',
  'icl',
  'token-curves',
  'weights',
  'attention',
] as const;
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
export type StudySettings = MemorizationStudy &
  HeldOutStudy &
  TokenCurvesStudy &
  AttentionStudy &
  RepeatedTokensStudy &
  TunedLensStudy;

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
  learnedRatio: 0.5,
  attentionText: DEFAULT_ATTENTION_TEXT,
  // TransformerLens's induction_loss: 4 sequences of 2 × 384 random tokens (cut to the context).
  repeatedSequences: 4,
  repeatedLength: 384,
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

/**
 * Each held-out token of each model with a step-0 token-curves run (docs/analyses.md): the runs
 * compared are the model's current ones on the same tokens and settings as its step-0 run; a token
 * is below at a later step when its loss is under learnedRatio × its step-0 loss. `learned_step`:
 * the first step from which it stays below through the model's last compared step, the compared
 * step after the last one it was not below at (null: not below at the last); `ever_below`: below at
 * some step after 0.
 */
const TOKEN_CATEGORIES = `WITH runs AS (SELECT * FROM current_studies WHERE kind = 'token_curves'),
      base AS (SELECT model, study, data_sha256, settings::VARCHAR AS settings, (settings->>'learnedRatio')::DOUBLE AS ratio
        FROM runs WHERE step = 0),
      compared AS (SELECT r.model, r.step, r.study FROM runs r JOIN base b USING (model)
        WHERE r.step > 0 AND r.data_sha256 = b.data_sha256 AND r.settings::VARCHAR = b.settings),
      marked AS (SELECT c.model, c.step, x.row, x.position, x.loss < b.ratio * z.loss AS below
        FROM compared c JOIN token_losses x ON x.study = c.study JOIN base b ON b.model = c.model
        JOIN token_losses z ON z.study = b.study AND z.row = x.row AND z.position = x.position),
      spans AS (SELECT model, row, position, bool_or(below) AS ever_below, max(step) FILTER (WHERE NOT below) AS last_above
        FROM marked GROUP BY model, row, position),
      following AS (SELECT model, step, lead(step) OVER (PARTITION BY model ORDER BY step) AS next_step FROM compared
        UNION ALL SELECT model, NULL, min(step) FROM compared GROUP BY model),
      tokens AS (SELECT s.model, s.row, s.position, s.ever_below, f.next_step AS learned_step
        FROM spans s JOIN following f ON f.model = s.model AND f.step IS NOT DISTINCT FROM s.last_above)`;

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
  'logit-lens': {
    per: 'checkpoint',
    kind: 'logit_lens',
    description:
      'the logit lens over held-out text: per layer KL(final ‖ lens), cross-entropy, entropy, top-1 agreement (nats, and bits per byte)',
    settings: ['heldOutRows', 'heldOutLength', 'heldOutData'],
    flag: { name: '--logit-lens' },
    tables: ['lens_layers'],
    record: recordLogitLens,
    report: {
      section: 'inside',
      queries: {
        lensLayers: {
          sql: `SELECT x.model, ${REPORT_SIZE} AS size, coalesce(m.run, 'baseline') AS run, x.step, x.layer,
       x.kl, x.ce, x.entropy, x.top1, x.kl_bpb, x.ce_bpb
     FROM lens_layers x LEFT JOIN models m ON m.model = x.model
     WHERE x.lens = 'logit' AND ${CURRENT} ORDER BY x.model, x.step, x.layer`,
        },
      },
    },
  },
  heads: {
    per: 'checkpoint',
    kind: 'heads',
    description:
      "TransformerLens's previous-token, duplicate-token and induction scores of every attention head on random tokens repeated twice",
    settings: ['repeatedSequences', 'repeatedLength', 'seed'],
    flag: { name: '--heads' },
    tables: ['head_scores'],
    record: recordHeads,
    report: {
      section: 'inside',
      queries: {
        headScores: {
          sql: `SELECT x.model, ${REPORT_SIZE} AS size, coalesce(m.run, 'baseline') AS run, x.step, x.layer, x.head,
       x.previous_token, x.duplicate_token, x.induction
     FROM head_scores x LEFT JOIN models m ON m.model = x.model WHERE ${CURRENT} ORDER BY x.model, x.step, x.layer, x.head`,
        },
      },
    },
  },
  'token-curves': {
    per: 'checkpoint',
    kind: 'token_curves',
    description:
      'the loss of every held-out token at each checkpoint; per model the share learned (below --learned-ratio × its step-0 loss from some step on), forgotten and never learned',
    settings: ['heldOutRows', 'heldOutLength', 'heldOutData', 'learnedRatio', 'batchSize'],
    flag: { name: '--token-curves' },
    tables: ['token_losses'],
    record: recordTokenCurves,
    report: {
      section: 'inside',
      queries: {
        // One row per model and category; models without a step-0 run (or no later one) have none.
        tokenLearning: {
          sql: `${TOKEN_CATEGORIES},
      categories AS (SELECT model, CASE WHEN learned_step IS NOT NULL THEN 'learned' WHEN ever_below THEN 'forgotten' ELSE 'never' END AS category FROM tokens),
      names(category, rank) AS (VALUES ('learned', 1), ('forgotten', 2), ('never', 3)),
      totals AS (SELECT model, count(*) AS total FROM categories GROUP BY model),
      x AS (SELECT t.model, n.category, n.rank, t.total, count(c.model) AS tokens FROM totals t CROSS JOIN names n
        LEFT JOIN categories c ON c.model = t.model AND c.category = n.category GROUP BY ALL)
     SELECT x.model, ${REPORT_SIZE} AS size, coalesce(m.run, 'baseline') AS run, x.category,
       x.tokens::INTEGER AS tokens, x.tokens / x.total AS share, b.ratio AS learned_ratio
     FROM x JOIN base b ON b.model = x.model LEFT JOIN models m ON m.model = x.model ORDER BY m.parameters, x.model, x.rank`,
        },
        // Each current run's mean loss; learned_share (learned by then) where the run is among those compared.
        tokenLossByStep: {
          sql: `${TOKEN_CATEGORIES},
      steps AS (SELECT model, step FROM compared UNION ALL SELECT model, 0 FROM base WHERE model IN (SELECT model FROM tokens)),
      shares AS (SELECT s.model, s.step, avg(coalesce(t.learned_step <= s.step, false)::INTEGER) AS learned_share
        FROM steps s JOIN tokens t USING (model) GROUP BY ALL),
      x AS (SELECT r.model, r.step, avg(l.loss) AS mean_loss FROM runs r JOIN token_losses l ON l.study = r.study GROUP BY ALL)
     SELECT x.model, ${REPORT_SIZE} AS size, coalesce(m.run, 'baseline') AS run, x.step, x.mean_loss, s.learned_share
     FROM x LEFT JOIN shares s USING (model, step) LEFT JOIN models m ON m.model = x.model
     ORDER BY m.parameters, x.model, x.step`,
        },
      },
    },
  },
  weights: {
    per: 'checkpoint',
    kind: 'weights',
    description:
      "per parameter group the weights' norm, and their relative change and cosine from the model's previous checkpoint; identical checkpoints flagged by a hash of the weights' values",
    settings: [],
    flag: { name: '--weight-changes' },
    tables: ['weight_stats', 'weight_checkpoints'],
    record: recordWeights,
    report: {
      section: 'inside',
      queries: {
        weightChanges: {
          sql: `SELECT x.model, ${REPORT_SIZE} AS size, coalesce(m.run, 'baseline') AS run, x.step, x.param_group, x.norm,
       x.previous_step, x.relative_change, x.cosine
     FROM weight_stats x LEFT JOIN models m ON m.model = x.model WHERE ${CURRENT} ORDER BY m.parameters, x.model, x.step, x.param_group`,
        },
        identicalCheckpoints: {
          sql: `SELECT x.model, ${REPORT_SIZE} AS size, x.step, x.previous_step, x.weights_sha256, x.identical
     FROM weight_checkpoints x LEFT JOIN models m ON m.model = x.model WHERE ${CURRENT} ORDER BY m.parameters, x.model, x.step`,
        },
      },
    },
  },
  attention: {
    per: 'checkpoint',
    kind: 'attention',
    description: "every head's attention pattern on a short text (--attention-text), for the report's attention viewer",
    settings: ['attentionText'],
    flag: { name: '--attention' },
    tables: ['attention_patterns', 'attention_tokens'],
    record: recordAttention,
    report: {
      section: 'inside',
      queries: {
        attentionPatterns: {
          sql: `SELECT x.model, ${REPORT_SIZE} AS size, x.step, x.layer, x.head, x.dest, x.src, x.weight
     FROM attention_patterns x LEFT JOIN models m ON m.model = x.model WHERE ${CURRENT}
     ORDER BY x.model, x.step, x.layer, x.head, x.dest, x.src`,
        },
        attentionTokens: {
          sql: `SELECT x.model, ${REPORT_SIZE} AS size, x.step, x.position, x.token_id, x.text
     FROM attention_tokens x LEFT JOIN models m ON m.model = x.model WHERE ${CURRENT} ORDER BY x.model, x.step, x.position`,
        },
      },
    },
  },
  icl: {
    per: 'checkpoint',
    kind: 'icl',
    description:
      'the induction loss on random tokens repeated twice, and the in-context-learning score (late minus early loss) on held-out text',
    settings: ['repeatedSequences', 'repeatedLength', 'seed', 'heldOutRows', 'heldOutData'],
    flag: { name: '--icl' },
    tables: ['icl_scores'],
    record: recordIcl,
    report: {
      section: 'inside',
      queries: {
        iclScores: {
          sql: `SELECT x.model, ${REPORT_SIZE} AS size, coalesce(m.run, 'baseline') AS run, x.step, x.induction_loss,
       x.early_position, x.late_position, x.early_loss, x.late_loss, x.icl_score
     FROM icl_scores x LEFT JOIN models m ON m.model = x.model WHERE ${CURRENT} ORDER BY x.model, x.step`,
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
