/** Greedy continuation by full recomputation (`forward`, argmax of the last position), for checking generation. */
import type { NeoXConfig } from '../../src/model/config.js';
import { forward } from '../../src/model/forward.js';
import type { Params } from '../../src/model/params.js';

/** Every row gets `newTokens` argmax tokens (the lowest id on a tie); rows must have equal lengths. */
export async function greedyByForward(
  config: NeoXConfig,
  params: Params,
  prompts: number[][],
  newTokens: number,
): Promise<number[][]> {
  const rows = prompts.map((p) => [...p]);
  const vocab = config.vocabSize;
  for (let t = 0; t < newTokens; t++) {
    const seq = rows[0]!.length;
    const ids = BigInt64Array.from(rows.flat().map(BigInt));
    const { logits } = await forward(config, params, ids, rows.length, {}, { threads: 1 });
    rows.forEach((row, b) => {
      const offset = (b * seq + seq - 1) * vocab;
      let best = 0;
      for (let v = 1; v < vocab; v++) if (logits![offset + v]! > logits![offset + best]!) best = v;
      row.push(best);
    });
  }
  return rows;
}
