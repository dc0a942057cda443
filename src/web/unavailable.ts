// A database that cannot be reached is a 503 (try again shortly), not a 500: the request was
// fine, nothing it asked for was half-done (each change is one transaction), and it can be
// sent again as it is.

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  // mysql2
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  // better-sqlite3: another process holds the write lock past busy_timeout
  'SQLITE_BUSY',
]);

/** PostgreSQL SQLSTATE classes 08 (connection exception) and 57P (operator intervention). */
const PG_STATES = /^(08...|57P0[1-4]|53300)$/;

const MESSAGES = [
  /Connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /Client has encountered a connection error/i,
  /Connection lost/i,
  /the database system is (starting up|shutting down)/i,
];

export function isDatabaseUnavailable(error: unknown): boolean {
  for (
    let e = error as { code?: unknown; message?: unknown; cause?: unknown } | undefined, depth = 0;
    e && depth < 4;
    e = e.cause as typeof e, depth++
  ) {
    const code = typeof e.code === 'string' ? e.code : '';
    if (NETWORK_CODES.has(code) || PG_STATES.test(code)) return true;
    if (typeof e.message === 'string' && MESSAGES.some((m) => m.test(e?.message as string))) {
      return true;
    }
  }
  return false;
}

export const RETRY_AFTER_SECONDS = 5;
