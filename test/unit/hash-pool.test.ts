// The pool of threads that hash passwords (src/accounts/hash-pool.ts): crashes, closing, and the
// process's lifetime.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { HashPool } from '../../src/accounts/hash-pool.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/hash-pool');
const exitingWorker = new URL(`file://${FIXTURES}/exiting-worker.mjs`);
const job = (password: string) => ({ op: 'hash' as const, password, options: {} });

describe('HashPool', () => {
  it('fails only the jobs of a thread that dies, and starts a new thread for the next', async () => {
    const pool = new HashPool({ size: 1, workerUrl: exitingWorker });
    try {
      expect(await pool.run(job('first'))).toBe('hashed:first');
      // The thread holds two jobs: the one that kills it and the next, already in its port.
      const lost = [pool.run(job('exit')), pool.run(job('second'))];
      const third = pool.run(job('third'));
      expect(pool.stats()).toEqual({ threads: 1, inThreads: 2, queued: 1 });
      for (const result of await Promise.allSettled(lost)) {
        expect(result).toMatchObject({
          status: 'rejected',
          reason: { message: 'a hash thread stopped (exit code 3)' },
        });
      }
      expect(await third).toBe('hashed:third');
      expect(await pool.run(job('fourth'))).toBe('hashed:fourth');
      expect(pool.stats()).toEqual({ threads: 1, inThreads: 0, queued: 0 });
    } finally {
      await pool.close();
    }
  });

  it('passes an error of the hash back as a rejection, and keeps its thread', async () => {
    const pool = new HashPool({ size: 1 });
    try {
      // argon2 needs at least 8 KiB per lane: the library refuses, the thread carries on.
      await expect(
        pool.run({ op: 'hash', password: 'correct horse', options: { memoryCost: 1 } }),
      ).rejects.toThrow(/memory/i);
      expect(await pool.run({ op: 'verify', hash: 'not a hash', password: 'x' })).toBe(false);
      const stored = await pool.run({ op: 'hash', password: 'correct horse', options: {} });
      expect(
        await pool.run({ op: 'verify', hash: String(stored), password: 'correct horse' }),
      ).toBe(true);
      expect(pool.stats()).toEqual({ threads: 1, inThreads: 0, queued: 0 });
    } finally {
      await pool.close();
    }
  });

  it('fails the jobs when no thread can be created, and holds none back', async () => {
    // A Worker accepts only file: and data: URLs: creating one from this one throws at once.
    const pool = new HashPool({ size: 1, workerUrl: new URL('https://example.com/worker.mjs') });
    for (const password of ['first', 'second']) {
      await expect(pool.run(job(password))).rejects.toThrow();
      expect(pool.stats()).toEqual({ threads: 0, inThreads: 0, queued: 0 });
    }
    // A thread whose module cannot be found fails its jobs the same way, a moment later.
    const missing = new HashPool({
      size: 1,
      workerUrl: new URL(`file://${FIXTURES}/no-such-worker.mjs`),
    });
    await expect(missing.run(job('third'))).rejects.toThrow(/no-such-worker/);
    expect(missing.stats()).toEqual({ threads: 0, inThreads: 0, queued: 0 });
  });

  it('spreads jobs over its threads, at most two to a thread, and queues the rest', async () => {
    const pool = new HashPool({ size: 3, workerUrl: exitingWorker });
    try {
      const work = Array.from({ length: 8 }, (_, i) => pool.run(job(`p${i}`)));
      expect(pool.stats()).toEqual({ threads: 3, inThreads: 6, queued: 2 });
      expect(await Promise.all(work)).toEqual(Array.from({ length: 8 }, (_, i) => `hashed:p${i}`));
    } finally {
      await pool.close();
    }
  });

  it('resizes: a smaller pool lets its extra threads finish their jobs, then stops them', async () => {
    const pool = new HashPool({ size: 3, workerUrl: exitingWorker });
    try {
      const first = Array.from({ length: 6 }, (_, i) => pool.run(job(`a${i}`)));
      expect(pool.stats()).toEqual({ threads: 3, inThreads: 6, queued: 0 });
      pool.resize(1);
      expect(pool.size).toBe(1);
      // The first thread is full; the two past the new size take nothing more.
      const second = Array.from({ length: 3 }, (_, i) => pool.run(job(`b${i}`)));
      expect(pool.stats()).toEqual({ threads: 3, inThreads: 6, queued: 3 });
      expect(await Promise.all([...first, ...second])).toEqual([
        ...Array.from({ length: 6 }, (_, i) => `hashed:a${i}`),
        ...Array.from({ length: 3 }, (_, i) => `hashed:b${i}`),
      ]);
      expect(pool.stats()).toEqual({ threads: 1, inThreads: 0, queued: 0 });
      // A larger pool starts its new threads as work arrives.
      pool.resize(2);
      expect(pool.stats().threads).toBe(1);
      const third = Array.from({ length: 4 }, (_, i) => pool.run(job(`c${i}`)));
      expect(pool.stats()).toEqual({ threads: 2, inThreads: 4, queued: 0 });
      await Promise.all(third);
      // An idle pool shrinks at once.
      pool.resize(1);
      expect(pool.stats()).toEqual({ threads: 1, inThreads: 0, queued: 0 });
    } finally {
      await pool.close();
    }
  });

  it('refuses the jobs still waiting when it closes, and any job after', async () => {
    const pool = new HashPool({ size: 1, workerUrl: exitingWorker });
    const work = Array.from({ length: 3 }, (_, i) => pool.run(job(`p${i}`)));
    const settled = Promise.allSettled(work);
    await pool.close();
    for (const result of await settled) {
      expect(result).toMatchObject({
        status: 'rejected',
        reason: { message: 'the hash pool is closed' },
      });
    }
    await expect(pool.run(job('late'))).rejects.toThrow('the hash pool is closed');
    expect(pool.stats()).toEqual({ threads: 0, inThreads: 0, queued: 0 });
  });

  it('holds the process open only while a thread has work', async () => {
    const pool = new HashPool({ size: 1, workerUrl: exitingWorker });
    // A thread with work holds the event loop open through its port; an idle one does not.
    const openPorts = () =>
      process.getActiveResourcesInfo().filter((resource) => resource === 'MessagePort').length;
    try {
      await pool.run(job('start'));
      const idle = openPorts();
      const pending = pool.run(job('busy'));
      expect(openPorts()).toBe(idle + 1);
      expect(await pending).toBe('hashed:busy');
      expect(openPorts()).toBe(idle);
    } finally {
      await pool.close();
    }
  });

  it('lets a process that hashed a password end on its own', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', path.join(FIXTURES, 'hash-then-exit.ts')],
      { timeout: 20_000 },
    );
    expect(stdout).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  });
});
