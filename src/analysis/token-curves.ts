/**
 * Per-token learning curves (docs/analyses.md): the loss of every held-out token at a checkpoint,
 * through the scoring path of the benchmarks (model/score.ts). A row of `length` tokens gives
 * `length − 1` losses: the token at position p (1 ≤ p < length) predicted from positions 0…p−1.
 * Whether a token was learned, forgotten or never learned across checkpoints is a query over these
 * losses (the token-curves study's report queries, src/results/studies.ts).
 */
import type { Scorer } from '../model/score.js';
import type { HeldOutTokens } from './held-out.js';

/** Logits of the scored positions held at once: at most this many floats (256 MiB). */
const SCORED_LOGITS = 1 << 26;

/** Rows scored at once: as many as `batchSize` allows whose scored logits fit SCORED_LOGITS, at least one. */
export function lossBatchRows(length: number, vocabSize: number, batchSize: number): number {
  return Math.max(1, Math.min(batchSize, Math.floor(SCORED_LOGITS / (Math.max(1, length - 1) * vocabSize))));
}

/**
 * The longest held-out row a checkpoint can score: `wanted`, at most its context plus the one token
 * predicted last (max_position_embeddings + 1) and, for a suite's own held-out batches, a training
 * sample (seq-length + 1).
 */
export function scorableLength(wanted: number, maxPositions: number, seqLength?: number): number {
  return Math.min(wanted, maxPositions + 1, seqLength === undefined ? Number.POSITIVE_INFINITY : seqLength + 1);
}

/** The loss (nats) of each token after the first of each row: rows × (length − 1), row-major. */
export async function tokenLosses(scorer: Scorer, held: HeldOutTokens, batchRows: number): Promise<Float32Array> {
  const { rows, length, tokens } = held;
  const per = length - 1;
  const losses = new Float32Array(rows * per);
  const requests = [];
  for (let r = 0; r < rows; r++) {
    const row = Array.from(tokens.subarray(r * length, (r + 1) * length));
    requests.push({ context: row.slice(0, 1), continuation: row.slice(1) });
  }
  // One call in batches of `batchRows` (rows of one length batch in order): a streamed scorer reads the checkpoint once.
  const scored = await scorer.score(requests, batchRows);
  scored.forEach((s, r) => {
    s.tokenLogprobs.forEach((lp, p) => {
      losses[r * per + p] = -lp;
    });
  });
  return losses;
}
