/** Worker thread of `trainSideBySide`: trains one model of a suite and posts its events, then `done` or the error. */
import { parentPort, workerData } from 'node:worker_threads';
import { carryError, type MemberJob, type MemberMessage, trainMember } from './suite-member.js';

const post = (m: MemberMessage) => parentPort!.postMessage(m);
try {
  await trainMember(workerData as MemberJob, {
    onStart: (status, fromStep) => post({ type: 'start', status, fromStep }),
    onProgress: (model, progress) => post({ type: 'progress', model, progress }),
    onInterventionStart: (start) => post({ type: 'intervention-start', start }),
    onWarning: (message) => post({ type: 'warning', message }),
  });
  post({ type: 'done' });
} catch (e) {
  post({ type: 'error', error: carryError(e) });
}
