/**
 * Child process of `trainSideBySide`: takes one job (a model, or a model's sibling) as its first
 * message, trains it, posts its events, then `done` or the error, and exits.
 */
import { carryError, type MemberJob, type MemberMessage, trainMember } from './suite-member.js';

const post = (m: MemberMessage): Promise<void> =>
  new Promise((resolve, reject) => process.send!(m, undefined, {}, (e) => (e ? reject(e) : resolve())));

// The suite's process is gone (killed, interrupted): stop as an interrupted run does.
process.once('disconnect', () => process.exit(1));

process.once('message', async (job: MemberJob) => {
  let last: MemberMessage = { type: 'done' };
  try {
    await trainMember(job, {
      onStart: (status, fromStep) => void post({ type: 'start', status, fromStep }),
      onProgress: (model, progress) => void post({ type: 'progress', model, progress }),
      onInterventionStart: (start) => void post({ type: 'intervention-start', start }),
      onWarning: (message) => void post({ type: 'warning', message }),
    });
  } catch (e) {
    last = { type: 'error', error: carryError(e) };
  }
  await post(last);
  // Everything is written; a tokenizer process or session left idle must not keep this one alive.
  process.exit(0);
});
