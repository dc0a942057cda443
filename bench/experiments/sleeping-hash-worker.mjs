// A hash-pool thread that sleeps STAND_IN_MS instead of hashing (signup-stand-in.mjs, STAND_IN=pool).
import { parentPort } from 'node:worker_threads';

const cell = new Int32Array(new SharedArrayBuffer(4));
const ms = Number(process.env.STAND_IN_MS ?? 8);
parentPort.on('message', (job) => {
  Atomics.wait(cell, 0, 0, ms);
  parentPort.postMessage({
    id: job.id,
    ok: true,
    value: job.op === 'hash' ? process.env.STAND_IN_HASH : true,
  });
});
