// §7 Migrations are safe to run from several instances at once: on a fresh database, four
// instances migrating together apply every migration exactly once, and none fails.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { migrateToLatest, openDatabase } from '../../src/db/index.ts';
import { createTestDatabase, testDb } from '../support/runtime.ts';

const INSTANCES = 4;
const MIGRATIONS = readdirSync(path.resolve('src/db/migrations'))
  .filter((file) => /^\d+_.*\.ts$/.test(file))
  .map((file) => file.replace(/\.ts$/, ''))
  .sort();
const BIN = path.resolve('bin/mailproof.js');

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function freshDatabase(): Promise<string> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'mailproof-migrate-'));
  const database = await createTestDatabase(dataDir);
  cleanups.push(async () => {
    await database.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return database.url;
}

async function recordedMigrations(url: string): Promise<string[]> {
  const db = openDatabase(url);
  try {
    // Every table the migrations make answers a query.
    for (const table of [
      'users',
      'verifications',
      'sessions',
      'outbox',
      'contact_messages',
      'two_step_totp',
      'two_step_enrolments',
      'two_step_recovery_codes',
      'two_step_challenges',
    ] as const) {
      await db.kysely.selectFrom(table).selectAll().limit(1).execute();
    }
    // Kysely's own bookkeeping table, which the app's schema type does not describe.
    const { rows } = await sql<{ name: string }>`select name from kysely_migration`.execute(
      db.kysely,
    );
    return rows.map((row) => row.name).sort();
  } finally {
    await db.close();
  }
}

/** `mailproof migrate` in a process of its own, as an instance runs it at start-up. */
function migrateCommand(
  url: string,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'migrate'], {
      env: { PATH: process.env.PATH ?? '', DATABASE_URL: url, LOG_LEVEL: 'silent' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe(`migrations from ${INSTANCES} instances at once (${testDb})`, () => {
  it.runIf(testDb !== 'sqlite')(
    `apply each migration exactly once over ${INSTANCES} connections, without an error`,
    async () => {
      const url = await freshDatabase();
      const dbs = Array.from({ length: INSTANCES }, () => openDatabase(url));
      try {
        const outcomes = await Promise.allSettled(dbs.map((db) => migrateToLatest(db)));
        const failures = outcomes.filter((o) => o.status === 'rejected');
        expect(failures).toEqual([]);
        const applied = outcomes.flatMap((o) => (o.status === 'fulfilled' ? o.value : []));
        expect(applied.sort()).toEqual(MIGRATIONS);
      } finally {
        await Promise.all(dbs.map((db) => db.close()));
      }
      expect(await recordedMigrations(url)).toEqual(MIGRATIONS);
    },
  );

  // One SQLite file is one process's business at a time (better-sqlite3 waits for a lock by
  // blocking its thread), so the instances are processes here, as they are in production.
  it.runIf(testDb === 'sqlite')(
    `apply each migration exactly once from ${INSTANCES} processes on one file, without an error`,
    async () => {
      const url = await freshDatabase();
      const runs = await Promise.all(Array.from({ length: INSTANCES }, () => migrateCommand(url)));
      for (const run of runs) {
        expect(run.stderr).toBe('');
        expect(run.status).toBe(0);
      }
      const applied = runs.flatMap((run) => {
        const listed = /^Applied migrations: (.*)$/m.exec(run.stdout)?.[1];
        if (listed) return listed.split(', ');
        expect(run.stdout).toContain('Database is up to date.');
        return [];
      });
      expect(applied.sort()).toEqual(MIGRATIONS);
      expect(await recordedMigrations(url)).toEqual(MIGRATIONS);
    },
    60_000,
  );
});
