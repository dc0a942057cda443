// Password reset by email (SPEC §2, docs/decisions/012): a link that works once, for a short
// time, for the address the account has when it is used. Asking for one answers the same whether
// or not the address has an account; using one ends every session and tells the owner.
import { type AppContext, messageIdDomain } from '../context.ts';
import type { User } from '../db/schema.ts';
import { enqueueEmail } from '../mail/outbox.ts';
import { consumeToken, findByToken, issueVerification, looksLikeToken } from '../tokens/tokens.ts';
import { isValidEmail } from './email.ts';
import { deleteExpiredDecoys, issueDecoySecret } from './email-verification.ts';
import { checkNewPassword, hashPassword, type PasswordProblem } from './password.ts';
import { findUserByEmail, findUserById } from './user.ts';

export type ResetLinkStatus = 'valid' | 'used' | 'expired' | 'invalid';

export type ResetResult =
  | { status: 'reset'; userId: string }
  | { status: 'used' | 'expired' | 'invalid' }
  | ({ status: 'weak_password' } & PasswordProblem);

/**
 * Queues a reset link when the address has an account. The caller answers the same whatever
 * happens here; without an account a decoy secret is stored instead, so both take the same time.
 */
export async function requestPasswordReset(
  ctx: AppContext,
  email: string,
  requestId: string | null,
): Promise<void> {
  if (!isValidEmail(email)) return;
  const now = ctx.clock.now();
  const { config } = ctx;
  const queued = await ctx.db.kysely.transaction().execute(async (trx) => {
    await deleteExpiredDecoys(trx, 'reset', now);
    const user = await findUserByEmail(trx, email);
    if (!user) {
      await issueDecoySecret(ctx, trx, { purpose: 'reset', email, now });
      return false;
    }
    // Unverified accounts get a link too: following it proves the address (decision 012).
    const { token } = await issueVerification(trx, {
      purpose: 'reset',
      target: user.email_normalized,
      userId: user.id,
      now,
      linkTtlSeconds: config.ttl.resetLinkSeconds,
      codeTtlSeconds: config.ttl.codeSeconds,
      secretKey: config.secretKey,
      random: ctx.random,
    });
    await enqueueEmail(trx, {
      to: user.email,
      template: 'password-reset',
      data: {
        url: `${config.baseUrl}/reset/${token}`,
        linkMinutes: Math.round(config.ttl.resetLinkSeconds / 60),
      },
      flow: 'password-reset',
      requestId,
      now,
      random: ctx.random,
      messageIdDomain: messageIdDomain(config),
    });
    return true;
  });
  if (queued) ctx.mailQueued();
}

/** Reads a reset link without using it (the GET of /reset/:token). */
export async function checkResetLink(ctx: AppContext, token: string): Promise<ResetLinkStatus> {
  const found = await findByToken(ctx.db.kysely, 'reset', token, ctx.clock.now());
  if (found.status === 'invalid') return 'invalid';
  const user = found.verification.user_id
    ? await findUserById(ctx.db.kysely, found.verification.user_id)
    : undefined;
  if (!user || !isForCurrentAddress(user, found.verification.target)) return 'invalid';
  return found.status;
}

/** A link is for the address the account had when it was sent: a changed address kills it. */
function isForCurrentAddress(user: Pick<User, 'email_normalized'>, target: string): boolean {
  return user.email_normalized === target;
}

/**
 * Sets a new password with a reset link. The new password is checked before the link is spent,
 * so a refused password leaves the link working. The account's sessions all end, pending reset
 * and email-change secrets die, the address counts as proven, and the owner is told by email.
 * Nobody is logged in: the person resetting logs in with the new password.
 */
export async function resetPassword(
  ctx: AppContext,
  input: { token: string; password: string; requestId?: string | null },
): Promise<ResetResult> {
  if (!looksLikeToken(input.token)) return { status: 'invalid' };
  const { config } = ctx;
  const before = await findByToken(ctx.db.kysely, 'reset', input.token, ctx.clock.now());
  if (before.status !== 'valid') return { status: before.status };
  const owner = before.verification.user_id
    ? await findUserById(ctx.db.kysely, before.verification.user_id)
    : undefined;
  if (!owner || !isForCurrentAddress(owner, before.verification.target)) {
    return { status: 'invalid' };
  }
  const problem = checkNewPassword(input.password, {
    minLength: config.passwordMinLength,
    email: owner.email,
    appName: config.appName,
  });
  if (problem) return { status: 'weak_password', ...problem };
  const passwordHash = await hashPassword(input.password);

  const now = ctx.clock.now();
  const result = await ctx.db.kysely.transaction().execute(async (trx): Promise<ResetResult> => {
    const spent = await consumeToken(trx, 'reset', input.token, now);
    const user = spent?.user_id ? await findUserById(trx, spent.user_id) : undefined;
    if (!spent || !user || !isForCurrentAddress(user, spent.target)) {
      // Another request used it meanwhile, or it expired between the two reads.
      const after = await findByToken(trx, 'reset', input.token, now);
      return { status: after.status === 'valid' ? 'invalid' : after.status };
    }
    await trx
      .updateTable('users')
      .set({
        password_hash: passwordHash,
        updated_at: now,
        // Whoever follows the link reads the mailbox: the address is proven.
        email_verified_at: user.email_verified_at ?? now,
      })
      .where('id', '=', user.id)
      .execute();
    await trx.deleteFrom('sessions').where('user_id', '=', user.id).execute();
    // The spent row stays (marked used) so a second click can say "already used".
    await trx
      .deleteFrom('verifications')
      .where('user_id', '=', user.id)
      .where('purpose', 'in', ['reset', 'email_change'])
      .where('id', '<>', spent.id)
      .execute();
    await enqueueEmail(trx, {
      to: user.email,
      template: 'password-changed',
      data: { via: 'reset', forgotUrl: `${config.baseUrl}/forgot` },
      flow: 'password-reset',
      requestId: input.requestId ?? null,
      now,
      random: ctx.random,
      messageIdDomain: messageIdDomain(config),
    });
    return { status: 'reset', userId: user.id };
  });
  if (result.status === 'reset') ctx.mailQueued();
  return result;
}
