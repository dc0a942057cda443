// The main SQLite file is opened the way the hot paths were measured with (src/db/index.ts):
// WAL, synchronous NORMAL, a small page cache, temporary b-trees in memory, and reads through a
// memory map. Each setting was chosen by a measurement (docs/performance.md); losing one silently
// would undo it. Runs on a SQLite file of its own, whatever the project.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { type Db, openDatabase } from '../../src/db/index.ts';

let dir: string;
let db: Db;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'mp-pragmas-'));
  db = openDatabase(`sqlite:${path.join(dir, 'p.db')}`);
});
afterEach(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

async function pragma(name: string): Promise<unknown> {
  const { rows } = await sql<Record<string, unknown>>`pragma ${sql.raw(name)}`.execute(db.kysely);
  return Object.values(rows[0] ?? {})[0];
}

it('opens the main database with the measured pragmas, reads through a memory map included', async () => {
  expect(await pragma('journal_mode')).toBe('wal');
  expect(await pragma('synchronous')).toBe(1); // NORMAL
  expect(await pragma('cache_size')).toBe(-4096);
  expect(await pragma('temp_store')).toBe(2); // MEMORY
  // The measured 1 GiB, granted whole: SQLite silently caps the map at its compile-time limit.
  expect(await pragma('mmap_size')).toBe(2 ** 30);
});
