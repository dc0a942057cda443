import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('contact_messages')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('email', 'varchar(320)', (c) => c.notNull())
    .addColumn('email_normalized', 'varchar(320)', (c) => c.notNull())
    .addColumn('message', 'text', (c) => c.notNull())
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('accepted_at', 'bigint')
    .execute();
  await db.schema
    .createIndex('contact_messages_status_created')
    .on('contact_messages')
    .columns(['status', 'created_at'])
    .execute();
  await db.schema
    .createIndex('contact_messages_email')
    .on('contact_messages')
    .column('email_normalized')
    .execute();
  // The outbox carries webhook deliveries too, with the same retries and dead letters as mail.
  await db.schema
    .alterTable('outbox')
    .addColumn('kind', 'varchar(16)', (c) => c.notNull().defaultTo('email'))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('outbox').dropColumn('kind').execute();
  await db.schema.dropTable('contact_messages').ifExists().execute();
}
