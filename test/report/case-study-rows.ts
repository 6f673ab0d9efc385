/**
 * Case-study rows for a results database that has been through `pythia eval`: memorization scores,
 * canaries, term counts and an intervention sibling, shaped like the case-study commands write them
 * (seeded, so the same database always gets the same rows). The report must draw every chart from them.
 */
import type { ResultsStore } from '../../src/results/store.js';
import { Prng } from '../../src/util/prng.js';

async function insert(store: ResultsStore, table: string, columns: string[], rows: unknown[][]): Promise<void> {
  for (const row of rows) {
    const placeholders = row.map((_, i) => `$${i + 1}`).join(', ');
    await store.connection.run(`INSERT OR REPLACE INTO ${table} (${columns.join(', ')}) VALUES (${placeholders})`, row as never);
  }
}

/** Whether this schema has the case-study tables (they arrive with the case-study commands). */
export async function hasCaseStudyTables(store: ResultsStore): Promise<boolean> {
  const rows = await store.rows("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'");
  const names = new Set(rows.map((r) => r.table_name as string));
  return ['memorization', 'memorization_windows', 'memorization_poisson', 'canary_memorization', 'term_counts', 'item_terms', 'winobias', 'crows_pairs', 'term_accuracy'].every((t) => names.has(t));
}

export async function fillCaseStudies(store: ResultsStore, seed = 7): Promise<void> {
  const rng = new Prng(seed);
  const models = (await store.rows("SELECT model, parameters::DOUBLE AS parameters FROM models WHERE run = 'baseline' ORDER BY parameters")) as { model: string; parameters: number }[];
  const steps = (await store.rows('SELECT DISTINCT step FROM checkpoints WHERE step > 0 ORDER BY step')).map((r) => r.step as number);
  const last = steps.at(-1)!;
  const windowSize = 16;
  for (const [rank, { model }] of models.entries()) {
    for (const step of steps) {
      const p = 0.05 * (rank + 1) * (step / last);
      const rows = Array.from({ length: 128 }, (_, index) => {
        const memorized = rng.chance(p);
        return [model, step, index, memorized ? 1 : rng.float() * 0.9, memorized];
      });
      await insert(store, 'memorization', ['model', 'step', 'sample_index', 'score', 'memorized'], rows);
      if (step !== last) continue;
      const windows = [];
      for (let w = 0; w * windowSize < rows.length; w++) {
        const part = rows.slice(w * windowSize, (w + 1) * windowSize);
        windows.push([model, step, windowSize, w, w * windowSize, part.length, part.filter((r) => r[4]).length]);
      }
      await insert(store, 'memorization_windows', ['model', 'step', 'window_size', 'window_index', 'first_index', 'scored', 'memorized'], windows);
      const counts = windows.map((w) => w[6] as number);
      const mean = counts.reduce((a, b) => a + b, 0) / counts.length;
      const variance = counts.reduce((a, c) => a + (c - mean) ** 2, 0) / (counts.length - 1);
      await insert(store, 'memorization_poisson', ['model', 'step', 'window_size', 'windows', 'mean', 'dispersion', 'chi2', 'dof', 'p_value'], [
        [model, step, windowSize, counts.length, mean, variance / mean, (counts.length - 1) * (variance / mean), counts.length - 1, 0.5],
      ]);
    }
    const canaries = [];
    for (const duplicates of [1, 2, 4, 8, 16, 32]) {
      for (let c = 0; c < 4; c++) {
        const memorized = rng.chance(Math.min(1, (duplicates / 32) * (rank + 1) * 0.3));
        canaries.push([model, last, `canary-${duplicates}-${c}`, duplicates, memorized ? 1 : rng.float() * 0.8, memorized]);
      }
    }
    await insert(store, 'canary_memorization', ['model', 'step', 'canary', 'duplicates', 'score', 'memorized'], canaries);
  }

  // Term counts for the arithmetic items' first operand, rising with step and falling with the operand (Zipf-like).
  const items = (await store.rows("SELECT item_id, (meta->>'x1') AS x1 FROM task_items WHERE task = 'arithmetic' AND (meta->>'x1') IS NOT NULL")) as { item_id: string; x1: string }[];
  await insert(store, 'item_terms', ['task', 'item_id', 'term'], items.map((i) => ['arithmetic', i.item_id, i.x1]));
  const terms = [...new Set(items.map((i) => i.x1))];
  await insert(store, 'term_counts', ['term', 'step', 'count'], terms.flatMap((t) => steps.map((s) => [t, s, Math.round((s * 400) / (Number(t) + 1))])));

  // An intervention sibling of the smallest model over its last two checkpoints, its choices partly flipped.
  const base = models[0]!.model;
  const sibling = `${base}-intervention`;
  await store.connection.run(
    `INSERT OR REPLACE INTO models SELECT * REPLACE ('${sibling}' AS model, 'intervention' AS run, model AS baseline) FROM models WHERE model = $1`,
    [base],
  );
  await store.connection.run(
    `INSERT OR REPLACE INTO item_results SELECT * REPLACE ('${sibling}' AS model, CASE WHEN hash(item_id) % 3 = 0 THEN 1 - acc ELSE acc END AS acc)
     FROM item_results WHERE model = $1 AND step >= $2 AND task IN ('winobias', 'crows_pairs')`,
    [base, steps.at(-2)!],
  );
}
