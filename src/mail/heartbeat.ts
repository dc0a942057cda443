// Each running outbox worker keeps a row fresh in `worker_heartbeats`, so /readyz on any instance
// and the metrics can tell whether mail is being sent, wherever the workers run.
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import { upsert } from '../db/dialect.ts';
import type { Database } from '../db/schema.ts';

export const HEARTBEAT_INTERVAL_MS = 10_000;
/** Three missed beats: the worker is gone (killed, or its host is). */
export const HEARTBEAT_STALE_MS = 3 * HEARTBEAT_INTERVAL_MS;
/** Rows of workers that died without saying so are deleted after a day. */
const HEARTBEAT_FORGET_MS = 24 * 3600_000;

type Executor = Kysely<Database>;

/** Refreshes the worker's row, creating it on the first beat. Only its own worker writes it. */
export async function beat(
  db: Executor,
  workerId: string,
  now: number,
  startedAt: number,
): Promise<void> {
  const insert = db
    .insertInto('worker_heartbeats')
    .values({ id: workerId, started_at: startedAt, beat_at: now });
  await upsert(db, insert, ['id'], { beat_at: now }).execute();
}

export async function forgetWorker(db: Executor, workerId: string): Promise<void> {
  await db.deleteFrom('worker_heartbeats').where('id', '=', workerId).execute();
}

export interface WorkerLiveness {
  /** Workers that beat within the last HEARTBEAT_STALE_MS. */
  live: number;
  /** Seconds since the newest beat of any worker; null when none has ever beaten. */
  lastBeatSecondsAgo: number | null;
}

export async function workerLiveness(db: Executor, now: number): Promise<WorkerLiveness> {
  const row = await db
    .selectFrom('worker_heartbeats')
    .select((eb) => [
      eb.fn.max<number | null>('beat_at').as('newest'),
      eb.fn
        .sum<number | string | null>(
          eb
            .case()
            .when('beat_at', '>=', now - HEARTBEAT_STALE_MS)
            .then(1)
            .else(0)
            .end(),
        )
        .as('live'),
    ])
    .executeTakeFirst();
  const newest = row?.newest === null || row?.newest === undefined ? null : Number(row.newest);
  return {
    live: Number(row?.live ?? 0),
    lastBeatSecondsAgo: newest === null ? null : Math.max(0, Math.round((now - newest) / 1000)),
  };
}

export interface Heartbeat {
  stop(): Promise<void>;
}

/** Beats now and every HEARTBEAT_INTERVAL_MS until stopped; stopping deletes the row. */
export function startHeartbeat(options: {
  db: Executor;
  clock: Clock;
  log: Logger;
  workerId: string;
  intervalMs?: number;
}): Heartbeat {
  const { db, clock, log, workerId } = options;
  const startedAt = clock.now();
  let beating: Promise<void> = Promise.resolve();
  const tick = () => {
    beating = (async () => {
      const now = clock.now();
      await beat(db, workerId, now, startedAt);
      await db
        .deleteFrom('worker_heartbeats')
        .where('beat_at', '<', now - HEARTBEAT_FORGET_MS)
        .execute();
    })().catch((error: unknown) => log.error({ err: error }, 'worker heartbeat failed'));
  };
  tick();
  const timer = setInterval(tick, options.intervalMs ?? HEARTBEAT_INTERVAL_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await beating;
      await forgetWorker(db, workerId).catch((error: unknown) =>
        log.error({ err: error }, 'removing the worker heartbeat failed'),
      );
    },
  };
}
