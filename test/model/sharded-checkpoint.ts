/** Test support: a checkpoint folder whose weights are split over many safetensors shards. */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openSafetensors, writeSafetensors } from '../../src/formats/index.js';
import { saveCheckpoint } from '../../src/model/checkpoint.js';
import { type NeoXConfig, parameterShapes, type WeightDType } from '../../src/model/config.js';
import type { Params } from '../../src/model/params.js';

/**
 * Saves `params` as `dtype` into `dir`, then splits model.safetensors into `shards` files with an
 * HF index: parameter k goes to shard k mod `shards`, so every layer spans several files.
 */
export async function writeShardedCheckpoint(
  dir: string,
  config: NeoXConfig,
  params: Params,
  dtype: WeightDType,
  shards: number,
  tokenizerPath?: string,
): Promise<void> {
  await saveCheckpoint(dir, config, params, { dtype, tokenizerPath });
  const whole = join(dir, 'model.safetensors');
  const source = openSafetensors(whole);
  const names = parameterShapes(config).map((p) => p.name);
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const mine = names.filter((_, k) => k % shards === s);
    await writeSafetensors(
      join(dir, file),
      mine.map((name) => ({ name, ...source.readRaw(name) })),
      { format: 'pt' },
    );
    for (const name of mine) weightMap[name] = file;
  }
  source.close();
  rmSync(whole);
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
}
