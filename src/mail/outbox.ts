// Every outgoing email is a row written in the same transaction as the change that causes it.
// A worker sends it later; nothing is sent inside a web request.
import type { Kysely, Transaction } from 'kysely';
import { newId, type Random } from '../clock.ts';
import type { Database } from '../db/schema.ts';
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

export async function enqueueEmail<Name extends TemplateName>(
  db: Executor,
  options: EnqueueOptions<Name>,
): Promise<string> {
  const id = newId(options.random);
  await db
    .insertInto('outbox')
    .values({
      id,
      // Stable across retries, so a message delivered twice is recognisable as one.
      message_id: `<${id}@${options.messageIdDomain}>`,
      to_address: options.to,
      template: options.template,
      payload: JSON.stringify(options.data),
      flow: options.flow,
      request_id: options.requestId ?? null,
      status: 'pending',
      attempts: 0,
      next_attempt_at: options.now,
      locked_until: null,
      locked_by: null,
      last_error: null,
      created_at: options.now,
      sent_at: null,
    })
    .execute();
  return id;
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
