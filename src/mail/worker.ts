// Sends what the outbox holds. Rows are leased, so a worker that dies mid-send releases them
// when the lease runs out; a message may at worst be sent twice, never zero times.
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Clock, Random } from '../clock.ts';
import type { Db } from '../db/index.ts';
import type { OutboxRow } from '../db/schema.ts';
import { deliverWebhook } from '../events/webhook.ts';
import { redactEmails } from '../logger.ts';
import { renderEmail } from './render.ts';
import type { Branding } from './templates/index.ts';
import { classifySmtpError, type MailTransport, SendError } from './transport.ts';

export interface WorkerOptions {
  db: Db;
  transport: MailTransport;
  clock: Clock;
  random: Random;
  log: Logger;
  branding: Branding;
  from: string;
  maxAttempts: number;
  /** Signs webhook deliveries (outbox rows of kind `webhook`). */
  webhookSecret?: string | null;
  batchSize?: number;
  leaseMs?: number;
  idlePollMs?: number;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  onSent?(row: OutboxRow): void;
  onDead?(row: OutboxRow, error: string): void;
}

export interface OutboxWorker {
  start(): void;
  /** Wakes the loop at once; called after a transaction that enqueued mail commits. */
  wake(): void;
  /** Runs one claim-and-send pass; returns how many rows it handled. */
  drainOnce(): Promise<number>;
  stop(): Promise<void>;
  readonly id: string;
}

/** Exponential backoff with full jitter: a random wait up to base·2^(attempt-1), capped. */
export function backoffMs(attempt: number, random: Random, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(ceiling / 2 + random.int(Math.max(1, Math.floor(ceiling / 2))));
}

export function createOutboxWorker(options: WorkerOptions): OutboxWorker {
  const {
    db,
    transport,
    clock,
    random,
    log,
    batchSize = 50,
    leaseMs = 60_000,
    idlePollMs = 1000,
    baseBackoffMs = 5000,
    maxBackoffMs = 3_600_000,
  } = options;
  const id = `${hostname()}:${process.pid}:${random.bytes(4).toString('hex')}`;
  let running = false;
  let wakeRequested = false;
  let wakeUp: (() => void) | null = null;
  let loop: Promise<void> | null = null;

  /** Leases a batch of due rows in one statement; on PostgreSQL other workers skip them. */
  async function claim(): Promise<OutboxRow[]> {
    const now = clock.now();
    return db.kysely
      .updateTable('outbox')
      .set((eb) => ({
        locked_until: now + leaseMs,
        locked_by: id,
        attempts: eb('attempts', '+', 1),
      }))
      .where('id', 'in', (eb) => {
        const due = eb
          .selectFrom('outbox')
          .select('id')
          .where('status', '=', 'pending')
          .where('next_attempt_at', '<=', now)
          .where((w) => w.or([w('locked_until', 'is', null), w('locked_until', '<', now)]))
          .orderBy('next_attempt_at')
          .limit(batchSize);
        return db.dialect === 'postgres' ? due.forUpdate().skipLocked() : due;
      })
      .returningAll()
      .execute();
  }

  async function deliver(row: OutboxRow & { payload: string }): Promise<void> {
    if (row.kind === 'webhook') {
      if (!options.webhookSecret) throw new SendError('webhook: no secret configured', true);
      await deliverWebhook({
        url: row.to_address,
        deliveryId: row.id,
        event: row.template,
        body: row.payload,
        secret: options.webhookSecret,
        nowMs: clock.now(),
      });
      return;
    }
    const rendered = renderEmail(row.template, JSON.parse(row.payload), options.branding);
    await transport.send({
      from: options.from,
      to: row.to_address,
      ...rendered,
      messageId: row.message_id,
      provenance: {
        template: row.template,
        flow: row.flow,
        requestId: row.request_id,
        outboxId: row.id,
        attempt: row.attempts,
        previousError: row.last_error,
      },
    });
  }

  async function sendOne(row: OutboxRow): Promise<void> {
    try {
      if (row.payload === null) throw new SendError('message has no payload', true);
      await deliver({ ...row, payload: row.payload });
    } catch (error) {
      await recordFailure(row, error instanceof SendError ? error : classifySmtpError(error));
      return;
    }
    // Only the worker holding the lease records the outcome: one that overran its lease must
    // not overwrite what another worker has since done with the row.
    await db.kysely
      .updateTable('outbox')
      .set({
        status: 'sent',
        sent_at: clock.now(),
        payload: null,
        locked_until: null,
        locked_by: null,
        last_error: null,
      })
      .where('id', '=', row.id)
      .where('locked_by', '=', id)
      .execute();
    try {
      options.onSent?.(row);
    } catch (error) {
      log.error({ err: error, outboxId: row.id }, 'onSent hook failed');
    }
  }

  async function recordFailure(row: OutboxRow, error: SendError): Promise<void> {
    const dead = error.permanent || row.attempts >= options.maxAttempts;
    const now = clock.now();
    await db.kysely
      .updateTable('outbox')
      .set({
        status: dead ? 'dead' : 'pending',
        next_attempt_at: dead
          ? now
          : now + backoffMs(row.attempts, random, baseBackoffMs, maxBackoffMs),
        locked_until: null,
        locked_by: null,
        last_error: error.message,
      })
      .where('id', '=', row.id)
      .where('locked_by', '=', id)
      .execute();
    log.warn(
      {
        outboxId: row.id,
        template: row.template,
        attempt: row.attempts,
        dead,
        // SMTP replies often quote the recipient; the log gets the reply without the address.
        error: redactEmails(error.message),
      },
      dead ? 'email dead-lettered' : 'email send failed; will retry',
    );
    if (dead) options.onDead?.(row, error.message);
  }

  async function drainOnce(): Promise<number> {
    const rows = await claim();
    await Promise.all(rows.map(sendOne));
    return rows.length;
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakeUp = null;
        resolve();
      }
      wakeUp = done;
    });
  }

  async function run(): Promise<void> {
    while (running) {
      wakeRequested = false;
      let handled = 0;
      try {
        handled = await drainOnce();
      } catch (error) {
        log.error({ err: error }, 'outbox worker pass failed; retrying shortly');
      }
      if (!running) break;
      if (handled === 0 && !wakeRequested) await sleep(idlePollMs);
    }
  }

  return {
    id,
    start() {
      if (running) return;
      running = true;
      loop = run();
    },
    wake() {
      wakeRequested = true;
      wakeUp?.();
    },
    drainOnce,
    async stop() {
      running = false;
      wakeUp?.();
      await loop;
      loop = null;
    },
  };
}
