/**
 * Weights across checkpoints (docs/analyses.md): per parameter group the L2 norm, and the relative
 * change ‖w − w_prev‖ / ‖w_prev‖ and cosine with another checkpoint of the same model; and a hash of
 * the weights' values that does not depend on how they are stored (file layout, shards, dtype).
 * Every sum is a float64 sum of float32 values.
 */
import { createHash } from 'node:crypto';
import { endianness } from 'node:os';
import type { NeoXConfig } from '../model/config.js';
import type { Params } from '../model/params.js';
import { ConfigError } from '../util/errors.js';

/** Every parameter together. */
export const ALL_PARAMETERS = 'all';

/**
 * The group a parameter belongs to: `embed_in`, `layers.<i>.attention` (query_key_value and
 * dense), `layers.<i>.mlp`, `layers.<i>.layer_norms` (input and post-attention), `final_layer_norm`
 * or `embed_out`.
 */
export function parameterGroup(name: string): string {
  if (name.startsWith('gpt_neox.embed_in.')) return 'embed_in';
  if (name.startsWith('gpt_neox.final_layer_norm.')) return 'final_layer_norm';
  if (name.startsWith('embed_out.')) return 'embed_out';
  const layer = /^gpt_neox\.layers\.(\d+)\.([a-z_]+)\./.exec(name);
  if (layer) {
    const [, i, part] = layer;
    if (part === 'attention' || part === 'mlp') return `layers.${i}.${part}`;
    if (part === 'input_layernorm' || part === 'post_attention_layernorm') return `layers.${i}.layer_norms`;
  }
  throw new ConfigError(`${name}: not a GPT-NeoX parameter of any group`);
}

/** The groups of a model in their order: embed_in, each layer's attention, mlp and layer_norms, final_layer_norm, embed_out, all. */
export function parameterGroups(config: NeoXConfig): string[] {
  const layers = Array.from({ length: config.numLayers }, (_, i) =>
    ['attention', 'mlp', 'layer_norms'].map((part) => `layers.${i}.${part}`),
  ).flat();
  return [
    'embed_in',
    ...layers,
    'final_layer_norm',
    ...(config.tieWordEmbeddings ? [] : ['embed_out']),
    ALL_PARAMETERS,
  ];
}

export interface GroupStats {
  group: string;
  /** ‖w‖₂ */
  norm: number;
  /** ‖w − w_prev‖₂ / ‖w_prev‖₂; null without a previous checkpoint, or where ‖w_prev‖ is 0. */
  relativeChange: number | null;
  /** ⟨w, w_prev⟩ / (‖w‖ ‖w_prev‖); null without a previous checkpoint, or where either norm is 0. */
  cosine: number | null;
}

interface Sums {
  squares: number;
  previousSquares: number;
  dot: number;
  differenceSquares: number;
}

/** The norms of `current`'s groups, and their change from `previous` (the same model's parameters) where given. */
export function weightStats(config: NeoXConfig, current: Params, previous?: Params): GroupStats[] {
  const sums = new Map<string, Sums>(
    parameterGroups(config).map((g) => [g, { squares: 0, previousSquares: 0, dot: 0, differenceSquares: 0 }]),
  );
  const all = sums.get(ALL_PARAMETERS)!;
  for (const [name, w] of current) {
    const group = sums.get(parameterGroup(name));
    if (!group) throw new ConfigError(`${name}: no such parameter group in this model's config`);
    let squares = 0;
    let previousSquares = 0;
    let dot = 0;
    let differenceSquares = 0;
    const p = previous?.get(name);
    if (previous && (!p || p.length !== w.length))
      throw new ConfigError(
        `${name}: ${p ? `${p.length} values` : 'absent'} in the previous checkpoint, ${w.length} in this one; the two are not one model`,
      );
    if (p) {
      for (let i = 0; i < w.length; i++) {
        const a = w[i]!;
        const b = p[i]!;
        squares += a * a;
        previousSquares += b * b;
        dot += a * b;
        differenceSquares += (a - b) * (a - b);
      }
    } else {
      for (let i = 0; i < w.length; i++) squares += w[i]! * w[i]!;
    }
    for (const s of [group, all]) {
      s.squares += squares;
      s.previousSquares += previousSquares;
      s.dot += dot;
      s.differenceSquares += differenceSquares;
    }
  }
  return [...sums].map(([group, s]) => {
    const norm = Math.sqrt(s.squares);
    const previousNorm = Math.sqrt(s.previousSquares);
    return {
      group,
      norm,
      relativeChange: previous && previousNorm > 0 ? Math.sqrt(s.differenceSquares) / previousNorm : null,
      cosine: previous && norm > 0 && previousNorm > 0 ? s.dot / (norm * previousNorm) : null,
    };
  });
}

/**
 * The sha256 of the weights' values: for each parameter in order of name (by UTF-16 code unit), its
 * name in UTF-8, a NUL byte, its element count as a little-endian uint64 and its values as
 * little-endian float32. Equal for the same values stored as float16 or float32, in one file or
 * shards; different when any value differs (−0 and 0 included).
 */
export function weightsSha256(params: Params): string {
  const hash = createHash('sha256');
  const count = Buffer.alloc(8);
  for (const name of [...params.keys()].sort()) {
    const values = params.get(name)!;
    count.writeBigUInt64LE(BigInt(values.length));
    hash.update(name, 'utf8').update(Buffer.of(0)).update(count).update(littleEndianBytes(values));
  }
  return hash.digest('hex');
}

function littleEndianBytes(values: Float32Array): Uint8Array {
  if (endianness() === 'LE') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new DataView(new ArrayBuffer(values.byteLength));
  for (let i = 0; i < values.length; i++) out.setFloat32(4 * i, values[i]!, true);
  return new Uint8Array(out.buffer);
}
