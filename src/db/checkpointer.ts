// Copies a SQLite WAL back into its database from a thread of its own. The automatic checkpoint
// would otherwise run inside whichever commit crosses the threshold, on the event loop: a stall of
// every request in flight. The main database and the inbox's file each have one.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type SQLite from 'better-sqlite3';

const require = createRequire(import.meta.url);

const CHECKPOINTER_SOURCE = `
const { workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 5000');
setInterval(() => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {} }, workerData.intervalMs);
`;

/**
 * Turns off `database`'s automatic checkpoints and starts the thread that does them instead, every
 * `intervalMs`. If the thread cannot run, SQLite's own automatic checkpoints come back.
 */
export function startCheckpointer(
  database: SQLite.Database,
  file: string,
  intervalMs = 250,
): Worker {
  database.pragma('wal_autocheckpoint = 0');
  const worker = new Worker(CHECKPOINTER_SOURCE, {
    eval: true,
    workerData: { file, intervalMs, driver: require.resolve('better-sqlite3') },
  });
  worker.unref();
  worker.on('error', () => database.pragma('wal_autocheckpoint = 1000'));
  return worker;
}
