/** PyTorch `torch.save` zip checkpoints (pytorch_model.bin). */
import { FormatError } from '../util/errors.js';
import type { TensorSource } from './tensor-file.js';

export function openTorchCheckpoint(path: string): TensorSource {
  throw new FormatError(path, 'PyTorch checkpoints are not supported yet');
}
