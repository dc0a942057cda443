// Changing the address of an account (SPEC §2, docs/decisions/012). The current password is
// asked for; a link and a code go to the new address, which replaces the old one only once it is
// confirmed; the old address is told at once, with a way to stop the change. Whether the new
// address already belongs to someone else is never told to the requester.
import type { Transaction } from 'kysely';
import { type AppContext, messageIdDomain } from '../context.ts';
import type { Database, User } from '../db/schema.ts';
import { enqueueEmail } from '../mail/outbox.ts';
import {
  checkCode,
  codeFailureAnswer,
  consumeToken,
  failedOutright,
  findByToken,
  issueVerification,
  looksLikeToken,
  markUsed,
} from '../tokens/tokens.ts';
import { isValidEmail, normaliseEmail } from './email.ts';
import { verifyPassword } from './password.ts';
import { type NewSession, rotateSession } from './session.ts';
import { findUserById } from './user.ts';

export type EmailChangeRequestResult =
  /** `session`: this session's new id, since the password was just typed again (ASVS 7.2.4). */
  | { status: 'pending'; newEmail: string; session: NewSession }
  | {
      status: 'invalid';
      field: 'newEmail' | 'password';
      code: 'email_invalid' | 'email_unchanged' | 'current_password_invalid';
      message: string;
    };

export type EmailChangeResult =
  | { status: 'changed'; userId: string; email: string }
  | { status: 'already_changed'; userId: string; email: string }
  /** The address got an account of its own meanwhile: told only to whoever proved the mailbox. */
  | { status: 'taken' }
  | { status: 'expired' }
  | { status: 'invalid' };

export type EmailChangeCodeResult =
  | EmailChangeResult
  | { status: 'code_invalid' }
  | { status: 'too_many_attempts' };

export interface PendingEmailChange {
  newEmail: string;
  expiresAt: number;
}

/** Checks the input that needs no secret (before any limit is counted or password hashed). */
export function validateEmailChange(
  user: Pick<User, 'email_normalized'>,
  newEmail: string,
): Extract<EmailChangeRequestResult, { status: 'invalid' }> | null {
  if (!isValidEmail(newEmail)) {
    return {
      status: 'invalid',
      field: 'newEmail',
      code: 'email_invalid',
      message: 'Enter a valid email address, such as name@example.com.',
    };
  }
  if (normaliseEmail(newEmail) === user.email_normalized) {
    return {
      status: 'invalid',
      field: 'newEmail',
      code: 'email_unchanged',
      message: 'This is already the address of your account.',
    };
  }
  return null;
}

/**
 * Asks for the change. Both outcomes do the same work and answer the same: a fresh secret is
 * stored for the new address, the old address gets its notice, and the new address gets either
 * the link and code or, when another account already uses it, a note saying so instead.
 */
export async function requestEmailChange(
  ctx: AppContext,
  user: User,
  input: {
    newEmail: string;
    password: string;
    currentSessionIdHash: string;
    requestId?: string | null;
  },
): Promise<EmailChangeRequestResult> {
  const invalid = validateEmailChange(user, input.newEmail);
  if (invalid) return invalid;
  if (!(await verifyPassword(user.password_hash, input.password))) {
    return {
      status: 'invalid',
      field: 'password',
      code: 'current_password_invalid',
      message: 'That is not your current password.',
    };
  }
  const newEmail = input.newEmail.trim();
  const { config } = ctx;
  const now = ctx.clock.now();
  const mail = {
    flow: 'email-change',
    requestId: input.requestId ?? null,
    now,
    random: ctx.random,
    messageIdDomain: messageIdDomain(config),
  };
  const session = await ctx.db.kysely.transaction().execute(async (trx) => {
    const taken = await trx
      .selectFrom('users')
      .select('id')
      .where('email_normalized', '=', normaliseEmail(newEmail))
      .executeTakeFirst();
    // One pending change per account: asking again replaces the earlier one.
    await trx
      .deleteFrom('verifications')
      .where('user_id', '=', user.id)
      .where('purpose', '=', 'email_change')
      .execute();
    const { token, code } = await issueVerification(trx, {
      purpose: 'email_change',
      target: newEmail,
      userId: user.id,
      now,
      linkTtlSeconds: config.ttl.emailChangeLinkSeconds,
      codeTtlSeconds: config.ttl.codeSeconds,
      secretKey: config.secretKey,
      random: ctx.random,
    });
    if (taken) {
      await enqueueEmail(trx, {
        ...mail,
        to: newEmail,
        template: 'email-change-taken',
        data: { loginUrl: `${config.baseUrl}/login` },
      });
    } else {
      await enqueueEmail(trx, {
        ...mail,
        to: newEmail,
        template: 'email-change-verify',
        data: {
          url: `${config.baseUrl}/account/email/confirm/${token}`,
          code,
          linkMinutes: Math.round(config.ttl.emailChangeLinkSeconds / 60),
          codeMinutes: Math.round(
            Math.min(config.ttl.codeSeconds, config.ttl.emailChangeLinkSeconds) / 60,
          ),
        },
      });
    }
    await enqueueEmail(trx, {
      ...mail,
      to: user.email,
      template: 'email-change-notice',
      data: { newEmail, forgotUrl: `${config.baseUrl}/forgot` },
    });
    return rotateSession(ctx, trx, user.id, input.currentSessionIdHash);
  });
  ctx.mailQueued();
  return { status: 'pending', newEmail, session };
}

/** The change waiting for confirmation, if any (shown on the account page). */
export async function pendingEmailChange(
  ctx: AppContext,
  userId: string,
): Promise<PendingEmailChange | null> {
  const row = await ctx.db.kysely
    .selectFrom('verifications')
    .select(['target', 'expires_at'])
    .where('user_id', '=', userId)
    .where('purpose', '=', 'email_change')
    .where('used_at', 'is', null)
    .where('expires_at', '>', ctx.clock.now())
    .orderBy('created_at', 'desc')
    .executeTakeFirst();
  return row ? { newEmail: row.target, expiresAt: row.expires_at } : null;
}

export async function cancelEmailChange(ctx: AppContext, userId: string): Promise<void> {
  await ctx.db.kysely
    .deleteFrom('verifications')
    .where('user_id', '=', userId)
    .where('purpose', '=', 'email_change')
    .where('used_at', 'is', null)
    .execute();
}

/**
 * Moves the account to the proven address: older secrets for the old address (sign-up, reset)
 * and other pending changes stop working. Sessions stay: the password did not change.
 */
async function applyEmailChange(
  trx: Transaction<Database>,
  input: { userId: string; newEmail: string; verificationId: string; now: number },
): Promise<EmailChangeResult> {
  const normalized = normaliseEmail(input.newEmail);
  const other = await trx
    .selectFrom('users')
    .select('id')
    .where('email_normalized', '=', normalized)
    .where('id', '<>', input.userId)
    .executeTakeFirst();
  if (other) return { status: 'taken' };
  const changed = await trx
    .updateTable('users')
    .set({
      email: input.newEmail,
      email_normalized: normalized,
      email_verified_at: input.now,
      updated_at: input.now,
    })
    .where('id', '=', input.userId)
    .executeTakeFirst();
  if (Number(changed.numUpdatedRows) !== 1) return { status: 'invalid' };
  await trx
    .deleteFrom('verifications')
    .where('user_id', '=', input.userId)
    .where('purpose', 'in', ['signup', 'reset', 'email_change'])
    .where('id', '<>', input.verificationId)
    .execute();
  return { status: 'changed', userId: input.userId, email: input.newEmail };
}

/** The second of two racing confirmations may still hit the unique address: it was taken. */
function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'ER_DUP_ENTRY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

async function inTransaction<T extends EmailChangeCodeResult>(
  ctx: AppContext,
  work: (trx: Transaction<Database>) => Promise<T>,
): Promise<T | { status: 'taken' }> {
  try {
    return await ctx.db.kysely.transaction().execute(work);
  } catch (error) {
    if (isUniqueViolation(error)) return { status: 'taken' };
    throw error;
  }
}

async function alreadyChanged(
  trx: Transaction<Database>,
  userId: string | null,
  target: string,
): Promise<EmailChangeResult | null> {
  const user = userId ? await findUserById(trx, userId) : undefined;
  if (!user || user.email_normalized !== normaliseEmail(target)) return null;
  return { status: 'already_changed', userId: user.id, email: user.email };
}

/** Confirms with the emailed link. Only the POST of the confirm page (or the API) calls this. */
export async function confirmEmailChangeToken(
  ctx: AppContext,
  token: string,
): Promise<EmailChangeResult> {
  if (!looksLikeToken(token)) return { status: 'invalid' };
  const now = ctx.clock.now();
  return inTransaction(ctx, async (trx): Promise<EmailChangeResult> => {
    const spent = await consumeToken(trx, 'email_change', token, now);
    if (spent?.user_id) {
      return applyEmailChange(trx, {
        userId: spent.user_id,
        newEmail: spent.target,
        verificationId: spent.id,
        now,
      });
    }
    const found = await findByToken(trx, 'email_change', token, now);
    if (found.status === 'invalid') return { status: 'invalid' };
    if (found.status === 'expired') return { status: 'expired' };
    const done = await alreadyChanged(trx, found.verification.user_id, found.verification.target);
    return done ?? { status: 'invalid' };
  });
}

/** The link's state without using it (the GET of the confirm page). */
export async function checkEmailChangeLink(
  ctx: AppContext,
  token: string,
): Promise<{ status: 'valid'; newEmail: string } | EmailChangeResult> {
  const found = await findByToken(ctx.db.kysely, 'email_change', token, ctx.clock.now());
  switch (found.status) {
    case 'valid':
      return { status: 'valid', newEmail: found.verification.target };
    case 'expired':
      return { status: 'expired' };
    case 'invalid':
      return { status: 'invalid' };
    case 'used':
      return ctx.db.kysely.transaction().execute(
        async (trx) =>
          (await alreadyChanged(trx, found.verification.user_id, found.verification.target)) ?? {
            status: 'invalid',
          },
      );
  }
}

/** Confirms with the code, typed on the account page by the logged-in owner. */
export async function confirmEmailChangeCode(
  ctx: AppContext,
  userId: string,
  code: string,
): Promise<EmailChangeCodeResult> {
  const now = ctx.clock.now();
  return inTransaction(ctx, async (trx): Promise<EmailChangeCodeResult> => {
    const pending = await trx
      .selectFrom('verifications')
      .select('target')
      .where('user_id', '=', userId)
      .where('purpose', '=', 'email_change')
      .orderBy('created_at', 'desc')
      .executeTakeFirst();
    if (!pending) return { status: 'code_invalid' };
    const checked = await checkCode(trx, {
      purpose: 'email_change',
      target: pending.target,
      code,
      now,
      secretKey: ctx.config.secretKey,
      maxAttempts: ctx.config.codeMaxAttempts,
    });
    if (failedOutright(checked)) return codeFailureAnswer(checked);
    switch (checked.status) {
      case 'used':
        return (await alreadyChanged(trx, userId, pending.target)) ?? { status: 'code_invalid' };
      case 'valid': {
        if (checked.verification.user_id !== userId) return { status: 'code_invalid' };
        if (!(await markUsed(trx, checked.verification.id, now))) {
          return (await alreadyChanged(trx, userId, pending.target)) ?? { status: 'code_invalid' };
        }
        return applyEmailChange(trx, {
          userId,
          newEmail: pending.target,
          verificationId: checked.verification.id,
          now,
        });
      }
    }
  });
}
