// Server-side sessions: the cookie holds a random id, the database only its SHA-256.
import { hash } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { AppContext } from '../context.ts';
import type { Database, User } from '../db/schema.ts';
import { findUserByEmail } from './user.ts';

type Executor = Kysely<Database> | Transaction<Database>;

export interface SessionInfo {
  idHash: string;
  createdAt: number;
  expiresAt: number;
}

export type SessionValidation =
  | { session: SessionInfo; user: User }
  | { session: null; user: null };

/** How stale "last seen" may get: one write per session per five minutes, not one per request. */
const LAST_SEEN_GRANULARITY_MS = 5 * 60_000;

export function hashSessionId(token: string): string {
  return hash('sha256', token, 'hex');
}

/**
 * The name a session goes by in pages and the API (to end one of them): derived from the stored
 * hash, so it can neither be turned into a cookie nor be used to look the row up directly.
 */
export function publicSessionId(idHash: string): string {
  return hash('sha256', `session:${idHash}`, 'hex').slice(0, 16);
}

/** The idle lifetime (sliding) never reaches past the absolute one (ASVS 7.3.1, 7.3.2). */
function expiryFrom(ctx: AppContext, createdAt: number, now: number): number {
  const { sessionSeconds, sessionMaxAgeSeconds } = ctx.config.ttl;
  return Math.min(now + sessionSeconds * 1000, createdAt + sessionMaxAgeSeconds * 1000);
}

export interface NewSession {
  token: string;
  /** When the session ends if left unused (it slides forward while used). */
  expiresAt: number;
  /** When it ends however much it is used: the cookie's expiry, since the cookie never slides. */
  endsAt: number;
}

export async function createSession(
  ctx: AppContext,
  userId: string,
  db: Executor = ctx.db.kysely,
): Promise<NewSession> {
  const token = ctx.random.bytes(32).toString('base64url');
  const now = ctx.clock.now();
  const expiresAt = expiryFrom(ctx, now, now);
  const endsAt = now + ctx.config.ttl.sessionMaxAgeSeconds * 1000;
  await db
    .insertInto('sessions')
    .values({
      id_hash: hashSessionId(token),
      user_id: userId,
      created_at: now,
      expires_at: expiresAt,
      last_seen_at: now,
    })
    .execute();
  return { token, expiresAt, endsAt };
}

export async function validateSession(ctx: AppContext, token: string): Promise<SessionValidation> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return { session: null, user: null };
  const idHash = hashSessionId(token);
  const row = await ctx.db.kysely
    .selectFrom('sessions')
    .innerJoin('users', 'users.id', 'sessions.user_id')
    .selectAll('users')
    .select([
      'sessions.expires_at as session_expires_at',
      'sessions.created_at as session_created_at',
      'sessions.last_seen_at',
    ])
    .where('sessions.id_hash', '=', idHash)
    .executeTakeFirst();
  if (!row) return { session: null, user: null };
  const now = ctx.clock.now();
  const maxAge = ctx.config.ttl.sessionMaxAgeSeconds * 1000;
  if (row.session_expires_at <= now || row.session_created_at + maxAge <= now) {
    await ctx.db.kysely.deleteFrom('sessions').where('id_hash', '=', idHash).execute();
    return { session: null, user: null };
  }
  let expiresAt = row.session_expires_at;
  const lifetime = ctx.config.ttl.sessionSeconds * 1000;
  // Slide the expiry forward once half the lifetime has passed, and note when the session was
  // last used every few minutes: both rarely enough to avoid a write per request.
  const slide = expiresAt - now < lifetime / 2;
  if (slide || now - row.last_seen_at >= LAST_SEEN_GRANULARITY_MS) {
    if (slide) expiresAt = expiryFrom(ctx, row.session_created_at, now);
    await ctx.db.kysely
      .updateTable('sessions')
      .set({ expires_at: expiresAt, last_seen_at: now })
      .where('id_hash', '=', idHash)
      .execute();
  }
  const { session_expires_at: _e, session_created_at: createdAt, last_seen_at: _l, ...user } = row;
  return { session: { idHash, createdAt, expiresAt }, user };
}

export async function invalidateSession(ctx: AppContext, token: string): Promise<void> {
  await ctx.db.kysely.deleteFrom('sessions').where('id_hash', '=', hashSessionId(token)).execute();
}

export async function invalidateUserSessions(
  ctx: AppContext,
  userId: string,
  db: Executor = ctx.db.kysely,
): Promise<void> {
  await db.deleteFrom('sessions').where('user_id', '=', userId).execute();
}

/** Ends every session of the user but the one given (after a password change, say). */
export async function invalidateOtherSessions(
  db: Executor,
  userId: string,
  keepIdHash: string,
): Promise<void> {
  await db
    .deleteFrom('sessions')
    .where('user_id', '=', userId)
    .where('id_hash', '<>', keepIdHash)
    .execute();
}

export interface ActiveSession {
  /** publicSessionId(): safe to show and to send back to end the session. */
  id: string;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
  current: boolean;
}

/** The user's live sessions, newest first, with the one making the request marked. */
export async function listSessions(
  ctx: AppContext,
  userId: string,
  currentIdHash: string | null,
): Promise<ActiveSession[]> {
  const now = ctx.clock.now();
  const maxAge = ctx.config.ttl.sessionMaxAgeSeconds * 1000;
  const rows = await ctx.db.kysely
    .selectFrom('sessions')
    .select(['id_hash', 'created_at', 'last_seen_at', 'expires_at'])
    .where('user_id', '=', userId)
    .where('expires_at', '>', now)
    .where('created_at', '>', now - maxAge)
    .orderBy('created_at', 'desc')
    .execute();
  return rows.map((row) => ({
    id: publicSessionId(row.id_hash),
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    expiresAt: row.expires_at,
    current: row.id_hash === currentIdHash,
  }));
}

/** Ends the user's sessions named by their public ids; returns how many ended. */
export async function invalidateSessionsById(
  ctx: AppContext,
  userId: string,
  publicIds: readonly string[],
): Promise<number> {
  if (publicIds.length === 0) return 0;
  const wanted = new Set(publicIds);
  const rows = await ctx.db.kysely
    .selectFrom('sessions')
    .select('id_hash')
    .where('user_id', '=', userId)
    .execute();
  const idHashes = rows.map((r) => r.id_hash).filter((h) => wanted.has(publicSessionId(h)));
  if (idHashes.length === 0) return 0;
  await ctx.db.kysely
    .deleteFrom('sessions')
    .where('user_id', '=', userId)
    .where('id_hash', 'in', idHashes)
    .execute();
  return idHashes.length;
}

/**
 * A new session id after the user re-authenticates (ASVS 7.2.4): the old row goes, a new one
 * starts, so a session id seen before the password was typed again is worth nothing after.
 */
export async function rotateSession(
  ctx: AppContext,
  db: Executor,
  userId: string,
  oldIdHash: string,
): Promise<NewSession> {
  await db.deleteFrom('sessions').where('id_hash', '=', oldIdHash).execute();
  return createSession(ctx, userId, db);
}

/**
 * For operators (`mailproof users logout`, ASVS 7.4.5): ends every session of the account with
 * this address, or of every account. Returns how many ended.
 */
/** The number of sessions ended, or null when no account has the address. */
export async function endSessionsByOperator(
  db: Executor,
  which: { email: string } | 'all',
): Promise<number | null> {
  let query = db.deleteFrom('sessions');
  if (which !== 'all') {
    const user = await findUserByEmail(db, which.email);
    if (!user) return null;
    query = query.where('user_id', '=', user.id);
  }
  const { numDeletedRows } = await query.executeTakeFirst();
  return Number(numDeletedRows);
}
