/**
 * Interventions on named activations. ONNX has no run-time hooks, so an edit is made of graph
 * inputs: per edited activation a mask of the cells (row, position, head) it touches and what
 * they become. One compiled graph serves every edit of the same activations: which cells, which
 * rows and what values are data, so a batch of differently patched rows runs as one call. (Patched
 * values are fed as one row for every row, unless two patches put different values at the same
 * position and head of different rows: then a row per batch row, which is a second graph.)
 *
 *   patch  the cells take a supplied activation's values (activation patching)
 *   ablate heads at hook_z: zero, or their mean over every row and position of the batch
 *   scale  the cells are multiplied by a factor
 *
 * Applied in that order where they meet. A cell is one [row, position, head] of an activation's
 * leading axes (row, destination position, head for scores and pattern); its trailing axis
 * (d_model, d_head, d_mlp or source position) is taken whole.
 */
import type { Graph } from '../graph/graph.js';
import * as op from '../graph/ops.js';
import type { Dim } from '../graph/shape.js';
import type { HostTensor } from '../runtime/session.js';
import { ConfigError } from '../util/errors.js';
import type { NeoXConfig } from './config.js';
import {
  type Activation,
  type ActivationEditor,
  activationLayout,
  activationNames,
  activationShape,
  HOW_TO_LIST_NAMES,
  layoutAxes,
} from './hooks.js';

/** Which cells an edit touches; each list defaults to all. */
export interface EditCells {
  /** Batch rows. */
  rows?: readonly number[];
  /** Positions (the destination position of scores and pattern). */
  positions?: readonly number[];
  /** Heads, for activations with a head axis. */
  heads?: readonly number[];
}

export interface ActivationPatch extends EditCells {
  name: string;
  /** Values shaped as the activation, or with one row for every row (e.g. the same name from a clean run's cache). */
  value: Activation;
}

export interface HeadAblation {
  layer: number;
  head: number;
  /** `zero` (default), or `mean`: the head's mean z over every row and position of the batch. */
  kind?: 'zero' | 'mean';
  rows?: readonly number[];
  positions?: readonly number[];
}

export interface ActivationScale extends EditCells {
  name: string;
  factor: number;
}

export interface Interventions {
  patch?: readonly ActivationPatch[];
  ablate?: readonly HeadAblation[];
  scale?: readonly ActivationScale[];
}

/** What the graph needs for one edited activation; equal structures share a compiled graph. */
interface EditStructure {
  name: string;
  /** Rows of the fed value: one for every row, or one per row; absent without patches. */
  valueRows?: 1 | 'batch';
  mean: boolean;
  factor: boolean;
}

export interface EditPlan {
  edits: EditStructure[];
  /** Identifies the graph: the edited names and what each takes. */
  key: string;
  feeds: Record<string, HostTensor>;
}

const feedName = (name: string, part: 'set' | 'value' | 'mean' | 'factor'): string => `edit:${name}:${part}`;

/** The cell axes' sizes of an activation: [rows, position or head, (head or position)]. */
function cellDims(config: NeoXConfig, name: string, batch: number, seq: number): number[] {
  return activationShape(config, name, batch, seq).slice(0, -1);
}

/** The mask's graph shape: the cell axes, then 1 for the trailing axis. */
function maskShape(config: NeoXConfig, name: string): Dim[] {
  const dims: Dim[] = cellDims(config, name, 1, 1);
  dims[0] = 'batch';
  dims[layoutAxes(activationLayout(name)).position] = 'seq';
  return [...dims, 1];
}

function valueShape(config: NeoXConfig, name: string, rows: 1 | 'batch'): Dim[] {
  const dims: Dim[] = activationShape(config, name, 1, 1);
  dims[0] = rows;
  dims[layoutAxes(activationLayout(name)).position] = 'seq';
  if (activationLayout(name) === 'pattern') dims[3] = 'seq';
  return dims;
}

function checkIndices(list: readonly number[] | undefined, size: number, what: string): number[] {
  if (list === undefined) return Array.from({ length: size }, (_, i) => i);
  for (const i of list)
    if (!Number.isInteger(i) || i < 0 || i >= size) throw new ConfigError(`${what}: ${i} is outside [0, ${size})`);
  return [...list];
}

/** Every cell (flat index into the cell axes) that `cells` picks out. */
function cellIndices(
  config: NeoXConfig,
  name: string,
  batch: number,
  seq: number,
  cells: EditCells,
  where: string,
): number[] {
  const dims = cellDims(config, name, batch, seq);
  const axes = layoutAxes(activationLayout(name));
  if (cells.heads !== undefined && axes.head === undefined)
    throw new ConfigError(`${where}.heads: ${name} has no head axis`);
  const pick: number[][] = dims.map(() => []);
  pick[0] = checkIndices(cells.rows, batch, `${where}.rows`);
  pick[axes.position] = checkIndices(cells.positions, seq, `${where}.positions`);
  if (axes.head !== undefined) pick[axes.head] = checkIndices(cells.heads, config.numHeads, `${where}.heads`);
  let out = [0];
  dims.forEach((size, axis) => {
    out = out.flatMap((o) => pick[axis]!.map((i) => o * size + i));
  });
  return out;
}

function checkName(config: NeoXConfig, name: unknown, where: string): string {
  if (typeof name !== 'string' || !activationNames(config).includes(name))
    throw new ConfigError(
      `${where}.name: ${JSON.stringify(name)} is not a named activation of this model (give one exact name; ${HOW_TO_LIST_NAMES})`,
    );
  return name;
}

interface Pending {
  set?: Uint8Array;
  values: { cells: number[]; value: Activation }[];
  mean?: Uint8Array;
  factor?: Float32Array;
}

/** The edits as graph inputs for `batch` rows of `seq` tokens. */
export function planEdits(config: NeoXConfig, batch: number, seq: number, interventions: Interventions = {}): EditPlan {
  const pending = new Map<string, Pending>();
  const cellCount = (name: string): number => cellDims(config, name, batch, seq).reduce((a, b) => a * b, 1);
  const entry = (name: string): Pending => {
    let e = pending.get(name);
    if (!e) {
      e = { values: [] };
      pending.set(name, e);
    }
    return e;
  };
  (interventions.patch ?? []).forEach((p, i) => {
    const where = `patch[${i}]`;
    const name = checkName(config, p.name, where);
    const full = activationShape(config, name, batch, seq);
    const dims = p.value?.dims;
    const fits =
      Array.isArray(dims) &&
      dims.length === full.length &&
      (dims[0] === batch || dims[0] === 1) &&
      dims.every((d, a) => a === 0 || d === full[a]);
    if (!fits || !(p.value.data instanceof Float32Array))
      throw new ConfigError(
        `${where}.value: expected a Float32Array of shape [${full.join(', ')}] (or with 1 row), got ${Array.isArray(dims) ? `[${dims.join(', ')}]` : typeof p.value}`,
      );
    if (p.value.data.length !== dims.reduce((a, b) => a * b, 1))
      throw new ConfigError(`${where}.value: ${p.value.data.length} values do not fill [${dims.join(', ')}]`);
    const e = entry(name);
    e.set ??= new Uint8Array(cellCount(name));
    const cells = cellIndices(config, name, batch, seq, p, where);
    for (const c of cells) e.set[c] = 1;
    e.values.push({ cells, value: p.value });
  });
  (interventions.ablate ?? []).forEach((a, i) => {
    const where = `ablate[${i}]`;
    checkIndices([a.layer], config.numLayers, `${where}.layer`);
    checkIndices([a.head], config.numHeads, `${where}.head`);
    if (a.kind !== undefined && a.kind !== 'zero' && a.kind !== 'mean')
      throw new ConfigError(`${where}.kind: expected "zero" or "mean", got ${JSON.stringify(a.kind)}`);
    const name = `blocks.${a.layer}.attn.hook_z`;
    const cells = cellIndices(
      config,
      name,
      batch,
      seq,
      { rows: a.rows, positions: a.positions, heads: [a.head] },
      where,
    );
    const e = entry(name);
    if (a.kind === 'mean') {
      e.mean ??= new Uint8Array(cellCount(name));
      for (const c of cells) e.mean[c] = 1;
    } else {
      e.factor ??= new Float32Array(cellCount(name)).fill(1);
      for (const c of cells) e.factor[c] = 0;
    }
  });
  (interventions.scale ?? []).forEach((s, i) => {
    const where = `scale[${i}]`;
    const name = checkName(config, s.name, where);
    if (typeof s.factor !== 'number' || !Number.isFinite(s.factor))
      throw new ConfigError(`${where}.factor: expected a finite number, got ${JSON.stringify(s.factor)}`);
    const e = entry(name);
    e.factor ??= new Float32Array(cellCount(name)).fill(1);
    for (const c of cellIndices(config, name, batch, seq, s, where)) e.factor[c]! *= s.factor;
  });

  const edits: EditStructure[] = [];
  const feeds: Record<string, HostTensor> = {};
  for (const name of [...pending.keys()].sort()) {
    const e = pending.get(name)!;
    const mask = [...cellDims(config, name, batch, seq), 1];
    const structure: EditStructure = { name, mean: e.mean !== undefined, factor: e.factor !== undefined };
    if (e.set) {
      feeds[feedName(name, 'set')] = { data: e.set, dims: mask };
      const value = mergedValue(config, name, batch, seq, e.values);
      structure.valueRows = value.dims[0] === 1 ? 1 : 'batch';
      feeds[feedName(name, 'value')] = value;
    }
    if (e.mean) feeds[feedName(name, 'mean')] = { data: e.mean, dims: mask };
    if (e.factor) feeds[feedName(name, 'factor')] = { data: e.factor, dims: mask };
    edits.push(structure);
  }
  return { edits, key: JSON.stringify(edits), feeds };
}

/**
 * One value for all the patches of an activation: the one supplied when every patch gives the same
 * array; else one row when every value has one row and no two claim the same position and head;
 * else a whole batch, each patch's cells copied from its own value.
 */
function mergedValue(
  config: NeoXConfig,
  name: string,
  batch: number,
  seq: number,
  values: Pending['values'],
): Activation {
  const first = values[0]!.value;
  if (values.every((v) => v.value === first)) return first;
  const full = activationShape(config, name, batch, seq);
  const inner = full.at(-1)!;
  const perRow = full.slice(1, -1).reduce((a, b) => a * b, 1);
  const claimedBy = new Map<number, Activation>();
  const oneRow = values.every(({ cells, value }) => {
    if (value.dims[0] !== 1) return false;
    for (const c of cells) {
      const owner = claimedBy.get(c % perRow);
      if (owner !== undefined && owner !== value) return false;
      claimedBy.set(c % perRow, value);
    }
    return true;
  });
  const dims = oneRow ? [1, ...full.slice(1)] : full;
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
  for (const { cells, value } of values) {
    for (const c of cells) {
      const from = value.dims[0] === 1 ? c % perRow : c;
      const to = oneRow ? c % perRow : c;
      data.set(value.data.subarray(from * inner, (from + 1) * inner), to * inner);
    }
  }
  return { data, dims };
}

/** Applies a plan's edits inside `graph`: the editor the hook set calls at each edited activation. */
export function planEditor(config: NeoXConfig, plan: EditPlan, graph: Graph): ActivationEditor {
  const byName = new Map(plan.edits.map((e) => [e.name, e]));
  return (name, t) => {
    const e = byName.get(name);
    if (!e) return t;
    const mask = maskShape(config, name);
    let y = t;
    if (e.valueRows !== undefined) {
      const set = graph.input(feedName(name, 'set'), 'bool', mask);
      y = op.where(set, graph.input(feedName(name, 'value'), 'float32', valueShape(config, name, e.valueRows)), y);
    }
    if (e.mean) {
      const axes = [0, layoutAxes(activationLayout(name)).position];
      y = op.where(graph.input(feedName(name, 'mean'), 'bool', mask), op.mean(t, axes, true), y);
    }
    if (e.factor) y = op.mul(y, graph.input(feedName(name, 'factor'), 'float32', mask));
    return y;
  };
}
