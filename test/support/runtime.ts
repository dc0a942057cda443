// Builds a real Mailproof runtime for a test: a real SQLite file, a real PostgreSQL schema or a
// real MariaDB/MySQL database, made for the test file and dropped when it closes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { Logger } from 'pino';
import { type Clock, manualClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import { migrateToLatest, openDatabase } from '../../src/db/index.ts';
import type { MessageDetail } from '../../src/inbox/store.ts';
import type { MailTransport } from '../../src/mail/transport.ts';
import { createRuntime, type Runtime } from '../../src/runtime.ts';

export type TestDb = 'sqlite' | 'postgres' | 'mariadb';

export const testDb: TestDb =
  process.env.MAILPROOF_TEST_DB === 'postgres' || process.env.MAILPROOF_TEST_DB === 'mariadb'
    ? process.env.MAILPROOF_TEST_DB
    : 'sqlite';

/** A database server (PostgreSQL or MariaDB), as in production, rather than an embedded file. */
export const serverDb = testDb !== 'sqlite';

export const POSTGRES_URL =
  process.env.MAILPROOF_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export const MARIADB_URL =
  process.env.MAILPROOF_TEST_MARIADB_URL ?? 'mysql://root@127.0.0.1:3306/test';

export interface TestRuntime extends Runtime {
  clock: Clock & { advance(ms: number): void };
  dataDir: string;
  /** The newest message to `address`, waiting up to `waitMs` for it. */
  mailTo(address: string, options?: { waitMs?: number; since?: number }): Promise<MessageDetail>;
}

export interface TestRuntimeOptions {
  env?: Record<string, string>;
  transport?: MailTransport;
  worker?: boolean;
  /** A logger to use instead of the configured one (e.g. one writing to an in-memory stream). */
  log?: Logger;
}

export async function createPostgresSchema(): Promise<{ url: string; drop(): Promise<void> }> {
  const schema = `mp_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(
      `PostgreSQL is not reachable at ${POSTGRES_URL} (${(error as Error).message}). ` +
        'The postgres test project needs it: start it (pg_ctlcluster <version> main start) or set MAILPROOF_TEST_POSTGRES_URL.',
    );
  }
  await client.query(`CREATE SCHEMA ${schema}`);
  await client.end();
  const url = new URL(POSTGRES_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: POSTGRES_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    },
  };
}

/** A database of its own on the MariaDB server (MySQL's schemas are databases). */
export async function createMariadbDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const database = `mp_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = await connectMariadb();
  try {
    await admin.query(`CREATE DATABASE ${database}`);
  } finally {
    await admin.end();
  }
  const url = new URL(MARIADB_URL);
  url.pathname = `/${database}`;
  return {
    url: url.toString(),
    async drop() {
      const c = await connectMariadb();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${database}`);
      } finally {
        await c.end();
      }
    },
  };
}

async function connectMariadb(): Promise<mysql.Connection> {
  try {
    return await mysql.createConnection(MARIADB_URL);
  } catch (error) {
    throw new Error(
      `MariaDB is not reachable at ${MARIADB_URL} (${(error as Error).message}). ` +
        'The mariadb test project needs it: start it (start-stop-daemon --start --oknodo ' +
        '--background --exec /usr/sbin/mariadbd) or set MAILPROOF_TEST_MARIADB_URL.',
    );
  }
}

/** A fresh, empty database of the project's kind: its URL, and how to drop it. */
export async function createTestDatabase(
  dataDir: string,
): Promise<{ url: string; drop(): Promise<void> }> {
  if (testDb === 'postgres') return createPostgresSchema();
  if (testDb === 'mariadb') return createMariadbDatabase();
  return { url: `sqlite:${path.join(dataDir, 'mailproof.db')}`, drop: async () => {} };
}

export async function createTestRuntime(options: TestRuntimeOptions = {}): Promise<TestRuntime> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'mailproof-test-'));
  const database = await createTestDatabase(dataDir);
  const config = loadConfig({
    dotenvPath: false,
    env: {
      NODE_ENV: 'test',
      DATA_DIR: dataDir,
      DATABASE_URL: database.url,
      BASE_URL: 'http://mailproof.test',
      LOG_LEVEL: 'silent',
      ...options.env,
    },
  });
  const migrationDb = openDatabase(config.databaseUrl);
  await migrateToLatest(migrationDb);
  await migrationDb.close();

  // Starts at the real time, so cookies set for a real browser are not already expired.
  const clock = manualClock(Date.now());
  const runtime = await createRuntime(config, {
    clock,
    log: options.log,
    transport: options.transport,
    worker: options.worker ?? true,
    workerOptions: { idlePollMs: 50, baseBackoffMs: 10 },
  });
  await runtime.app.ready();
  runtime.worker?.start();
  const close = runtime.close;

  return Object.assign(runtime, {
    clock,
    dataDir,
    async mailTo(address: string, opts: { waitMs?: number; since?: number } = {}) {
      if (!runtime.inbox) throw new Error('the inbox is disabled in this runtime');
      const message = await runtime.inbox.waitForLatest(
        address,
        opts.waitMs ?? 5000,
        opts.since ?? 0,
      );
      if (!message) throw new Error(`no message to ${address} arrived`);
      return message;
    },
    async close() {
      await close();
      await database.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  });
}
