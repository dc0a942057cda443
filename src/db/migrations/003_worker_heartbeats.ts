import type { Kysely } from 'kysely';

// One row per running outbox worker, refreshed while it runs and deleted when it stops, so any
// web instance's /readyz can tell whether mail is being sent. Portable schema-builder calls only.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('worker_heartbeats')
    .addColumn('id', 'varchar(255)', (c) => c.primaryKey())
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('beat_at', 'bigint', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('worker_heartbeats').ifExists().execute();
}
