// What differs between SQLite, PostgreSQL and MySQL/MariaDB, decided in one place. The domain
// writes one query; these helpers pick the dialect's form of the few statements that differ.
import {
  type DialectAdapter,
  type InsertQueryBuilder,
  type InsertResult,
  type Kysely,
  MysqlAdapter,
  PostgresAdapter,
  type SelectQueryBuilder,
  type Transaction,
  type UpdateObject,
} from 'kysely';
import type { Database } from './schema.ts';

export type DialectName = 'sqlite' | 'postgres' | 'mysql';

/** A Kysely instance or a transaction (of any database type). */
interface Executor {
  getExecutor(): { readonly adapter: DialectAdapter };
}

export function dialectOf(db: Executor): DialectName {
  const { adapter } = db.getExecutor();
  if (adapter instanceof MysqlAdapter) return 'mysql';
  if (adapter instanceof PostgresAdapter) return 'postgres';
  return 'sqlite';
}

const DUPLICATE_KEY_CODES = new Set([
  'ER_DUP_ENTRY', // MySQL: undoes the statement, not the transaction
  '23505', // PostgreSQL unique_violation: the transaction can only roll back
  'SQLITE_CONSTRAINT_UNIQUE',
  'SQLITE_CONSTRAINT_PRIMARYKEY',
]);

const DEADLOCK_CODES = new Set([
  'ER_LOCK_DEADLOCK', // MySQL/MariaDB 1213: the transaction was rolled back
  '40P01', // PostgreSQL deadlock_detected
]);

/** The database broke a deadlock by rolling this transaction back; running it again is safe. */
export function isDeadlockError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && DEADLOCK_CODES.has(code);
}

/**
 * Runs `work` in a transaction, and again (up to `attempts` times in all) when the database picks
 * it as a deadlock's victim. InnoDB locks a secondary index entry before the row, so two
 * transactions reaching one row through different indexes (a confirmation by token hash, a new
 * sign-up's secret by purpose and target) can deadlock however carefully their statements are
 * ordered; the answer MySQL's manual gives is to retry. `work` must be safe to run twice.
 */
export async function transactionRetryingDeadlocks<T>(
  db: Kysely<Database>,
  work: (trx: Transaction<Database>) => Promise<T>,
  attempts = 3,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction().execute(work);
    } catch (error) {
      if (attempt >= attempts || !isDeadlockError(error)) throw error;
    }
  }
}

/** A unique key (or primary key) is taken, in any of the three databases. */
export function isDuplicateKeyError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && DUPLICATE_KEY_CODES.has(code);
}

/**
 * Inserts the row unless `uniqueColumn` already holds its value; true when it went in. SQLite and
 * PostgreSQL say ON CONFLICT DO NOTHING; MySQL has no such clause (and INSERT IGNORE would also
 * swallow truncation and foreign-key errors), so there the duplicate-key error is the answer.
 */
export async function insertUnlessTaken<DB, TB extends keyof DB & string>(
  db: Executor,
  insert: InsertQueryBuilder<DB, TB, InsertResult>,
  uniqueColumn: keyof DB[TB] & string,
): Promise<boolean> {
  if (dialectOf(db) === 'mysql') {
    try {
      await insert.execute();
      return true;
    } catch (error) {
      if (isDuplicateKeyError(error)) return false;
      throw error;
    }
  }
  const result = await insert
    // biome-ignore lint/suspicious/noExplicitAny: Kysely cannot narrow a generic table's columns
    .onConflict((oc) => oc.column(uniqueColumn as any).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
}

/**
 * Inserts the row, or updates the one holding its unique key with `update`: ON CONFLICT (columns)
 * DO UPDATE on SQLite and PostgreSQL, ON DUPLICATE KEY UPDATE on MySQL. MySQL's form fires on any
 * unique key of the table, so the other unique columns must be ones that never collide (random ids
 * and token hashes).
 */
export function upsert<DB, TB extends keyof DB & string>(
  db: Executor,
  insert: InsertQueryBuilder<DB, TB, InsertResult>,
  uniqueColumns: ReadonlyArray<keyof DB[TB] & string>,
  update: UpdateObject<DB, TB>,
): InsertQueryBuilder<DB, TB, InsertResult> {
  if (dialectOf(db) === 'mysql') return insert.onDuplicateKeyUpdate(update);
  return insert.onConflict((oc) =>
    // biome-ignore lint/suspicious/noExplicitAny: Kysely cannot narrow a generic table's columns
    oc.columns(uniqueColumns as any).doUpdateSet(update as any),
  );
}

/**
 * Locks the selected rows until the transaction ends (SELECT … FOR UPDATE) where the database has
 * row locks. SQLite has none and needs none: a process's transactions take turns on its one
 * connection, and another process writing in between makes the later write fail, not act on a
 * stale read.
 */
export function lockForUpdate<DB, TB extends keyof DB, O>(
  db: Executor,
  query: SelectQueryBuilder<DB, TB, O>,
  options: { skipLocked?: boolean } = {},
): SelectQueryBuilder<DB, TB, O> {
  if (dialectOf(db) === 'sqlite') return query;
  const locked = query.forUpdate();
  return options.skipLocked ? locked.skipLocked() : locked;
}
