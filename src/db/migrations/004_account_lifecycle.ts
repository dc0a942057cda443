import type { Kysely } from 'kysely';
import { dialectOf } from '../dialect.ts';

// The account page lists a user's pending email change, and password changes, resets and account
// deletion remove a user's secrets by user: an index keeps those lookups off a full scan (and
// PostgreSQL and MySQL use it for the ON DELETE CASCADE from users too). Portable calls only.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('verifications_user_purpose')
    .on('verifications')
    .columns(['user_id', 'purpose'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  // Only MySQL names the table in DROP INDEX (and requires it); the others refuse it.
  const drop = db.schema.dropIndex('verifications_user_purpose');
  await (dialectOf(db) === 'mysql' ? drop.on('verifications') : drop).execute();
}
