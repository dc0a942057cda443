// New outbox rows wake a worker in another process promptly: on PostgreSQL through
// LISTEN/NOTIFY (the notification is sent when the enqueuing transaction commits), elsewhere by
// the worker's short polling.

import pg from 'pg';
import type { Logger } from 'pino';

export const OUTBOX_CHANNEL = 'mailproof_outbox';

export interface OutboxListener {
  close(): Promise<void>;
}

/**
 * Listens on its own connection (LISTEN needs one outside the pool) and calls `onWake` for every
 * notification. A lost connection is re-established with backoff; `onWake` is also called after
 * each reconnect, in case a notification was missed while it was down.
 */
export function listenForOutbox(
  connectionString: string,
  onWake: () => void,
  log: Logger,
): OutboxListener {
  let client: pg.Client | null = null;
  let closed = false;
  let retryMs = 250;
  let timer: NodeJS.Timeout | null = null;

  const connect = async () => {
    if (closed) return;
    const next = new pg.Client({ connectionString, connectionTimeoutMillis: 5000 });
    next.on('notification', (message) => {
      if (message.channel === OUTBOX_CHANNEL) onWake();
    });
    next.on('error', (error) => {
      log.warn({ err: error }, 'outbox listener lost its database connection; reconnecting');
      reconnect(next);
    });
    next.on('end', () => reconnect(next));
    try {
      await next.connect();
      await next.query(`LISTEN ${OUTBOX_CHANNEL}`);
      if (closed) {
        await next.end().catch(() => {});
        return;
      }
      client = next;
      retryMs = 250;
      onWake();
    } catch (error) {
      log.warn({ err: error }, 'outbox listener could not connect; retrying');
      reconnect(next);
    }
  };

  const reconnect = (failed: pg.Client) => {
    if (closed || (client !== null && client !== failed) || timer) return;
    client = null;
    failed.removeAllListeners('end');
    failed.end().catch(() => {});
    timer = setTimeout(() => {
      timer = null;
      void connect();
    }, retryMs);
    timer.unref();
    retryMs = Math.min(retryMs * 2, 10_000);
  };

  void connect();
  return {
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      const current = client;
      client = null;
      if (current) {
        current.removeAllListeners('end');
        await current.end().catch(() => {});
      }
    },
  };
}
