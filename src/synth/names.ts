/** Made-up proper names ("Velmora", "Drastik"): capitalized, letters only, unique, never an English word we use. */
import type { Prng } from '../util/prng.js';

const ONSETS = [
  'b',
  'br',
  'd',
  'dr',
  'f',
  'g',
  'gr',
  'k',
  'kr',
  'l',
  'm',
  'n',
  'p',
  'pr',
  'r',
  's',
  'st',
  't',
  'tr',
  'v',
  'z',
  'th',
  'sh',
  'h',
];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'ai', 'ei', 'ou', 'ae'];
const CODAS = ['', '', '', 'n', 'r', 'l', 's', 'm', 'th', 'x', 'nd', 'rk'];

export class NameMaker {
  private readonly used = new Set<string>();

  /** `reserved`: lowercased words a name must not equal (every word of every template and list). */
  constructor(
    private readonly rng: Prng,
    private readonly reserved: ReadonlySet<string>,
  ) {}

  make(): string {
    for (;;) {
      const syllables = this.rng.between(2, 3);
      let name = '';
      for (let i = 0; i < syllables; i++) name += this.rng.pick(ONSETS) + this.rng.pick(VOWELS) + this.rng.pick(CODAS);
      const lower = name.toLowerCase();
      if (name.length < 4 || name.length > 12 || this.used.has(lower) || this.reserved.has(lower)) continue;
      this.used.add(lower);
      return name.charAt(0).toUpperCase() + name.slice(1);
    }
  }

  makeMany(n: number): string[] {
    return Array.from({ length: n }, () => this.make());
  }
}
