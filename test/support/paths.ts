import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run from dist/test/...). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The project's read-only shared folder, beside the checkout. */
export const sharedDir = resolve(repoRoot, '../shared');

export function fixtureDir(caseName: string): string {
  const dir = join(sharedDir, 'fixtures/hf-gptneox', caseName);
  if (!existsSync(dir)) throw new Error(`fixture ${dir} is missing: ../shared must sit beside the checkout`);
  return dir;
}
