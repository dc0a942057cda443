// A transaction the database rolled back to break a deadlock is run again; other errors are not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDeadlockError, transactionRetryingDeadlocks } from '../../src/db/dialect.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

let rt: TestRuntime;
beforeAll(async () => {
  rt = await createTestRuntime({ worker: false });
});
afterAll(async () => {
  await rt.close();
});

const deadlock = (code: string) => Object.assign(new Error('Deadlock found'), { code });

async function heartbeatIds(): Promise<string[]> {
  const rows = await rt.db.kysely.selectFrom('worker_heartbeats').select('id').execute();
  return rows.map((row) => row.id).sort();
}

describe('transactionRetryingDeadlocks', () => {
  it('knows the deadlock codes of MySQL/MariaDB and PostgreSQL, and nothing else', () => {
    expect(isDeadlockError(deadlock('ER_LOCK_DEADLOCK'))).toBe(true);
    expect(isDeadlockError(deadlock('40P01'))).toBe(true);
    expect(isDeadlockError(deadlock('ER_DUP_ENTRY'))).toBe(false);
    expect(isDeadlockError(new Error('no code'))).toBe(false);
    expect(isDeadlockError(null)).toBe(false);
  });

  it('runs a deadlock victim again; only the attempt that committed leaves rows', async () => {
    let attempts = 0;
    const result = await transactionRetryingDeadlocks(rt.db.kysely, async (trx) => {
      attempts++;
      await trx
        .insertInto('worker_heartbeats')
        .values({ id: `retry-${attempts}`, started_at: 1, beat_at: 1 })
        .execute();
      if (attempts === 1) throw deadlock('ER_LOCK_DEADLOCK');
      return 'committed';
    });
    expect(result).toBe('committed');
    expect(attempts).toBe(2);
    expect(await heartbeatIds()).toEqual(['retry-2']);
  });

  it('gives up after three attempts, and never retries another error', async () => {
    let attempts = 0;
    await expect(
      transactionRetryingDeadlocks(rt.db.kysely, async () => {
        attempts++;
        throw deadlock('40P01');
      }),
    ).rejects.toMatchObject({ code: '40P01' });
    expect(attempts).toBe(3);

    attempts = 0;
    await expect(
      transactionRetryingDeadlocks(rt.db.kysely, async () => {
        attempts++;
        throw deadlock('ER_DUP_ENTRY');
      }),
    ).rejects.toMatchObject({ code: 'ER_DUP_ENTRY' });
    expect(attempts).toBe(1);
  });
});
