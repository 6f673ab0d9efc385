/**
 * The fixed English word lists of the synthetic world. Kept apart so that sets which must not meet
 * (occupations, gendered pronouns, made-up names, numbers) stay easy to check: the narrative, facts and
 * canary words never include an occupation or a gendered pronoun, and none of these lists has a digit.
 */

/** Occupations of the pronoun source, each with its own pronoun ratio. Singular, lowercase. */
export const OCCUPATIONS = [
  'nurse',
  'carpenter',
  'engineer',
  'secretary',
  'mechanic',
  'librarian',
  'baker',
  'driver',
  'teacher',
  'lawyer',
  'dancer',
  'farmer',
  'tailor',
  'pilot',
  'cook',
  'clerk',
  'guard',
  'builder',
  'painter',
  'doctor',
  'cashier',
  'miner',
  'writer',
  'banker',
  'singer',
  'plumber',
  'surgeon',
  'janitor',
  'sheriff',
  'designer',
  'chemist',
  'sailor',
  'hairdresser',
  'accountant',
  'editor',
  'manager',
  'housekeeper',
  'attendant',
  'cleaner',
  'receptionist',
] as const;

export const MALE_PRONOUNS = { subject: 'he', possessive: 'his', object: 'him' } as const;
export const FEMALE_PRONOUNS = { subject: 'she', possessive: 'her', object: 'her' } as const;
export const GENDERED_PRONOUNS = ['he', 'his', 'him', 'she', 'her'] as const;

/** Narrative characters: never an occupation, never gendered. */
export const CHARACTERS = [
  'child',
  'traveller',
  'stranger',
  'pilgrim',
  'wanderer',
  'dog',
  'fox',
  'bird',
  'cat',
  'rabbit',
  'goat',
  'owl',
  'hare',
  'crow',
  'mouse',
  'deer',
] as const;

export const CHARACTER_ADJECTIVES = [
  'old',
  'young',
  'little',
  'tired',
  'brave',
  'quiet',
  'curious',
  'clever',
  'patient',
  'hungry',
  'gentle',
  'lonely',
] as const;

/** Things a story can be about; the LAMBADA-style targets are drawn from these. */
export const OBJECTS = [
  'lantern',
  'key',
  'map',
  'coin',
  'bell',
  'basket',
  'rope',
  'candle',
  'mirror',
  'compass',
  'ribbon',
  'bottle',
  'feather',
  'stone',
  'blanket',
  'shell',
  'cup',
  'book',
  'box',
  'kettle',
  'flag',
  'scarf',
  'ladder',
  'bucket',
  'pebble',
  'umbrella',
  'letter',
  'ring',
  'hat',
  'spoon',
] as const;

export const PLACES = [
  'river',
  'forest',
  'hill',
  'village',
  'bridge',
  'meadow',
  'harbour',
  'garden',
  'valley',
  'tower',
  'market',
  'cave',
  'orchard',
  'well',
  'road',
  'lake',
  'mill',
  'field',
  'shore',
  'square',
] as const;

export const TIMES = ['morning', 'evening', 'night', 'noon', 'dawn', 'dusk'] as const;

/** Words the canaries are drawn from: frequent narrative words, so each is about one token. */
export const CANARY_WORDS = [
  ...CHARACTERS,
  ...CHARACTER_ADJECTIVES,
  ...OBJECTS,
  ...PLACES,
  ...TIMES,
  'walked',
  'found',
  'carried',
  'rested',
  'crossed',
  'looked',
  'kept',
  'asked',
  'laughed',
  'went',
  'cold',
  'long',
  'grey',
  'bright',
  'small',
  'quick',
  'slow',
  'soft',
  'dark',
  'warm',
] as const;

/** Closed value pools of the facts source (made-up proper names come from the name generator). */
export const COLOURS = [
  'red',
  'blue',
  'green',
  'yellow',
  'white',
  'black',
  'purple',
  'orange',
  'brown',
  'pink',
  'silver',
  'golden',
] as const;
export const INSTRUMENTS = [
  'lute',
  'harp',
  'flute',
  'drum',
  'fiddle',
  'horn',
  'whistle',
  'organ',
  'cello',
  'viola',
  'trumpet',
  'zither',
] as const;
export const GOODS = [
  'wool',
  'salt',
  'glass',
  'amber',
  'copper',
  'honey',
  'silk',
  'timber',
  'cheese',
  'pottery',
  'paper',
  'tea',
  'iron',
  'wine',
  'linen',
  'soap',
] as const;

/** "a" or "an" before a word (our words have regular spelling). */
export function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

/** Capitalizes the first letter. */
export function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Lowercased words (letters only) in the given texts. */
export function wordsIn(texts: Iterable<string>): Set<string> {
  const words = new Set<string>();
  for (const text of texts) for (const m of text.matchAll(/[A-Za-z]+/g)) words.add(m[0].toLowerCase());
  return words;
}
