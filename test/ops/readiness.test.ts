// §7 /readyz: the database, and the outbox workers' heartbeats wherever the workers run.
import { describe, expect, it } from 'vitest';
import {
  beat,
  forgetWorker,
  HEARTBEAT_STALE_MS,
  startHeartbeat,
  workerLiveness,
} from '../../src/mail/heartbeat.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

async function readyz(rt: TestRuntime) {
  const res = await rt.app.inject({ url: '/readyz' });
  return { status: res.statusCode, body: res.json() as Record<string, unknown> };
}

async function heartbeatRows(rt: TestRuntime) {
  return rt.db.kysely.selectFrom('worker_heartbeats').selectAll().execute();
}

async function until(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('/readyz and worker heartbeats', () => {
  it('a web-only process reports no live worker until a `mailproof worker` beats', async () => {
    const rt = await createTestRuntime({ worker: false });
    try {
      expect(await readyz(rt)).toEqual({
        status: 200,
        body: {
          status: 'ready',
          database: 'ok',
          worker: { inProcess: false, live: 0, lastHeartbeatSecondsAgo: null },
        },
      });

      // Another process's worker (same database) beats: this instance sees it.
      const now = rt.clock.now();
      await beat(rt.db.kysely, 'other-host:4242:abcd', now - 5000, now - 60_000);
      expect((await readyz(rt)).body.worker).toEqual({
        inProcess: false,
        live: 1,
        lastHeartbeatSecondsAgo: 5,
      });
      await beat(rt.db.kysely, 'other-host:4242:abcd', now, now - 60_000);
      expect((await heartbeatRows(rt)).map((r) => [r.started_at, r.beat_at])).toEqual([
        [now - 60_000, now],
      ]);

      // Silent for longer than three beats: counted as gone, and readiness does not fail for it
      // (mail waits in the outbox; the site itself still works).
      rt.clock.advance(HEARTBEAT_STALE_MS + 1000);
      const stale = await readyz(rt);
      expect(stale.status).toBe(200);
      expect(stale.body.worker).toEqual({
        inProcess: false,
        live: 0,
        lastHeartbeatSecondsAgo: (HEARTBEAT_STALE_MS + 1000) / 1000,
      });

      await forgetWorker(rt.db.kysely, 'other-host:4242:abcd');
      expect(await workerLiveness(rt.db.kysely, rt.clock.now())).toEqual({
        live: 0,
        lastBeatSecondsAgo: null,
      });
    } finally {
      await rt.close();
    }
  });

  it('the in-process worker beats once started', async () => {
    const rt = await createTestRuntime();
    try {
      rt.startWorker();
      await until(async () => (await heartbeatRows(rt)).length === 1);
      const [row] = await heartbeatRows(rt);
      expect(row?.id).toBe(rt.worker?.id);
      expect(row?.beat_at).toBe(rt.clock.now());
      expect((await readyz(rt)).body).toEqual({
        status: 'ready',
        database: 'ok',
        worker: { inProcess: true, live: 1, lastHeartbeatSecondsAgo: 0 },
      });
    } finally {
      await rt.close();
    }
  });

  it('a heartbeat beats on its interval, forgets long-dead workers, and deletes its row on stop', async () => {
    const rt = await createTestRuntime({ worker: false });
    try {
      const db = rt.db.kysely;
      await beat(db, 'crashed-yesterday', rt.clock.now() - 25 * 3600_000, 0);
      const heartbeat = startHeartbeat({
        db,
        clock: rt.clock,
        log: rt.ctx.log,
        workerId: 'w1',
        intervalMs: 20,
      });
      await until(async () => (await heartbeatRows(rt)).map((r) => r.id).join() === 'w1');
      const first = (await heartbeatRows(rt))[0]?.beat_at ?? 0;
      rt.clock.advance(1000);
      await until(async () => ((await heartbeatRows(rt))[0]?.beat_at ?? 0) > first);
      await heartbeat.stop();
      expect(await heartbeatRows(rt)).toEqual([]);
    } finally {
      await rt.close();
    }
  });

  it('is 503 when the database is unreachable', async () => {
    const rt = await createTestRuntime({ worker: false });
    try {
      const realDb = rt.ctx.db;
      rt.ctx.db = {
        ...realDb,
        kysely: new Proxy(realDb.kysely, {
          get(target, property, receiver) {
            if (property === 'getExecutor') {
              return () => {
                throw new Error('connection refused');
              };
            }
            return Reflect.get(target, property, receiver);
          },
        }),
      };
      const res = await readyz(rt);
      rt.ctx.db = realDb;
      expect(res).toEqual({
        status: 503,
        body: { status: 'unavailable', database: 'unreachable' },
      });
    } finally {
      await rt.close();
    }
  });
});
