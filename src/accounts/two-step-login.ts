// The second step of a login (docs/decisions/014). A right password on an account with two-step
// sign-in makes no session: it makes a challenge, a random token (only its SHA-256 is stored) that
// lives five minutes and takes five wrong codes. The right code makes the session, exactly as a
// password-only login would, and spends the challenge.
import { hash } from 'node:crypto';
import type { AppContext } from '../context.ts';
import type { User } from '../db/schema.ts';
import { looksLikeToken, newToken } from '../tokens/tokens.ts';
import { createSession } from './session.ts';
import { type CodeProblem, useSecondFactor } from './two-step.ts';
import { findUserById } from './user.ts';

export const CHALLENGE_SECONDS = 5 * 60;
export const CHALLENGE_MAX_ATTEMPTS = 5;

function hashChallenge(token: string): string {
  return hash('sha256', `two-step:${token}`, 'hex');
}

export interface Challenge {
  token: string;
  expiresAt: number;
}

/** Starts the second step for a user whose password was just found right. */
export async function startChallenge(ctx: AppContext, userId: string): Promise<Challenge> {
  const token = newToken(ctx.random);
  const now = ctx.clock.now();
  const expiresAt = now + CHALLENGE_SECONDS * 1000;
  // Expired challenges go here (and when seen), so they never pile up.
  await ctx.db.kysely.deleteFrom('two_step_challenges').where('expires_at', '<=', now).execute();
  await ctx.db.kysely
    .insertInto('two_step_challenges')
    .values({
      id_hash: hashChallenge(token),
      user_id: userId,
      attempts: 0,
      created_at: now,
      expires_at: expiresAt,
    })
    .execute();
  return { token, expiresAt };
}

/** The account a live challenge belongs to (so its wrong codes can be counted), or null. */
export async function challengeOwner(ctx: AppContext, token: string): Promise<string | null> {
  if (!looksLikeToken(token)) return null;
  const idHash = hashChallenge(token);
  const row = await ctx.db.kysely
    .selectFrom('two_step_challenges')
    .select(['user_id', 'expires_at', 'attempts'])
    .where('id_hash', '=', idHash)
    .executeTakeFirst();
  if (!row) return null;
  if (row.expires_at <= ctx.clock.now()) {
    await ctx.db.kysely.deleteFrom('two_step_challenges').where('id_hash', '=', idHash).execute();
    return null;
  }
  return row.attempts < CHALLENGE_MAX_ATTEMPTS ? row.user_id : null;
}

export type ChallengeResult =
  | {
      status: 'ok';
      user: User;
      sessionToken: string;
      /** The session's absolute end, which the cookie's expiry follows (as for a login). */
      expiresAt: number;
      /** Set when a recovery code was used: how many are left. */
      recoveryCodesLeft?: number;
    }
  | (CodeProblem & { attemptsLeft: number })
  /** The fifth wrong code: the challenge is gone, the person logs in again. */
  | { status: 'too_many_attempts' }
  /** Unknown, expired or already answered: log in again. */
  | { status: 'challenge_invalid' };

/**
 * Answers a challenge with a code from the app or a recovery code. Each try takes one of the
 * allowed attempts before the code is looked at, atomically, so parallel guesses cannot all slip
 * past the limit; the fifth wrong one deletes the challenge.
 */
export async function answerChallenge(
  ctx: AppContext,
  token: string,
  code: string,
): Promise<ChallengeResult> {
  if (!looksLikeToken(token)) return { status: 'challenge_invalid' };
  const idHash = hashChallenge(token);
  const db = ctx.db.kysely;
  const now = ctx.clock.now();
  const row = await db
    .selectFrom('two_step_challenges')
    .select(['user_id', 'expires_at'])
    .where('id_hash', '=', idHash)
    .executeTakeFirst();
  if (!row) return { status: 'challenge_invalid' };
  if (row.expires_at <= now) {
    await db.deleteFrom('two_step_challenges').where('id_hash', '=', idHash).execute();
    return { status: 'challenge_invalid' };
  }
  const reserved = await db
    .updateTable('two_step_challenges')
    .set((eb) => ({ attempts: eb('attempts', '+', 1) }))
    .where('id_hash', '=', idHash)
    .where('attempts', '<', CHALLENGE_MAX_ATTEMPTS)
    .executeTakeFirst();
  if (Number(reserved.numUpdatedRows) === 0) return { status: 'challenge_invalid' };

  const factor = await useSecondFactor(ctx, db, row.user_id, code);
  if (factor.status === 'ok') {
    const done = await db.transaction().execute(async (trx) => {
      // Whoever deletes the challenge makes the session: one right answer, one session.
      const deleted = await trx
        .deleteFrom('two_step_challenges')
        .where('id_hash', '=', idHash)
        .executeTakeFirst();
      const user = await findUserById(trx, row.user_id);
      if (Number(deleted.numDeletedRows) === 0 || !user) return null;
      return { user, session: await createSession(ctx, user.id, trx) };
    });
    if (!done) return { status: 'challenge_invalid' };
    return {
      status: 'ok',
      user: done.user,
      sessionToken: done.session.token,
      expiresAt: done.session.endsAt,
      ...(factor.via === 'recovery_code' ? { recoveryCodesLeft: factor.recoveryCodesLeft } : {}),
    };
  }
  if (factor.status === 'not_enabled') {
    // Turned off since the password was typed: that login asked for something that no longer
    // exists. Logging in again asks only for what the account has now.
    await db.deleteFrom('two_step_challenges').where('id_hash', '=', idHash).execute();
    return { status: 'challenge_invalid' };
  }
  const after = await db
    .selectFrom('two_step_challenges')
    .select('attempts')
    .where('id_hash', '=', idHash)
    .executeTakeFirst();
  const used = after?.attempts ?? CHALLENGE_MAX_ATTEMPTS;
  if (used >= CHALLENGE_MAX_ATTEMPTS) {
    await db.deleteFrom('two_step_challenges').where('id_hash', '=', idHash).execute();
    return { status: 'too_many_attempts' };
  }
  return { ...factor, attemptsLeft: CHALLENGE_MAX_ATTEMPTS - used };
}
