import type { Kysely, Transaction } from 'kysely';
import type { Database, User } from '../db/schema.ts';
import { normaliseEmail } from './email.ts';

type Executor = Kysely<Database> | Transaction<Database>;

export function findUserByEmail(db: Executor, email: string): Promise<User | undefined> {
  return db
    .selectFrom('users')
    .selectAll()
    .where('email_normalized', '=', normaliseEmail(email))
    .executeTakeFirst();
}

export function findUserById(db: Executor, id: string): Promise<User | undefined> {
  return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

export function listUsers(db: Executor, limit = 100): Promise<User[]> {
  return db.selectFrom('users').selectAll().orderBy('created_at', 'desc').limit(limit).execute();
}
