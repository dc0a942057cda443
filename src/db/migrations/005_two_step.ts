import type { Kysely } from 'kysely';

// Two-step sign-in (docs/decisions/014): the authenticator's secret, a secret being set up,
// recovery codes, and logins waiting for their second step. Every row belongs to an account and
// goes with it (ON DELETE CASCADE on all three databases; SQLite has foreign keys switched on
// per connection); a secret being set up also goes with the session it was shown to.
// Portable schema-builder calls only.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('two_step_totp')
    .addColumn('user_id', 'varchar(36)', (c) =>
      c.primaryKey().references('users.id').onDelete('cascade'),
    )
    .addColumn('secret', 'varchar(255)', (c) => c.notNull())
    .addColumn('last_used_step', 'bigint')
    .addColumn('enabled_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('two_step_enrolments')
    .addColumn('session_id_hash', 'varchar(64)', (c) =>
      c.primaryKey().references('sessions.id_hash').onDelete('cascade'),
    )
    .addColumn('user_id', 'varchar(36)', (c) =>
      c.notNull().references('users.id').onDelete('cascade'),
    )
    .addColumn('secret', 'varchar(255)', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('two_step_enrolments_user')
    .on('two_step_enrolments')
    .column('user_id')
    .execute();

  await db.schema
    .createTable('two_step_recovery_codes')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('user_id', 'varchar(36)', (c) =>
      c.notNull().references('users.id').onDelete('cascade'),
    )
    .addColumn('code_hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('two_step_recovery_codes_user')
    .on('two_step_recovery_codes')
    .column('user_id')
    .execute();

  await db.schema
    .createTable('two_step_challenges')
    .addColumn('id_hash', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('user_id', 'varchar(36)', (c) =>
      c.notNull().references('users.id').onDelete('cascade'),
    )
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('two_step_challenges_user')
    .on('two_step_challenges')
    .column('user_id')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  // Dropping a table drops its indexes on every dialect.
  for (const table of [
    'two_step_challenges',
    'two_step_recovery_codes',
    'two_step_enrolments',
    'two_step_totp',
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
