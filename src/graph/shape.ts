/**
 * Shapes are static, except for named symbolic dimensions (strings such as 'batch' or 'seq')
 * that stand for sizes known only when the graph runs. Two dimensions are equal when they are the
 * same number or the same name.
 */
import { PythiaError } from '../util/errors.js';

export type Dim = number | string;
export type Shape = readonly Dim[];

export function formatShape(shape: Shape): string {
  return `[${shape.join(',')}]`;
}

export function isStatic(shape: Shape): shape is readonly number[] {
  return shape.every((d) => typeof d === 'number');
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function normalizeAxis(axis: number, rank: number, op: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new GraphError(op, `axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** numpy broadcasting; throws a GraphError naming the op when the shapes do not broadcast. */
export function broadcastShapes(op: string, ...shapes: Shape[]): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1;
    for (const s of shapes) {
      const d = s[s.length - rank + i] ?? 1;
      if (d === 1) continue;
      if (dim === 1) dim = d;
      else if (dim !== d) {
        throw new GraphError(op, `shapes ${shapes.map(formatShape).join(' and ')} do not broadcast`);
      }
    }
    out.push(dim);
  }
  return out;
}

/** A mistake in how a graph is built, reported with the op that met it. */
export class GraphError extends PythiaError {
  constructor(op: string, message: string) {
    super(`${op}: ${message}`);
  }
}
