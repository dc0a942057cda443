// The operator's view of the outbox, shared by the CLI and the /admin/outbox page: what is queued,
// what died and why, re-queueing dead letters and purging old rows. Nothing here reveals a
// recipient or a payload: addresses are redacted, webhook URLs reduced to their host.
import type { Kysely } from 'kysely';
import { redactEmail } from '../accounts/email.ts';
import type { Database, OutboxKind, OutboxStatus } from '../db/schema.ts';
import { redactEmails } from '../logger.ts';
import { type OutboxCounts, outboxCounts } from './outbox.ts';

type Executor = Kysely<Database>;

export const OUTBOX_STATUSES: readonly OutboxStatus[] = ['pending', 'sent', 'dead'];

export interface OutboxEntry {
  id: string;
  kind: OutboxKind;
  status: OutboxStatus;
  attempts: number;
  template: string;
  flow: string;
  /** `j***@***.com` for mail, the host for a webhook. */
  recipient: string;
  createdAt: number;
  nextAttemptAt: number;
  sentAt: number | null;
  /** The last failure, addresses redacted; null once sent. */
  lastError: string | null;
}

export interface ListOutboxOptions {
  status?: OutboxStatus;
  limit?: number;
}

export const MAX_LIST_LIMIT = 1000;

/** Newest first. */
export async function listOutbox(
  db: Executor,
  options: ListOutboxOptions = {},
): Promise<OutboxEntry[]> {
  const limit = Math.min(Math.max(1, options.limit ?? 50), MAX_LIST_LIMIT);
  let query = db
    .selectFrom('outbox')
    // Never the payload: it can hold a one-time link or code, or a contact message.
    .select([
      'id',
      'kind',
      'status',
      'attempts',
      'template',
      'flow',
      'to_address',
      'created_at',
      'next_attempt_at',
      'sent_at',
      'last_error',
    ])
    .orderBy('created_at', 'desc')
    .orderBy('id')
    .limit(limit);
  if (options.status) query = query.where('status', '=', options.status);
  const rows = await query.execute();
  return rows.map((row) => ({
    id: row.id,
    kind: row.kind,
    status: row.status,
    attempts: Number(row.attempts),
    template: row.template,
    flow: row.flow,
    recipient: redactRecipient(row.kind, row.to_address),
    createdAt: Number(row.created_at),
    nextAttemptAt: Number(row.next_attempt_at),
    sentAt: row.sent_at === null ? null : Number(row.sent_at),
    lastError: row.last_error === null ? null : redactEmails(row.last_error),
  }));
}

function redactRecipient(kind: OutboxKind, to: string): string {
  if (kind !== 'webhook') return redactEmail(to);
  try {
    return new URL(to).host;
  } catch {
    return '(webhook)';
  }
}

export type RetryTarget = { id: string } | { allDead: true };

/**
 * Puts dead letters back in the queue, due now, with a fresh attempt count, so a message gets
 * MAIL_MAX_ATTEMPTS tries again (kept, the count would kill it at its next failure). The last
 * error stays, so the next attempt's provenance says why it had died. Only dead rows change:
 * a pending or sent message is never sent again from here. Returns how many were re-queued.
 */
export async function retryDeadLetters(
  db: Executor,
  target: RetryTarget,
  now: number,
): Promise<number> {
  let query = db
    .updateTable('outbox')
    .set({
      status: 'pending',
      attempts: 0,
      next_attempt_at: now,
      locked_until: null,
      locked_by: null,
    })
    .where('status', '=', 'dead');
  if ('id' in target) query = query.where('id', '=', target.id);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows);
}

export interface PurgeOptions {
  /** Deletes sent rows whose sending is older than this many milliseconds. */
  sentOlderThanMs?: number;
  /** Deletes every dead letter. */
  dead?: boolean;
}

export interface PurgeResult {
  sent: number;
  dead: number;
}

/** Deletes old sent rows and/or dead letters; pending rows are never purged. */
export async function purgeOutbox(
  db: Executor,
  options: PurgeOptions,
  now: number,
): Promise<PurgeResult> {
  const result: PurgeResult = { sent: 0, dead: 0 };
  if (options.sentOlderThanMs !== undefined) {
    const deleted = await db
      .deleteFrom('outbox')
      .where('status', '=', 'sent')
      .where('sent_at', '<', now - options.sentOlderThanMs)
      .executeTakeFirst();
    result.sent = Number(deleted.numDeletedRows);
  }
  if (options.dead) {
    const deleted = await db.deleteFrom('outbox').where('status', '=', 'dead').executeTakeFirst();
    result.dead = Number(deleted.numDeletedRows);
  }
  return result;
}

export interface OutboxOverview {
  counts: OutboxCounts;
  /** Age of the oldest message still waiting to be sent; null when none waits. */
  oldestPendingSeconds: number | null;
}

export async function outboxOverview(db: Executor, now: number): Promise<OutboxOverview> {
  const [counts, oldest] = await Promise.all([
    outboxCounts(db),
    db
      .selectFrom('outbox')
      .select((eb) => eb.fn.min<number | null>('created_at').as('created_at'))
      .where('status', '=', 'pending')
      .executeTakeFirst(),
  ]);
  const createdAt =
    oldest?.created_at === null || oldest?.created_at === undefined
      ? null
      : Number(oldest.created_at);
  return {
    counts,
    oldestPendingSeconds: createdAt === null ? null : Math.max(0, (now - createdAt) / 1000),
  };
}

/** 42s, 5m, 3h, 2d: the largest whole unit. */
export function formatAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}
