/**
 * Architectures of the published Pythia models (EleutherAI/pythia's models/<size>/*.yml and the
 * config.json of each EleutherAI/pythia-<size> on the Hugging Face Hub), and a way
 * to define new sizes with the same recipe.
 */
import { type NeoXConfig, validateConfig } from './config.js';

export interface SizeSpec {
  numLayers: number;
  hiddenSize: number;
  numHeads: number;
  vocabSize?: number;
  maxPositions?: number;
}

/** A Pythia-style architecture: parallel residual, 25% rotary, untied embeddings, 4·d MLP. */
export function pythiaArchitecture(s: SizeSpec): NeoXConfig {
  return validateConfig(
    {
      vocabSize: s.vocabSize ?? 50304,
      hiddenSize: s.hiddenSize,
      numLayers: s.numLayers,
      numHeads: s.numHeads,
      intermediateSize: 4 * s.hiddenSize,
      rotaryPct: 0.25,
      rotaryBase: 10000,
      maxPositions: s.maxPositions ?? 2048,
      layerNormEps: 1e-5,
      parallelResidual: true,
      hiddenAct: 'gelu',
      tieWordEmbeddings: false,
      attentionBias: true,
      dtype: 'float16',
      bosTokenId: 0,
      eosTokenId: 0,
    },
    'preset',
  );
}

export const PYTHIA_SIZES: Readonly<Record<string, SizeSpec>> = {
  '14m': { numLayers: 6, hiddenSize: 128, numHeads: 4 },
  '31m': { numLayers: 6, hiddenSize: 256, numHeads: 8 },
  '70m': { numLayers: 6, hiddenSize: 512, numHeads: 8 },
  '160m': { numLayers: 12, hiddenSize: 768, numHeads: 12 },
  '410m': { numLayers: 24, hiddenSize: 1024, numHeads: 16 },
  '1b': { numLayers: 16, hiddenSize: 2048, numHeads: 8 },
  '1.4b': { numLayers: 24, hiddenSize: 2048, numHeads: 16 },
  '2.8b': { numLayers: 32, hiddenSize: 2560, numHeads: 32 },
  '6.9b': { numLayers: 32, hiddenSize: 4096, numHeads: 32, vocabSize: 50432 },
  '12b': { numLayers: 36, hiddenSize: 5120, numHeads: 40, vocabSize: 50688 },
};

export function pythiaPreset(name: string): NeoXConfig | undefined {
  const spec = PYTHIA_SIZES[name.replace(/^pythia-/, '')];
  return spec && pythiaArchitecture(spec);
}

/** The preset whose architecture equals `c` (ignoring dtype and token ids), if any. */
export function matchPreset(c: NeoXConfig): string | undefined {
  for (const name of Object.keys(PYTHIA_SIZES)) {
    const p = pythiaPreset(name)!;
    const same = (
      [
        'vocabSize',
        'hiddenSize',
        'numLayers',
        'numHeads',
        'intermediateSize',
        'rotaryPct',
        'parallelResidual',
        'tieWordEmbeddings',
      ] as const
    ).every((k) => p[k] === c[k]);
    if (same) return `pythia-${name}`;
  }
  return undefined;
}
