import { mkdirSync } from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, type Migration, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import type { LimitStore } from '../ratelimit/limiter.ts';
import { startCheckpointer } from './checkpointer.ts';
import type { DialectName } from './dialect.ts';
import * as m001 from './migrations/001_initial.ts';
import * as m002 from './migrations/002_contact.ts';
import * as m003 from './migrations/003_worker_heartbeats.ts';
import * as m004 from './migrations/004_account_lifecycle.ts';
import * as m005 from './migrations/005_two_step.ts';
import * as m006 from './migrations/006_recovery_code_argon2.ts';
import { mysqlTableOptions, openMysql as openMysqlPool } from './mysql.ts';
import type { SyncSqlite, SyncSqliteRunner } from './prepared.ts';
import type { Database } from './schema.ts';

export type { DialectName };

export interface Db {
  kysely: Kysely<Database>;
  dialect: DialectName;
  /** Where rate-limit counters go so every instance shares them: this database's own client. */
  limitStore: LimitStore;
  /** SQLite only: hot paths run their statements synchronously, skipping Kysely (prepared.ts). */
  sqlite?: SyncSqlite;
  close(): Promise<void>;
}

// BIGINT (int8) columns hold millisecond times: well inside Number's exact range.
pg.types.setTypeParser(20, (value) => Number(value));

export function openDatabase(databaseUrl: string): Db {
  if (databaseUrl.startsWith('sqlite:')) return openSqlite(sqlitePath(databaseUrl));
  if (/^postgres(ql)?:\/\//.test(databaseUrl)) return openPostgres(databaseUrl);
  if (/^(mysql|mariadb):\/\//.test(databaseUrl)) return openMysql(databaseUrl);
  throw new Error('Unsupported DATABASE_URL scheme');
}

export function sqlitePath(databaseUrl: string): string {
  const rest = databaseUrl.replace(/^sqlite:(\/\/)?/, '');
  return rest === ':memory:' ? rest : path.resolve(rest);
}

/** How much of the main SQLite file is read through a memory map (the rest, if any, by `pread`). */
export const SQLITE_MMAP_BYTES = 2 ** 30;

function openSqlite(file: string): Db {
  if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
  const database = new SQLite(file);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('foreign_keys = ON');
  database.pragma('busy_timeout = 5000');
  // A small page cache, on purpose; the operating system's file cache holds the rest. SQLite
  // walks its whole page cache at the end of any write transaction in which a b-tree page split
  // renumbered pages (the split swaps page numbers through a page far past the end of the file),
  // and confirms and sign-ups split pages all the time. With 64 MiB that walk was 12-16 % of the
  // confirm's main thread; a confirm's statements cost 28 µs with 2-4 MiB against 38-41 µs with
  // 64 MiB (docs/performance.md, fifth session).
  database.pragma('cache_size = -4096');
  // Temporary b-trees (an UPDATE … RETURNING, a sort) stay in memory: SQLite's default opens and
  // deletes a temporary file for each, which made the outbox claim cost 150 µs instead of 45.
  database.pragma('temp_store = MEMORY');
  // Pages are read from a memory map of the file rather than copied in by a `pread` each: a
  // confirm touches a few pages at random in indexes far larger than the 4 MiB cache above. On a
  // 400,000-account database (224 MiB) one confirm's statements cost 53-55 µs of CPU against
  // 59-60 µs with reads (bench/experiments/sqlite-mmap.ts; docs/performance.md, ninth session).
  // Only reads go through the map; writes still go to the WAL. Rails's SQLite adapter maps
  // 128 MiB by default (decision 020).
  database.pragma(`mmap_size = ${SQLITE_MMAP_BYTES}`);
  const checkpointer = file === ':memory:' ? null : startCheckpointer(database, file);
  const statements = withStatementCache(database);
  const kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: statements }) });
  return {
    kysely,
    dialect: 'sqlite',
    sqlite: syncSqlite(kysely, database, statements.prepare),
    limitStore: file === ':memory:' ? { kind: 'memory' } : { kind: 'sqlite', database },
    async close() {
      await checkpointer?.terminate();
      await kysely.destroy();
    },
  };
}

/**
 * Runs each `work` synchronously inside a better-sqlite3 transaction, holding Kysely's connection
 * so it never interleaves with a Kysely transaction that is waiting between two statements.
 *
 * Group commit: the works asked for during one turn of the event loop (the requests whose bodies
 * arrived together) share one BEGIN IMMEDIATE … COMMIT. One that throws is rolled back alone: the
 * group runs without savepoints first, and only when a work throws does it run again with a
 * savepoint for each (a savepoint per work cost ~8 % of a confirm's database time). The commit,
 * the costly part (its WAL write), is paid once per group, and every caller is answered only
 * after it: nothing is acknowledged before it is durable. Measured in docs/performance.md.
 */
function syncSqlite(
  kysely: Kysely<Database>,
  database: SQLite.Database,
  prepare: (sqlText: string) => SQLite.Statement,
): SyncSqlite {
  const run: SyncSqliteRunner = { kysely, prepare };
  type Pending = {
    work: (run: SyncSqliteRunner) => unknown;
    resolve: (value: unknown) => void;
    reject: (error: unknown) => void;
  };
  let group: Pending[] = [];

  type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };
  // The common case: every work succeeds, so none needs a savepoint of its own. One that throws
  // rolls the whole group back (better-sqlite3 rolls back a transaction whose function throws).
  const allOrNothing = database.transaction((pending: Pending[]) =>
    pending.map((item): Outcome => {
      try {
        return { ok: true, value: item.work(run) };
      } catch (error) {
        throw new WorkFailed(error);
      }
    }),
  );
  // A nested better-sqlite3 transaction is a savepoint: a work that throws is undone alone.
  const one = database.transaction((work: Pending['work']) => work(run));
  const each = database.transaction((pending: Pending[]) =>
    pending.map((item): Outcome => {
      try {
        return { ok: true, value: one(item.work) };
      } catch (error) {
        return { ok: false, error };
      }
    }),
  );
  /** Throws only when BEGIN or COMMIT failed, and then none of the group happened. */
  function runGroup(pending: Pending[]): Outcome[] {
    try {
      return allOrNothing.immediate(pending);
    } catch (error) {
      if (!(error instanceof WorkFailed)) throw error;
      if (pending.length === 1) return [{ ok: false, error: error.cause }];
      // Nothing of the group happened. Works touch nothing but the database, so they can run
      // again, each in a savepoint of its own.
      return each.immediate(pending);
    }
  }

  async function flush(): Promise<void> {
    const pending = group;
    group = [];
    try {
      const outcomes = await kysely.connection().execute(async () => runGroup(pending));
      outcomes.forEach((outcome, i) => {
        const item = pending[i] as Pending;
        if (outcome.ok) item.resolve(outcome.value);
        else item.reject(outcome.error);
      });
    } catch (error) {
      // BEGIN or COMMIT failed: none of the group happened.
      for (const item of pending) item.reject(error);
    }
  }

  return {
    transaction<T>(work: (run: SyncSqliteRunner) => T): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        if (group.length === 0) setImmediate(flush);
        group.push({ work, resolve: resolve as (value: unknown) => void, reject });
      });
    },
  };
}

/** A group's work threw: carries its error out of the transaction, which rolls back. */
class WorkFailed extends Error {
  constructor(cause: unknown) {
    super('a work of the group failed', { cause });
  }
}

const STATEMENT_CACHE_SIZE = 256;

/**
 * Kysely prepares every query afresh; preparing costs more than running these small statements.
 * The same SQL text always gets the same prepared statement (a small LRU cache).
 */
function withStatementCache(database: SQLite.Database) {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => database.close(),
    prepare(sqlText: string) {
      let statement = cache.get(sqlText);
      if (statement) {
        cache.delete(sqlText);
      } else {
        statement = database.prepare(sqlText);
        if (cache.size >= STATEMENT_CACHE_SIZE) {
          const oldest = cache.keys().next().value;
          if (oldest !== undefined) cache.delete(oldest);
        }
      }
      cache.set(sqlText, statement);
      return statement;
    },
  };
}

function openPostgres(connectionString: string): Db {
  // A connection attempt that hangs (a network cut) fails after 10 s instead of holding the request.
  const pool = new pg.Pool({ connectionString, max: 10, connectionTimeoutMillis: 10_000 });
  // A client losing its connection (a database restart, a cut) must not crash the process: idle
  // ones report on the pool, checked-out ones on themselves (their query fails on its own).
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    kysely,
    dialect: 'postgres',
    limitStore: { kind: 'postgres', pool },
    close: () => kysely.destroy(),
  };
}

function openMysql(databaseUrl: string): Db {
  const { kysely, pool, database } = openMysqlPool(databaseUrl);
  return {
    kysely,
    dialect: 'mysql',
    limitStore: { kind: 'mysql', pool, database },
    close: () => kysely.destroy(),
  };
}

const migrations: Record<string, Migration> = {
  '001_initial': m001,
  '002_contact': m002,
  '003_worker_heartbeats': m003,
  '004_account_lifecycle': m004,
  '005_two_step': m005,
  '006_recovery_code_argon2': m006,
};

/**
 * Applies the pending migrations; safe to run from several instances at once. PostgreSQL and MySQL
 * hold Kysely's migration lock (an advisory lock, GET_LOCK). Kysely takes none on SQLite, so the
 * whole run is one IMMEDIATE transaction there: the file's write lock, waited for (busy_timeout)
 * by any other process, which then finds the migrations applied.
 */
async function migratorFor(db: Db): Promise<Migrator> {
  return new Migrator({
    db: db.dialect === 'mysql' ? db.kysely.withPlugin(mysqlTableOptions) : db.kysely,
    provider: { getMigrations: async () => migrations },
    // Unless told the schema, Kysely takes its bookkeeping tables in ANY schema of the database
    // (another app's, another instance's) for ours, and then fails to find them on search_path.
    migrationTableSchema: db.dialect === 'postgres' ? await currentSchema(db) : undefined,
  });
}

/** The migrations not yet applied to the database, oldest first (all of them on a new one). */
export async function pendingMigrations(db: Db): Promise<string[]> {
  const all = await (await migratorFor(db)).getMigrations();
  return all.filter((migration) => migration.executedAt === undefined).map((m) => m.name);
}

export async function migrateToLatest(db: Db): Promise<string[]> {
  const migrator = await migratorFor(db);
  if (db.dialect === 'sqlite') await sql`begin immediate`.execute(db.kysely);
  const { error, results } = await migrator.migrateToLatest();
  if (db.dialect === 'sqlite') {
    if (!error) await sql`commit`.execute(db.kysely);
    // A failed statement may already have ended the transaction; the migration's error is the news.
    else await sql`rollback`.execute(db.kysely).catch(() => {});
  }
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

async function currentSchema(db: Db): Promise<string | undefined> {
  const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(
    db.kysely,
  );
  return rows[0]?.schema ?? undefined;
}
