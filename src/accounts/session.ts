// Server-side sessions: the cookie holds a random id, the database only its SHA-256.
import { createHash } from 'node:crypto';
import type { AppContext } from '../context.ts';
import type { User } from '../db/schema.ts';

export type SessionValidation =
  | { session: { idHash: string; expiresAt: number }; user: User }
  | { session: null; user: null };

export function hashSessionId(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export async function createSession(
  ctx: AppContext,
  userId: string,
): Promise<{ token: string; expiresAt: number }> {
  const token = ctx.random.bytes(32).toString('base64url');
  const now = ctx.clock.now();
  const expiresAt = now + ctx.config.ttl.sessionSeconds * 1000;
  await ctx.db.kysely
    .insertInto('sessions')
    .values({
      id_hash: hashSessionId(token),
      user_id: userId,
      created_at: now,
      expires_at: expiresAt,
      last_seen_at: now,
    })
    .execute();
  return { token, expiresAt };
}

export async function validateSession(ctx: AppContext, token: string): Promise<SessionValidation> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return { session: null, user: null };
  const idHash = hashSessionId(token);
  const row = await ctx.db.kysely
    .selectFrom('sessions')
    .innerJoin('users', 'users.id', 'sessions.user_id')
    .selectAll('users')
    .select(['sessions.expires_at as session_expires_at', 'sessions.last_seen_at'])
    .where('sessions.id_hash', '=', idHash)
    .executeTakeFirst();
  if (!row) return { session: null, user: null };
  const now = ctx.clock.now();
  if (row.session_expires_at <= now) {
    await ctx.db.kysely.deleteFrom('sessions').where('id_hash', '=', idHash).execute();
    return { session: null, user: null };
  }
  let expiresAt = row.session_expires_at;
  const lifetime = ctx.config.ttl.sessionSeconds * 1000;
  // Slide the expiry forward once half the lifetime has passed, not on every request.
  if (expiresAt - now < lifetime / 2) {
    expiresAt = now + lifetime;
    await ctx.db.kysely
      .updateTable('sessions')
      .set({ expires_at: expiresAt, last_seen_at: now })
      .where('id_hash', '=', idHash)
      .execute();
  }
  const { session_expires_at: _e, last_seen_at: _l, ...user } = row;
  return { session: { idHash, expiresAt }, user };
}

export async function invalidateSession(ctx: AppContext, token: string): Promise<void> {
  await ctx.db.kysely.deleteFrom('sessions').where('id_hash', '=', hashSessionId(token)).execute();
}

export async function invalidateUserSessions(ctx: AppContext, userId: string): Promise<void> {
  await ctx.db.kysely.deleteFrom('sessions').where('user_id', '=', userId).execute();
}
