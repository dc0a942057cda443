import { type Kysely, sql } from 'kysely';
import { dialectOf } from '../dialect.ts';

// Recovery codes are stored as argon2id hashes (ASVS 6.5.2, docs/decisions/014) instead of
// HMAC-SHA-256: an encoded hash (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`, about 97 characters)
// does not fit the varchar(64) of 005. The codes stored before cannot be converted (only their
// keyed hashes were kept), so they are deleted: accounts keep two-step sign-in and their app, and
// make new recovery codes on /account/two-step. SQLite does not enforce a varchar's length (and
// has no ALTER COLUMN), so there only the rows go.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`delete from two_step_recovery_codes`.execute(db);
  await widen(db, 'varchar(255)');
}

export async function down(db: Kysely<unknown>): Promise<void> {
  // argon2id hashes do not fit the old column, nor does the old code read them.
  await sql`delete from two_step_recovery_codes`.execute(db);
  await widen(db, 'varchar(64)');
}

async function widen(db: Kysely<unknown>, type: 'varchar(255)' | 'varchar(64)'): Promise<void> {
  const dialect = dialectOf(db);
  if (dialect === 'postgres') {
    await db.schema
      .alterTable('two_step_recovery_codes')
      .alterColumn('code_hash', (c) => c.setDataType(type))
      .execute();
  } else if (dialect === 'mysql') {
    // MySQL has no ALTER COLUMN … TYPE: MODIFY restates the whole column, NOT NULL included.
    await db.schema
      .alterTable('two_step_recovery_codes')
      .modifyColumn('code_hash', type, (c) => c.notNull())
      .execute();
  }
}
