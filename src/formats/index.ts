/** Checkpoint and array file formats: safetensors, PyTorch zip checkpoints, numpy .npy, 16-bit floats. */
export {
  STORED_DTYPE_SIZE, isStoredDType, numelOf,
  type StoredDType, type TensorInfo, type TensorSource, type TensorToWrite,
} from './tensor-file.js';
export { openSafetensors, safetensorsBytes, writeSafetensors, type SafetensorsSource } from './safetensors.js';
export { openTorchCheckpoint } from './torch-zip.js';
export { openCheckpointWeights, openShardedCheckpoint } from './checkpoint.js';
export { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './float16.js';
export { readNpy, readNpyHeader, writeNpy, type NpyArray, type NpyDType, type NpyHeader } from './npy.js';
export { isJsonObject, JsonSyntaxError, parseStrictJson, type JsonObject, type JsonValue } from './strict-json.js';
