/**
 * Attention-head detectors, TransformerLens's detect_head (head_detector.py) with its default "mul"
 * measure: a head's score on one sequence is Σ(pattern ⊙ D) / Σ pattern over its [dest, src]
 * attention pattern (blocks.ℓ.attn.hook_pattern), D a 0/1 detection pattern built from the tokens;
 * a list of sequences is scored one by one and the scores averaged, each sequence weighing the same.
 * With nothing excluded, Σ pattern is the sequence's length (each row sums to 1): the score is the
 * share of the head's attention, averaged over destinations, that goes where D points.
 *
 *   previous token   D[i][i−1] = 1
 *   duplicate token  D[i][j] = 1 where j < i and token j equals token i
 *   induction        D[i][j] = 1 where 1 ≤ j ≤ i and token j−1 equals token i (the duplicate
 *                    pattern rolled one column right, the first column zeroed, the lower triangle kept)
 */
import { ConfigError } from '../util/errors.js';
import type { ActivationRunner } from './activations.js';

export const DETECTORS = ['previous_token', 'duplicate_token', 'induction'] as const;
export type Detector = (typeof DETECTORS)[number];

export interface HeadScore {
  layer: number;
  head: number;
  previousToken: number;
  duplicateToken: number;
  induction: number;
}

export interface HeadScoreOptions {
  /** Bytes of attention patterns held at once (default 256 MiB): a row's layers run in groups under it. */
  patternBytes?: number;
}

/** TransformerLens's get_<detector>_head_detection_pattern for these tokens: [T, T] row-major, 0 or 1. */
export function detectionPattern(detector: Detector, tokens: readonly number[]): Uint8Array {
  const T = tokens.length;
  const d = new Uint8Array(T * T);
  for (let i = 0; i < T; i++) {
    if (detector === 'previous_token') {
      if (i > 0) d[i * T + i - 1] = 1;
    } else if (detector === 'duplicate_token') {
      for (let j = 0; j < i; j++) if (tokens[j] === tokens[i]) d[i * T + j] = 1;
    } else {
      for (let j = 1; j <= i; j++) if (tokens[j - 1] === tokens[i]) d[i * T + j] = 1;
    }
  }
  return d;
}

/** Σ(pattern ⊙ D) / Σ pattern of one head's [T, T] pattern starting at `offset`. */
export function mulScore(pattern: Float32Array, offset: number, detection: Uint8Array): number {
  return matchedSum(pattern, offset, ones(detection)) / patternSum(pattern, offset, detection.length);
}

/** The positions where a detection pattern is 1: a few per row, so sums over them skip the zeros. */
function ones(detection: Uint8Array): Uint32Array {
  const at: number[] = [];
  for (let k = 0; k < detection.length; k++) if (detection[k] === 1) at.push(k);
  return Uint32Array.from(at);
}

function matchedSum(pattern: Float32Array, offset: number, at: Uint32Array): number {
  let matched = 0;
  for (let i = 0; i < at.length; i++) matched += pattern[offset + at[i]!]!;
  return matched;
}

function patternSum(pattern: Float32Array, offset: number, n: number): number {
  let total = 0;
  for (let k = offset; k < offset + n; k++) total += pattern[k]!;
  return total;
}

/**
 * Every head's score for the three detectors, averaged over `rows` (any lengths from 2 to the
 * context). Rows run one at a time, a row's layers in groups whose patterns fit in `patternBytes`.
 */
export async function headScores(
  runner: ActivationRunner,
  rows: readonly (readonly number[])[],
  options: HeadScoreOptions = {},
): Promise<HeadScore[]> {
  const { numLayers: L, numHeads: H, maxPositions, vocabSize } = runner.config;
  if (rows.length === 0) throw new ConfigError('head detection needs at least one sequence');
  const sums = Array.from({ length: L * H }, () => [0, 0, 0]);
  for (const [r, row] of rows.entries()) {
    const T = row.length;
    if (T < 2 || T > maxPositions)
      throw new ConfigError(`sequence ${r}: ${T} tokens; head detection needs 2 to ${maxPositions} (the context)`);
    for (const [t, id] of row.entries())
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
        throw new ConfigError(
          `sequence ${r} position ${t}: token id ${id} is outside the vocabulary [0, ${vocabSize})`,
        );
    const detections = DETECTORS.map((d) => ones(detectionPattern(d, row)));
    const ids = BigInt64Array.from(row, (id) => BigInt(id));
    // A streamed run is a pass over the checkpoint: it reads as many layers' patterns as its budget holds.
    const patternBytes = options.patternBytes ?? (runner.streamed ? runner.activationBytes : 256 * 2 ** 20);
    const perRun = Math.max(1, Math.floor(patternBytes / (H * T * T * 4)));
    for (let first = 0; first < L; first += perRun) {
      const layers = Array.from({ length: Math.min(perRun, L - first) }, (_, k) => first + k);
      const names = layers.map((l) => `blocks.${l}.attn.hook_pattern`);
      const { cache } = await runner.run(ids, 1, { names });
      for (const l of layers) {
        const pattern = cache.get(`blocks.${l}.attn.hook_pattern`)!.data;
        for (let h = 0; h < H; h++) {
          const total = patternSum(pattern, h * T * T, T * T);
          detections.forEach((at, k) => {
            sums[l * H + h]![k]! += matchedSum(pattern, h * T * T, at) / total;
          });
        }
      }
    }
  }
  return sums.map(([previousToken, duplicateToken, induction], i) => ({
    layer: Math.floor(i / H),
    head: i % H,
    previousToken: previousToken! / rows.length,
    duplicateToken: duplicateToken! / rows.length,
    induction: induction! / rows.length,
  }));
}
