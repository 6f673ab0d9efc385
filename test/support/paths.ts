import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run from dist/test/...). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The Hugging Face reference fixtures, kept in the repository (test/fixtures/hf-gptneox). */
export const fixturesDir = join(repoRoot, 'test/fixtures/hf-gptneox');

export function fixtureDir(caseName: string): string {
  const dir = join(fixturesDir, caseName);
  if (!existsSync(dir)) throw new Error(`fixture ${dir} is missing`);
  return dir;
}
