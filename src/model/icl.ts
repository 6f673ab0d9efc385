/**
 * In-context learning, per checkpoint:
 *
 * - The induction loss (TransformerLens evals.induction_loss): on random tokens repeated twice
 *   (repeated-tokens.ts), the mean loss of the second copy's tokens at positions length+2 …
 *   2·length−1, over every sequence. That is TransformerLens's slice `[:, subseq_len + 1:]` of the
 *   per-token losses (entry k predicts token k+1). It leaves out token `length`, which follows the
 *   first copy's end, and token length+1, whose cue (the first copy's token 0, the token before its
 *   earlier occurrence) TransformerLens overwrites with BOS when it prepends one. For GPT-NeoX (Pythia) it does not (default_prepend_bos is False for
 *   the architecture), and neither do we: Pythia was trained without a BOS token, so all 2·length
 *   tokens are random ones, and the same slice keeps the numbers comparable with TransformerLens's.
 * - The in-context-learning score (Olsson et al., 2022): the mean loss of the token at a late
 *   position minus that at an early one, over rows of text; negative where the model gains from
 *   more context. The paper takes positions 500 and 50 in 2048-token contexts; here they are scaled
 *   to the model's context (iclPositions). The loss "at position t" is −log p(token t | tokens 0…t−1),
 *   the token that follows t tokens of context.
 */
import { ConfigError } from '../util/errors.js';
import type { Scorer } from './score.js';

/** Olsson et al.'s positions and the context they were taken in. */
const PAPER = { early: 50, late: 500, context: 2048 };

export interface IclPositions {
  early: number;
  late: number;
}

/** 50 and 500 scaled to a context of `maxPositions` tokens (3 and 31 for 128; 50 and 500 for 2048). */
export function iclPositions(maxPositions: number): IclPositions {
  const scale = maxPositions / PAPER.context;
  const early = Math.max(1, Math.round(PAPER.early * scale));
  const late = Math.max(early + 1, Math.round(PAPER.late * scale));
  if (late > maxPositions - 1)
    throw new ConfigError(`a context of ${maxPositions} tokens is too short for an in-context-learning score`);
  return { early, late };
}

/** Mean loss of the second copy (positions length+2 … 2·length−1) of rows of 2·length tokens. */
export async function inductionLoss(scorer: Scorer, rows: readonly (readonly number[])[]): Promise<number> {
  if (rows.length === 0) throw new ConfigError('the induction loss needs at least one sequence');
  const length = rows[0]!.length / 2;
  if (!Number.isInteger(length) || length < 3)
    throw new ConfigError(`the induction loss needs rows of two copies of at least 3 tokens; got ${rows[0]!.length}`);
  for (const [r, row] of rows.entries())
    if (row.length !== 2 * length)
      throw new ConfigError(`sequence ${r} has ${row.length} tokens, sequence 0 has ${2 * length}`);
  // One call, each row its own batch: a streamed scorer then reads the checkpoint once.
  const scored = await scorer.score(
    rows.map((row) => ({ context: row.slice(0, length + 2), continuation: row.slice(length + 2) })),
    1,
  );
  let sum = 0;
  for (const s of scored) for (const logprob of s.tokenLogprobs) sum -= logprob;
  return sum / (rows.length * (length - 2));
}

export interface IclScore extends IclPositions {
  earlyLoss: number;
  lateLoss: number;
  /** lateLoss − earlyLoss. */
  score: number;
}

/** The mean losses at the two positions over `rows` (each longer than `late` tokens), and their difference. */
export async function iclScore(
  scorer: Scorer,
  rows: readonly (readonly number[])[],
  positions: IclPositions,
): Promise<IclScore> {
  const { early, late } = positions;
  if (rows.length === 0) throw new ConfigError('the in-context-learning score needs at least one row');
  if (!(Number.isInteger(early) && Number.isInteger(late) && early >= 1 && late > early))
    throw new ConfigError(`positions: expected 1 ≤ early < late, got ${early} and ${late}`);
  for (const [r, row] of rows.entries())
    if (row.length <= late)
      throw new ConfigError(`row ${r} has ${row.length} tokens; the loss at position ${late} needs ${late + 1}`);
  const scored = await scorer.score(
    rows.flatMap((row) => [early, late].map((t) => ({ context: row.slice(0, t), continuation: [row[t]!] }))),
    1,
  );
  let earlySum = 0;
  let lateSum = 0;
  for (let r = 0; r < rows.length; r++) {
    earlySum -= scored[2 * r]!.logprob;
    lateSum -= scored[2 * r + 1]!.logprob;
  }
  const earlyLoss = earlySum / rows.length;
  const lateLoss = lateSum / rows.length;
  return { early, late, earlyLoss, lateLoss, score: lateLoss - earlyLoss };
}
