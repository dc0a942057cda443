// Sends what the outbox holds. Rows are leased, so a worker that dies mid-send releases them
// when the lease runs out; a message may at worst be sent twice, never zero times.
import { hostname } from 'node:os';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Clock, Random } from '../clock.ts';
import type { OutboxHandoff } from '../context.ts';
import { lockForUpdate } from '../db/dialect.ts';
import type { Db } from '../db/index.ts';
import { preparedQuery } from '../db/prepared.ts';
import type { Database, OutboxRow } from '../db/schema.ts';
import { deliverWebhook } from '../events/webhook.ts';
import { redactEmails } from '../logger.ts';
import { renderEmail } from './render.ts';
import type { Branding } from './templates/index.ts';
import { classifySmtpError, type MailTransport, SendError, SMTP_POOL_SIZE } from './transport.ts';

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
  /** Rows sent at once; the rest of a claimed batch waits its turn (and is released on stop). */
  concurrency?: number;
  onSent?(row: OutboxRow): void;
  /** A temporary failure: the row is pending again, due after a backoff. */
  onRetry?(row: OutboxRow, error: SendError): void;
  onDead?(row: OutboxRow, error: string): void;
}

export interface OutboxWorker {
  start(): void;
  /** Wakes the loop at once; called after a transaction that enqueued mail commits. */
  wake(): void;
  /** Runs one claim-and-send pass; returns how many rows it handled. */
  drainOnce(): Promise<number>;
  /** A lease for rows this process is about to write, while the worker runs and has room. */
  offer(): OutboxHandoff | null;
  /**
   * Finishes the sends in progress, gives back the claimed rows it has not started (their lease
   * and the attempt the claim counted), and ends the loop.
   */
  stop(): Promise<void>;
  readonly id: string;
}

/**
 * Leases up to `batchSize` due rows in one statement (SQLite, PostgreSQL). Built and compiled once:
 * the worker claims after every wake-up, and building the query cost more than running it.
 */
const claimDue = preparedQuery<
  { now: number; lockedUntil: number; lockedBy: string; batchSize: number },
  OutboxRow
>((db, param) =>
  db
    .updateTable('outbox')
    .set((eb) => ({
      locked_until: param('lockedUntil'),
      locked_by: param('lockedBy'),
      attempts: eb('attempts', '+', 1),
    }))
    .where(
      'id',
      'in',
      lockForUpdate(
        db,
        db
          .selectFrom('outbox')
          .select('id')
          .where('status', '=', 'pending')
          .where('next_attempt_at', '<=', param('now'))
          .where((w) => w.or([w('locked_until', 'is', null), w('locked_until', '<', param('now'))]))
          .orderBy('next_attempt_at')
          .limit(param('batchSize')),
        { skipLocked: true },
      ),
    )
    .returningAll(),
);

/**
 * SQLite: the due rows are selected, then leased one by one, inside one synchronous transaction
 * (`Db.sqlite`, which can share its commit with requests of the same event-loop turn). A single
 * UPDATE … WHERE id IN (SELECT …) RETURNING costs SQLite 4–8 times as much (temporary b-trees for
 * the subquery and the returned rows).
 */
const selectDue = preparedQuery<{ now: number; batchSize: number }, OutboxRow>((db, param) =>
  db
    .selectFrom('outbox')
    .selectAll()
    .where('status', '=', 'pending')
    .where('next_attempt_at', '<=', param('now'))
    .where((w) => w.or([w('locked_until', 'is', null), w('locked_until', '<', param('now'))]))
    .orderBy('next_attempt_at')
    .limit(param('batchSize')),
);

const leaseRow = preparedQuery<{ id: string; lockedUntil: number; lockedBy: string }, never>(
  (db, param) =>
    db
      .updateTable('outbox')
      .set((eb) => ({
        locked_until: param('lockedUntil'),
        locked_by: param('lockedBy'),
        attempts: eb('attempts', '+', 1),
      }))
      .where('id', '=', param('id')),
);

/** SQLite: one row recorded as sent, if this worker still holds its lease. */
const markSent = preparedQuery<{ id: string; sentAt: number; lockedBy: string }, never>(
  (db, param) =>
    db
      .updateTable('outbox')
      .set({
        status: 'sent',
        sent_at: param('sentAt'),
        payload: null,
        locked_until: null,
        locked_by: null,
        last_error: null,
      })
      .where('id', '=', param('id'))
      .where('locked_by', '=', param('lockedBy')),
);

/**
 * Rows one claim leases. Each batch ends by waiting for its last send and record, and the next
 * claim is a round trip: 200 keeps those pauses a small share of the drain on PostgreSQL (50 held
 * it near 800 msg/s). It is also the most a killed worker can have sent without recording.
 */
export const CLAIM_BATCH_SIZE = 200;

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
    batchSize = CLAIM_BATCH_SIZE,
    leaseMs = 60_000,
    idlePollMs = 1000,
    baseBackoffMs = 5000,
    maxBackoffMs = 3_600_000,
    concurrency = SMTP_POOL_SIZE,
  } = options;
  const id = `${hostname()}:${process.pid}:${random.bytes(4).toString('hex')}`;
  let running = false;
  let stopping = false;
  let wakeRequested = false;
  let wakeUp: (() => void) | null = null;
  let loop: Promise<void> | null = null;

  /**
   * Leases a batch of due rows. Other workers skip rows being leased (SKIP LOCKED; SQLite has one
   * writer at a time). One statement where the database has UPDATE … RETURNING; MySQL can neither
   * return from an UPDATE nor update a table it selects from, so there the rows are selected and
   * locked, then updated, in one transaction.
   */
  async function claim(): Promise<OutboxRow[]> {
    const now = clock.now();
    const lease = { locked_until: now + leaseMs, locked_by: id };
    const due = (executor: Kysely<Database>) =>
      lockForUpdate(
        executor,
        executor
          .selectFrom('outbox')
          .where('status', '=', 'pending')
          .where('next_attempt_at', '<=', now)
          .where((w) => w.or([w('locked_until', 'is', null), w('locked_until', '<', now)]))
          .orderBy('next_attempt_at')
          .limit(batchSize),
        { skipLocked: true },
      );
    if (db.dialect === 'mysql') {
      return db.kysely.transaction().execute(async (trx) => {
        const rows = await due(trx).selectAll().execute();
        if (rows.length === 0) return [];
        await trx
          .updateTable('outbox')
          .set((eb) => ({ ...lease, attempts: eb('attempts', '+', 1) }))
          .where(
            'id',
            'in',
            rows.map((row) => row.id),
          )
          .execute();
        return rows.map((row) => ({ ...row, ...lease, attempts: row.attempts + 1 }));
      });
    }
    const sqlite = db.sqlite;
    if (sqlite) {
      return sqlite.transaction((run) => {
        const { rows } = selectDue.sync(run, { now, batchSize });
        for (const row of rows) {
          leaseRow.sync(run, { id: row.id, lockedUntil: lease.locked_until, lockedBy: id });
        }
        return rows.map((row) => ({ ...row, ...lease, attempts: row.attempts + 1 }));
      });
    }
    const { rows } = await claimDue(db.kysely, {
      now,
      lockedUntil: lease.locked_until,
      lockedBy: id,
      batchSize,
    });
    return rows;
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

  /**
   * Sends one row. A failure is recorded before this returns; a success is recorded in the
   * background (the returned promise), so the sender goes on to the next row without waiting for
   * a commit. A batch is over only once every record has committed (`sendBatch`): at most one
   * batch is ever sent and not yet recorded, so a worker killed mid-batch sends at most that batch
   * twice.
   */
  async function sendOne(row: OutboxRow): Promise<{ recorded: Promise<void> } | null> {
    try {
      if (row.payload === null) throw new SendError('message has no payload', true);
      await deliver({ ...row, payload: row.payload });
    } catch (error) {
      await recordFailure(row, error instanceof SendError ? error : classifySmtpError(error));
      return null;
    }
    // Wrapped: an async function's result that is itself a promise would be waited for.
    const recorded = recordSent(row).then(() => {
      try {
        options.onSent?.(row);
      } catch (error) {
        log.error({ err: error, outboxId: row.id }, 'onSent hook failed');
      }
    });
    return { recorded };
  }

  // Sends are recorded in groups: every send that finishes while one group's UPDATE is committing
  // joins the next group. One commit for many messages is what bounds the drain rate on a database
  // that syncs each commit; a message counts as sent only once its group has committed.
  let sentGroup: Array<{ id: string; done: () => void; failed: (error: unknown) => void }> = [];
  let flushing = false;

  function recordSent(row: OutboxRow): Promise<void> {
    return new Promise((done, failed) => {
      sentGroup.push({ id: row.id, done, failed });
      if (!flushing && sentGroup.length === 1) setImmediate(flushSent);
    });
  }

  async function flushSent(): Promise<void> {
    if (flushing || sentGroup.length === 0) return;
    flushing = true;
    const group = sentGroup;
    sentGroup = [];
    try {
      await recordGroup(group);
    } finally {
      flushing = false;
      if (sentGroup.length > 0) setImmediate(flushSent);
    }
  }

  async function recordGroup(group: typeof sentGroup): Promise<void> {
    try {
      // Only the worker holding the lease records the outcome: one that overran its lease must
      // not overwrite what another worker has since done with the row.
      const sqlite = db.sqlite;
      if (sqlite) {
        const sentAt = clock.now();
        await sqlite.transaction((run) => {
          for (const item of group) markSent.sync(run, { id: item.id, sentAt, lockedBy: id });
        });
      } else {
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
          .where(
            'id',
            'in',
            group.map((item) => item.id),
          )
          .where('locked_by', '=', id)
          .execute();
      }
      for (const item of group) item.done();
    } catch (error) {
      for (const item of group) item.failed(error);
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
    // A certificate or credentials problem is the operator's to fix: said loudly, mail kept.
    log[error.reason ? 'error' : 'warn'](
      {
        outboxId: row.id,
        template: row.template,
        attempt: row.attempts,
        dead,
        // SMTP replies often quote the recipient; the log gets the reply without the address.
        error: redactEmails(error.message),
      },
      dead
        ? 'email dead-lettered'
        : error.reason
          ? `email not sent: mail server ${error.reason} problem (fix MAIL_* settings); will retry`
          : 'email send failed; will retry',
    );
    if (dead) options.onDead?.(row, error.message);
    else options.onRetry?.(row, error);
  }

  /** Rows claimed but never started (the worker is stopping): the claim's attempt did not happen. */
  async function release(rows: OutboxRow[]): Promise<void> {
    await db.kysely
      .updateTable('outbox')
      .set((eb) => ({ locked_until: null, locked_by: null, attempts: eb('attempts', '-', 1) }))
      .where(
        'id',
        'in',
        rows.map((row) => row.id),
      )
      .where('locked_by', '=', id)
      .where('status', '=', 'pending')
      .execute();
  }

  async function drainOnce(): Promise<number> {
    return sendBatch(await claim());
  }

  /** Sends leased rows, `concurrency` at a time; returns how many it handled. */
  async function sendBatch(rows: OutboxRow[]): Promise<number> {
    const waiting = [...rows];
    const recording: Array<Promise<void>> = [];
    // Recording the outcome failed (the database is down?): the lease runs out and the row is
    // claimed again, which may send it twice but never loses it.
    const recordingFailed = (row: OutboxRow) => (error: unknown) => {
      log.error({ err: error, outboxId: row.id }, 'recording a send failed');
    };
    const sendNext = async (): Promise<void> => {
      for (let row = waiting.shift(); row; row = stopping ? undefined : waiting.shift()) {
        try {
          const sent = await sendOne(row);
          if (sent) recording.push(sent.recorded.catch(recordingFailed(row)));
        } catch (error) {
          recordingFailed(row)(error);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, rows.length) }, sendNext));
    await Promise.all(recording);
    if (waiting.length > 0) await release(waiting);
    return rows.length - waiting.length;
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

  // Rows written in this process already leased to this worker (`offer`), waiting to be sent.
  let handedOver: OutboxRow[] = [];

  function offer(): OutboxHandoff | null {
    if (!running || stopping || handedOver.length >= batchSize) return null;
    return { lockedBy: id, lockedUntil: clock.now() + leaseMs, accept };
  }

  function accept(rows: OutboxRow[]): void {
    if (running && !stopping) {
      handedOver.push(...rows);
      wakeRequested = true;
      wakeUp?.();
      return;
    }
    // Stopped between the offer and the commit: give the rows back at once, as `stop` does.
    release(rows).catch((error: unknown) => {
      log.error(
        { err: error },
        'could not release handed-over outbox rows; their lease will run out',
      );
    });
  }

  async function run(): Promise<void> {
    while (running) {
      wakeRequested = false;
      let handled = 0;
      try {
        if (handedOver.length > 0) {
          const rows = handedOver;
          handedOver = [];
          handled = await sendBatch(rows);
        } else {
          handled = await drainOnce();
        }
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
    offer,
    async stop() {
      running = false;
      stopping = true;
      wakeUp?.();
      try {
        await loop;
        if (handedOver.length > 0) await release(handedOver.splice(0));
      } finally {
        stopping = false;
        loop = null;
      }
    },
  };
}
