/** The five sources and the share of the corpus (in pre-tokens) each one gets. */
import { ConfigError } from '../util/errors.js';

export const SOURCES = ['facts', 'arithmetic', 'occupations', 'canaries', 'narrative'] as const;
export type SourceName = (typeof SOURCES)[number];
export type Mix = Record<SourceName, number>;

export const DEFAULT_MIX: Mix = { facts: 0.2, arithmetic: 0.12, occupations: 0.08, canaries: 0.05, narrative: 0.55 };

/**
 * Parses `facts=0.3,narrative=0.7`. Sources not named get weight 0; the weights are scaled to sum to 1.
 */
export function parseMix(text: string): Mix {
  const mix: Mix = { facts: 0, arithmetic: 0, occupations: 0, canaries: 0, narrative: 0 };
  const seen = new Set<string>();
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0)) {
    const m = /^([a-z]+)\s*=\s*(\S+)$/.exec(part);
    if (!m) throw new ConfigError(`--mix: expected source=weight pairs separated by commas, got "${part}"`);
    const [, name, weightText] = m as unknown as [string, string, string];
    if (!(SOURCES as readonly string[]).includes(name)) {
      throw new ConfigError(`--mix: unknown source "${name}" (expected one of ${SOURCES.join(', ')})`);
    }
    if (seen.has(name)) throw new ConfigError(`--mix: source "${name}" is given twice`);
    seen.add(name);
    const weight = Number(weightText);
    if (!Number.isFinite(weight) || weight < 0)
      throw new ConfigError(`--mix: weight of ${name} must be a number >= 0, got "${weightText}"`);
    mix[name as SourceName] = weight;
  }
  return normalizeMix(mix);
}

export function normalizeMix(mix: Mix): Mix {
  const total = SOURCES.reduce((sum, s) => sum + mix[s], 0);
  if (!(total > 0)) throw new ConfigError('--mix: at least one source needs a weight above 0');
  const out = { ...mix };
  for (const s of SOURCES) out[s] = mix[s] / total;
  return out;
}

export function formatMix(mix: Mix): string {
  return SOURCES.map((s) => `${s}=${+mix[s].toFixed(4)}`).join(',');
}
