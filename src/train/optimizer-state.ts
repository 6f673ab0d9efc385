/**
 * The optimizer's moments on disk: `optimizer.safetensors` in each checkpoint folder, float32
 * tensors `exp_avg.<param>` and `exp_avg_sq.<param>` (torch's state names), built in memory so
 * the checkpoint folder can be written in one atomic step.
 */
import { openSafetensors, safetensorsBytes } from '../formats/safetensors.js';
import type { TensorToWrite } from '../formats/tensor-file.js';
import { FormatError } from '../util/errors.js';
import type { AdamWState } from './adamw.js';

export const OPTIMIZER_FILE = 'optimizer.safetensors';

export function optimizerStateBytes(state: AdamWState, shapes: { name: string; shape: number[] }[]): Uint8Array {
  const tensors: TensorToWrite[] = [];
  for (const { name, shape } of shapes) {
    tensors.push({ name: `exp_avg.${name}`, dtype: 'F32', shape, data: state.expAvg.get(name)! });
    tensors.push({ name: `exp_avg_sq.${name}`, dtype: 'F32', shape, data: state.expAvgSq.get(name)! });
  }
  return safetensorsBytes(tensors, { format: 'pt', step: String(state.step) });
}

export function readOptimizerState(path: string, shapes: { name: string; shape: number[] }[]): AdamWState {
  const source = openSafetensors(path);
  try {
    const step = Number(source.metadata.step);
    if (!Number.isInteger(step) || step < 0)
      throw new FormatError(
        path,
        `metadata step: expected a non-negative integer, got ${JSON.stringify(source.metadata.step)}`,
      );
    const present = new Set(source.list().map((t) => t.name));
    const read = (name: string, size: number): Float32Array => {
      if (!present.has(name)) throw new FormatError(path, `missing tensor ${name}`);
      const data = source.readFloat32(name);
      if (data.length !== size)
        throw new FormatError(path, `tensor ${name} has ${data.length} values, expected ${size}`);
      return data;
    };
    const expAvg = new Map<string, Float32Array>();
    const expAvgSq = new Map<string, Float32Array>();
    for (const { name, shape } of shapes) {
      const size = shape.reduce((a, b) => a * b, 1);
      expAvg.set(name, read(`exp_avg.${name}`, size));
      expAvgSq.set(name, read(`exp_avg_sq.${name}`, size));
    }
    return { step, expAvg, expAvgSq };
  } finally {
    source.close();
  }
}
