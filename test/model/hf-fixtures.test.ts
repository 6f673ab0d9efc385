/**
 * The model against Hugging Face transformers' own outputs (test/fixtures/hf-gptneox, made by
 * GPTNeoXForCausalLM in float32): logits, hidden states, loss, every gradient, greedy generation
 * with and without the KV cache (test/support/hf-fixture-checks.ts).
 */
import { describe, test } from 'node:test';
import { checkForwardFixture, checkGenerateFixture, FIXTURE_CASES } from '../support/hf-fixture-checks.js';

for (const name of FIXTURE_CASES) {
  describe(`HF fixture ${name}`, () => {
    test('logits, hidden states, loss and every gradient', () => checkForwardFixture(name));
    test('greedy generation with and without the KV cache', () => checkGenerateFixture(name));
  });
}
