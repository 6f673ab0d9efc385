/**
 * The attention study: every head's attention pattern (`blocks.ℓ.attn.hook_pattern`) on one short
 * text, at each checkpoint, for the report's attention viewer. The text is a study setting; it is
 * tokenized with the checkpoint's tokenizer and cut to its first ATTENTION_MAX_TOKENS tokens (and
 * to the model's context). Patterns are causal, so only the weights with src ≤ dest are stored.
 */
import type { TextTokenizer } from '../data/tokenizer.js';
import type { CheckpointRef } from '../eval/checkpoints.js';
import { activationRunner, type EvalModel } from '../eval/run-task.js';
import type { ActivationRunner } from '../model/activations.js';
import { ConfigError } from '../util/errors.js';
import type { StudyRuntime } from './case-studies.js';
import { EVAL_WEIGHTS, identityKey, studyIdentity } from './identity.js';
import type { CellValue, ResultsStore } from './store.js';

export interface AttentionStudy {
  /** The text whose attention patterns are recorded (its first ATTENTION_MAX_TOKENS tokens). */
  attentionText: string;
}

/** A short sentence twice: the second copy is where an induction head attends to the token after the first. */
export const DEFAULT_ATTENTION_TEXT = 'The cat sat on the mat by the door. The cat sat on the mat by the door.';

/** The most tokens of the text the study reads: the viewer shows every pair of them. */
export const ATTENTION_MAX_TOKENS = 32;

/** The text's token ids, at most ATTENTION_MAX_TOKENS and the model's context. */
export async function attentionTokens(tokenizer: TextTokenizer, text: string, maxPositions: number): Promise<number[]> {
  const ids = (await tokenizer.encode(text)).slice(0, Math.min(ATTENTION_MAX_TOKENS, maxPositions));
  if (ids.length === 0) throw new ConfigError(`attention study: the text ${JSON.stringify(text)} has no tokens`);
  return ids;
}

/** Each layer's pattern [head, dest, src] for one row of ids, as `runner` computes it. */
export async function attentionPatterns(runner: ActivationRunner, ids: readonly number[]): Promise<Float32Array[]> {
  const { config } = runner;
  const outOfVocabulary = ids.find((id) => id >= config.vocabSize);
  if (outOfVocabulary !== undefined)
    throw new ConfigError(
      `attention study: token id ${outOfVocabulary} of the text is outside the model's vocabulary (${config.vocabSize})`,
    );
  const { cache } = await runner.run(BigInt64Array.from(ids, BigInt), 1, { names: ['blocks.*.attn.hook_pattern'] });
  return Array.from({ length: config.numLayers }, (_, l) => cache.get(`blocks.${l}.attn.hook_pattern`)!.data);
}

/** Records the patterns of the study's text at one checkpoint; false where it was there already. */
export async function recordAttention(
  store: ResultsStore,
  ref: CheckpointRef,
  model: EvalModel,
  study: AttentionStudy,
  context: StudyRuntime,
): Promise<boolean> {
  const identity = studyIdentity({
    kind: 'attention',
    model: ref.model,
    step: ref.step,
    checkpointSha256: context.checkpointSha256,
    tokenizerSha256: context.tokenizerSha256,
    device: context.device,
    weights: EVAL_WEIGHTS,
    settings: { text: study.attentionText },
  });
  const key = identityKey(identity);
  if (await store.hasStudy(key)) return false;
  const started = performance.now();
  const { config } = model;
  const ids = await attentionTokens(model.tokenizer, study.attentionText, config.maxPositions);
  const runner = activationRunner(model, context.runtime);
  let layers: Float32Array[];
  try {
    layers = await attentionPatterns(runner, ids);
  } finally {
    await runner.release();
  }
  const n = ids.length;
  const at = { study: key, model: ref.model, step: ref.step };
  const patterns: Record<string, CellValue>[] = [];
  for (const [layer, pattern] of layers.entries())
    for (let head = 0; head < config.numHeads; head++)
      for (let dest = 0; dest < n; dest++)
        for (let src = 0; src <= dest; src++)
          patterns.push({ ...at, layer, head, dest, src, weight: pattern[(head * n + dest) * n + src]! });
  await store.writeStudy(
    {
      ...identity,
      study: key,
      batchSize: 1,
      threads: context.runtime.threads ?? null,
      seconds: (performance.now() - started) / 1000,
    },
    async () => {
      await store.insertObjects(
        'attention_tokens',
        ids.map((id, position) => ({ ...at, position, token_id: id, text: model.tokenizer.decode([id]) })),
      );
      await store.insertObjects('attention_patterns', patterns);
    },
  );
  return true;
}
