// `mailproof start` with the password hash replaced by a stand-in, to see what the main thread
// costs per sign-up when the hashes are not there to disturb it (decision 019). Driven by
// bench/experiments/signup-main-thread.sh, which runs wrk against it and reads /proc.
//   STAND_IN=real    the real hash pool (the baseline)
//   STAND_IN=timer   a timer of STAND_IN_MS (default 30) in place of each hash; with JITTER=1
//                    each timer runs 0.5–1.5 times that, so answers do not arrive together
//   STAND_IN=pool    the real hash pool, whose threads sleep STAND_IN_MS (default 8) instead of
//                    hashing: the dispatch without the hashes' CPU and memory
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../../tsconfig.json', import.meta.url)) });
const { hashPool, hashPassword } = await import('../../src/accounts/password.ts');
const mode = process.env.STAND_IN ?? 'real';
if (mode !== 'real') {
  const stored = await hashPassword('bench passphrase: correct horse battery staple');
  const ms = Number(process.env.STAND_IN_MS ?? (mode === 'pool' ? 8 : 30));
  const answer = (job) => (job.op === 'hash' ? stored : true);
  if (mode === 'pool') {
    await hashPool.close();
    const { HashPool } = await import('../../src/accounts/hash-pool.ts');
    process.env.STAND_IN_HASH = stored;
    const sleeping = new HashPool({
      workerUrl: new URL('./sleeping-hash-worker.mjs', import.meta.url),
    });
    hashPool.run = (job) => sleeping.run(job);
  } else {
    const jitter = process.env.JITTER === '1';
    hashPool.run = (job) =>
      new Promise((resolve) =>
        setTimeout(() => resolve(answer(job)), jitter ? ms * (0.5 + Math.random()) : ms),
      );
  }
}
process.argv = [process.argv[0], 'mailproof', 'start'];
await import('../../src/cli.ts');
