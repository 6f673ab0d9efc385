/**
 * Named activations: TransformerLens's hook points for GPT-NeoX, with its names and shapes
 * (transformer_lens HookedTransformer on a Pythia model), and the hook set the graph builder calls
 * at each of them (gpt-neox.ts). A hook set records the tensors asked for as graph outputs and
 * hands back an edited tensor where an intervention asks for one (interventions.ts).
 */
import type { Tensor } from '../graph/graph.js';
import { ConfigError } from '../util/errors.js';
import { headDim, type NeoXConfig } from './config.js';

/** One activation's values, row-major, with its shape. */
export interface Activation {
  data: Float32Array;
  dims: number[];
}

/**
 * How an activation is laid out:
 *   resid   [batch, pos, d_model]      embed, resid_pre/mid/post, attn_out, mlp_out, ln*.hook_normalized
 *   scale   [batch, pos, 1]            ln*.hook_scale
 *   heads   [batch, pos, head, d_head] attn.hook_q/k/v, hook_rot_q/k, hook_z
 *   result  [batch, pos, head, d_model] attn.hook_result
 *   pattern [batch, head, dest, src]   attn.hook_attn_scores, hook_pattern
 *   mlp     [batch, pos, d_mlp]        mlp.hook_pre, hook_post
 */
export type ActivationLayout = 'resid' | 'scale' | 'heads' | 'result' | 'pattern' | 'mlp';

/** Per block, in the order the forward pass meets them; `ln2` reads resid_mid when the residual is sequential. */
const BLOCK_HOOKS: readonly [string, ActivationLayout][] = [
  ['hook_resid_pre', 'resid'],
  ['ln1.hook_scale', 'scale'],
  ['ln1.hook_normalized', 'resid'],
  ['attn.hook_q', 'heads'],
  ['attn.hook_k', 'heads'],
  ['attn.hook_v', 'heads'],
  ['attn.hook_rot_q', 'heads'],
  ['attn.hook_rot_k', 'heads'],
  ['attn.hook_attn_scores', 'pattern'],
  ['attn.hook_pattern', 'pattern'],
  ['attn.hook_z', 'heads'],
  ['attn.hook_result', 'result'],
  ['hook_attn_out', 'resid'],
  ['hook_resid_mid', 'resid'],
  ['ln2.hook_scale', 'scale'],
  ['ln2.hook_normalized', 'resid'],
  ['mlp.hook_pre', 'mlp'],
  ['mlp.hook_post', 'mlp'],
  ['hook_mlp_out', 'resid'],
  ['hook_resid_post', 'resid'],
];

/** Names the fused attention op does not materialise: asking for one builds the decomposed attention. */
export const DECOMPOSED_ONLY = /\.attn\.hook_(attn_scores|pattern)$/;

/** Every named activation of a model, in the order the forward pass meets them. */
export function activationNames(config: NeoXConfig): string[] {
  const names = ['hook_embed'];
  for (let i = 0; i < config.numLayers; i++) {
    for (const [hook] of BLOCK_HOOKS) {
      if (hook === 'hook_resid_mid' && config.parallelResidual) continue;
      names.push(`blocks.${i}.${hook}`);
    }
  }
  names.push('ln_final.hook_scale', 'ln_final.hook_normalized');
  return names;
}

const LAYOUTS: ReadonlyMap<string, ActivationLayout> = new Map(BLOCK_HOOKS);

export function activationLayout(name: string): ActivationLayout {
  if (name === 'hook_embed' || name === 'ln_final.hook_normalized') return 'resid';
  if (name === 'ln_final.hook_scale') return 'scale';
  const layout = LAYOUTS.get(name.replace(/^blocks\.\d+\./, ''));
  if (!layout) throw new ConfigError(`${name} is not a named activation`);
  return layout;
}

/** The activation's shape for `batch` rows of `seq` tokens. */
export function activationShape(config: NeoXConfig, name: string, batch: number, seq: number): number[] {
  const H = config.hiddenSize;
  const nh = config.numHeads;
  switch (activationLayout(name)) {
    case 'resid':
      return [batch, seq, H];
    case 'scale':
      return [batch, seq, 1];
    case 'heads':
      return [batch, seq, nh, headDim(config)];
    case 'result':
      return [batch, seq, nh, H];
    case 'pattern':
      return [batch, nh, seq, seq];
    case 'mlp':
      return [batch, seq, config.intermediateSize];
  }
}

/** The axis that runs over positions (the destination position of a pattern), and the head axis if any. */
export function layoutAxes(layout: ActivationLayout): { position: number; head?: number } {
  if (layout === 'pattern') return { position: 2, head: 1 };
  if (layout === 'heads' || layout === 'result') return { position: 1, head: 2 };
  return { position: 1 };
}

/** fnmatch-style: `*` any run of characters (dots included), `?` one character. */
function globPattern(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

export const HOW_TO_LIST_NAMES = '`pythia activations <checkpoint> --list` or model.activationNames() lists them';

/**
 * The names that `patterns` (exact names or globs) pick out, in forward order without repeats.
 * A pattern that matches nothing is refused in one line.
 */
export function resolveActivationNames(config: NeoXConfig, patterns: readonly string[]): string[] {
  const all = activationNames(config);
  const picked = new Set<string>();
  for (const pattern of patterns) {
    const re = globPattern(pattern);
    const matches = all.filter((n) => re.test(n));
    if (matches.length === 0) {
      const why =
        pattern === 'blocks.0.hook_resid_mid' || /hook_resid_mid$/.test(pattern)
          ? ' (this model has a parallel residual: no hook_resid_mid, as in TransformerLens)'
          : '';
      throw new ConfigError(
        `activation name ${JSON.stringify(pattern)} matches none of this model's ${all.length} named activations${why}; ${HOW_TO_LIST_NAMES}`,
      );
    }
    for (const m of matches) picked.add(m);
  }
  return all.filter((n) => picked.has(n));
}

/**
 * What the graph builder asks at each hook point. `at` is called only where `wants` says yes; the
 * builder then computes the activation in TransformerLens's shape, and on the main path wherever
 * `edits` says it is edited (LayerNorm scale and normalized, per-head results, scores and pattern
 * are otherwise side branches or not computed at all).
 */
export interface HookSet {
  wants(name: string): boolean;
  edits(name: string): boolean;
  /** Records `t` under `name` and returns it, or the edited tensor where an intervention asks. */
  at(name: string, t: Tensor): Tensor;
}

/** Replaces an activation by its edited form inside the graph (interventions.ts). */
export type ActivationEditor = (name: string, t: Tensor) => Tensor;

/** A hook set that records `names` as outputs and applies `editor` to `edited`. */
export class ActivationHooks implements HookSet {
  /** The recorded activations, by name. */
  readonly outputs = new Map<string, Tensor>();
  private readonly read: ReadonlySet<string>;
  private readonly edited: ReadonlySet<string>;

  constructor(
    names: readonly string[],
    edited: readonly string[] = [],
    private readonly editor?: ActivationEditor,
  ) {
    this.read = new Set(names);
    this.edited = new Set(edited);
  }

  wants(name: string): boolean {
    return this.read.has(name) || this.edited.has(name);
  }

  edits(name: string): boolean {
    return this.edited.has(name);
  }

  at(name: string, t: Tensor): Tensor {
    const out = this.edited.has(name) && this.editor ? this.editor(name, t) : t;
    if (this.read.has(name)) this.outputs.set(name, out);
    return out;
  }
}
