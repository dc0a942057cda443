// One thread of the hash pool (src/accounts/hash-pool.ts). Plain JavaScript, so the thread starts
// without the TypeScript loader. Each message is one argon2id hash or check, done synchronously:
// the thread is busy with one at a time, and the next message already waits in its port when it
// finishes, so it goes straight on without sleeping (docs/performance.md, seventh session).
import { parentPort } from 'node:worker_threads';
import { hashSync, verifySync } from '@node-rs/argon2';

if (!parentPort) throw new Error('hash-worker.mjs runs only as a worker thread');
const port = parentPort;

/** A stored value that is not an argon2 hash (verifySync throws on it) matches no password. */
function matches(hash, password) {
  try {
    return verifySync(hash, password);
  } catch {
    return false;
  }
}

port.on('message', (job) => {
  try {
    const value =
      job.op === 'hash' ? hashSync(job.password, job.options) : matches(job.hash, job.password);
    port.postMessage({ id: job.id, ok: true, value });
  } catch (error) {
    port.postMessage({
      id: job.id,
      ok: false,
      message: error instanceof Error ? error.message : String(error),
    });
  }
});
