// Every outgoing email is a row written in the same transaction as the change that causes it.
// A worker sends it later; nothing is sent inside a web request.
import type { Kysely, Transaction } from 'kysely';
import { newId, type Random } from '../clock.ts';
import type { OutboxLease } from '../context.ts';
import { preparedQuery, type SyncSqliteRunner } from '../db/prepared.ts';
import type { Database, OutboxRow } from '../db/schema.ts';
import type { TemplateData, TemplateName } from './templates/index.ts';

type Executor = Kysely<Database> | Transaction<Database>;

export interface EnqueueOptions<Name extends TemplateName> {
  to: string;
  template: Name;
  data: TemplateData<Name>;
  flow: string;
  requestId?: string | null;
  now: number;
  random: Random;
  messageIdDomain: string;
}

type OutboxValues = {
  id: string;
  messageId: string;
  to: string;
  template: string;
  payload: string;
  flow: string;
  requestId: string | null;
  now: number;
  attempts: number;
  lockedUntil: number | null;
  lockedBy: string | null;
};

/** Built and compiled once: every sign-up writes one (prepared.ts). */
const insertOutboxRow = preparedQuery<OutboxValues, never>((db, param) =>
  db.insertInto('outbox').values({
    id: param('id'),
    // Stable across retries, so a message delivered twice is recognisable as one.
    message_id: param('messageId'),
    to_address: param('to'),
    template: param('template'),
    payload: param('payload'),
    flow: param('flow'),
    request_id: param('requestId'),
    status: 'pending',
    attempts: param('attempts'),
    next_attempt_at: param('now'),
    locked_until: param('lockedUntil'),
    locked_by: param('lockedBy'),
    last_error: null,
    created_at: param('now'),
    sent_at: null,
  }),
);

function outboxValues<Name extends TemplateName>(options: EnqueueOptions<Name>): OutboxValues {
  const id = newId(options.random);
  return {
    id,
    messageId: `<${id}@${options.messageIdDomain}>`,
    to: options.to,
    template: options.template,
    payload: JSON.stringify(options.data),
    flow: options.flow,
    requestId: options.requestId ?? null,
    now: options.now,
    attempts: 0,
    lockedUntil: null,
    lockedBy: null,
  };
}

export async function enqueueEmail<Name extends TemplateName>(
  db: Executor,
  options: EnqueueOptions<Name>,
): Promise<string> {
  const values = outboxValues(options);
  await insertOutboxRow(db, values);
  return values.id;
}

/**
 * `enqueueEmail` inside a synchronous SQLite transaction (`Db.sqlite`). With a lease from
 * `AppContext.outboxHandoff`, the row is written leased to that worker, as a claim would leave it,
 * and returned for `accept` after the commit.
 */
export function enqueueEmailSync<Name extends TemplateName>(
  run: SyncSqliteRunner,
  options: EnqueueOptions<Name>,
  lease: OutboxLease | null = null,
): OutboxRow {
  const values = outboxValues(options);
  if (lease) {
    values.attempts = 1;
    values.lockedBy = lease.lockedBy;
    values.lockedUntil = lease.lockedUntil;
  }
  insertOutboxRow.sync(run, values);
  return {
    id: values.id,
    message_id: values.messageId,
    to_address: values.to,
    template: values.template,
    payload: values.payload,
    flow: values.flow,
    request_id: values.requestId,
    status: 'pending',
    attempts: values.attempts,
    next_attempt_at: values.now,
    locked_until: values.lockedUntil,
    locked_by: values.lockedBy,
    last_error: null,
    created_at: values.now,
    sent_at: null,
    kind: 'email',
  };
}

export interface OutboxCounts {
  pending: number;
  sent: number;
  dead: number;
}

export async function outboxCounts(db: Executor): Promise<OutboxCounts> {
  const rows = await db
    .selectFrom('outbox')
    .select(['status', db.fn.countAll<number>().as('count')])
    .groupBy('status')
    .execute();
  const counts: OutboxCounts = { pending: 0, sent: 0, dead: 0 };
  for (const row of rows) counts[row.status] = Number(row.count);
  return counts;
}
