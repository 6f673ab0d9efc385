/** Checkpoint and array file formats: safetensors, PyTorch zip checkpoints, numpy .npy, 16-bit floats. */

export { checkpointWeightFiles, openCheckpointWeights, openShardedCheckpoint } from './checkpoint.js';
export { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './float16.js';
export { type NpyArray, type NpyDType, type NpyHeader, readNpy, readNpyHeader, writeNpy } from './npy.js';
export { openSafetensors, type SafetensorsSource, safetensorsBytes, writeSafetensors } from './safetensors.js';
export { isJsonObject, type JsonObject, JsonSyntaxError, type JsonValue, parseStrictJson } from './strict-json.js';
export {
  isStoredDType,
  numelOf,
  STORED_DTYPE_SIZE,
  type StoredDType,
  type TensorInfo,
  type TensorLocation,
  type TensorSource,
  type TensorToWrite,
} from './tensor-file.js';
export { openTorchCheckpoint } from './torch-zip.js';
