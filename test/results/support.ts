/** Pieces that several results tests share. */
import { TABLES } from '../../src/results/schema.js';
import { ResultsStore, type Row } from '../../src/results/store.js';

/** The rows of one query on a database opened read-only, and closed after. */
export async function query(db: string, sql: string): Promise<Row[]> {
  const store = await ResultsStore.open(db, { readOnly: true });
  try {
    return await store.rows(sql);
  } finally {
    store.close();
  }
}

/** The columns of the report's lensLayers and tunedLensLayers rows (LensLayerRow, src/report/inside-charts.ts), in order. */
export const LENS_LAYER_COLUMNS = [
  'model',
  'size',
  'run',
  'step',
  'layer',
  'kl',
  'ce',
  'entropy',
  'top1',
  'kl_bpb',
  'ce_bpb',
];

/** Every table's rows in key order, without the columns that may differ between runs (timings, paths). */
export async function content(db: string): Promise<Record<string, Row[]>> {
  const store = await ResultsStore.open(db, { readOnly: true });
  try {
    const out: Record<string, Row[]> = {};
    for (const t of TABLES) {
      const columns = t.columns.filter((c) => !(t.volatile ?? []).includes(c));
      out[t.name] = await store.rows(`SELECT ${columns.join(', ')} FROM ${t.name} ORDER BY ${t.key.join(', ')}`);
    }
    return out;
  } finally {
    store.close();
  }
}
