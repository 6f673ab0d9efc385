/** What the report shows from beside the database: the suite's `suite.json` (the data order's hash) and the run's `run.json` (stage times). */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { indexPath } from '../data/indexed-dataset.js';
import { parseJsonFile } from '../formats/strict-json.js';
import type { RecordedData } from '../train/recorded-data.js';
import { readSuiteManifest, SUITE_MANIFEST } from '../train/run-folder.js';
import { locateRecorded } from '../util/recorded-path.js';

export interface DataOrder {
  /** sha256 of the per-step batch hashes joined by newlines: one value names the whole order. */
  sha256: string;
  steps: number;
  first: string;
  last: string;
}

export interface SuiteInfo {
  path: string;
  suite: string;
  /** Where the training data is now (relative to suite.json, else where it was written), else as recorded. */
  dataPrefix: string | null;
  trainIters: Map<string, number>;
  dataOrder: DataOrder | null;
}

export function dataOrderHash(batchSha256: readonly string[]): DataOrder | null {
  if (batchSha256.length === 0) return null;
  return {
    sha256: createHash('sha256').update(batchSha256.join('\n')).digest('hex'),
    steps: batchSha256.length,
    first: batchSha256[0]!,
    last: batchSha256.at(-1)!,
  };
}

/** Reads `<dir>/suite.json` if it is there (a results database may also come without its suite). */
export function readSuiteInfo(dir: string): SuiteInfo | null {
  const manifest = readSuiteManifest(dir);
  if (!manifest) return null;
  return {
    path: join(dir, SUITE_MANIFEST),
    suite: manifest.suite,
    dataPrefix: manifest.data ? dataPrefix(dir, manifest.data) : null,
    trainIters: new Map(manifest.models.filter((m) => m.trainIters !== undefined).map((m) => [m.name, m.trainIters])),
    dataOrder: dataOrderHash(manifest.batchSha256),
  };
}

function dataPrefix(dir: string, data: RecordedData): string {
  const located = locateRecorded(dir, data.prefix, data.absolutePrefix, (p) => existsSync(indexPath(p)));
  return located.found ? located.path : data.prefix;
}

export interface StageTimes {
  path: string;
  stages: { stage: string; seconds: number; status: string }[];
  totalSeconds: number | null;
}

/**
 * The wall time of each stage of `pythia run`, from the `run.json` it writes beside the suite
 * (`<out>/run.json` for `<out>/suite`). The report did not ask for that file by name, so one that is
 * not `pythia run`'s record is passed over rather than refused.
 */
export function readStageTimes(suiteDir: string): StageTimes | null {
  const path = join(dirname(suiteDir), 'run.json');
  if (!existsSync(path)) return null;
  let record: { stages?: unknown; totalSeconds?: unknown };
  try {
    record = parseJsonFile(readFileSync(path, 'utf8')) as typeof record;
  } catch {
    return null;
  }
  const stages = record?.stages;
  if (
    !Array.isArray(stages) ||
    stages.some((s) => typeof s?.stage !== 'string' || typeof s.seconds !== 'number' || typeof s.status !== 'string')
  )
    return null;
  return { path, stages, totalSeconds: typeof record.totalSeconds === 'number' ? record.totalSeconds : null };
}
