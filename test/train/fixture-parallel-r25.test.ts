/**
 * Acceptance: five optimizer steps of test/fixtures/hf-gptneox/parallel-r25 reproduce the fixture's
 * losses, gradient norms and final weights (test/support/fixture-training.ts).
 */
import { test } from 'node:test';
import { checkFixtureTraining } from '../support/fixture-training.js';

test('parallel-r25: five torch-AdamW steps reproduce the fixture losses, gradient norms and final weights', async () => {
  await checkFixtureTraining('cpu');
});
