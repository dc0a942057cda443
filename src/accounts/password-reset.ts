// Password reset by email (SPEC §2, docs/decisions/012): a link that works once, for a short
// time, for the address the account has when it is used. Asking for one answers the same whether
// or not the address has an account; using one ends every session and tells the owner.
import type { Transaction } from 'kysely';
import { type AppContext, messageIdDomain } from '../context.ts';
import type { Database, User } from '../db/schema.ts';
import { enqueueEmail } from '../mail/outbox.ts';
import { consumeToken, findByToken, issueVerification, looksLikeToken } from '../tokens/tokens.ts';
import { isValidEmail } from './email.ts';
import { deleteExpiredDecoys, issueDecoySecret } from './email-verification.ts';
import { checkNewPassword, hashPassword, type PasswordProblem } from './password.ts';
import {
  CODE_REQUIRED,
  type CodeProblem,
  type SecondFactorResult,
  twoStepEnabled,
  useSecondFactor,
} from './two-step.ts';
import { findUserByEmail, findUserById } from './user.ts';

export type ResetLinkStatus = 'valid' | 'used' | 'expired' | 'invalid';

export type ResetResult =
  /** `recoveryCodesLeft`: set when a recovery code was the second step. */
  | { status: 'reset'; userId: string; recoveryCodesLeft?: number }
  | { status: 'used' | 'expired' | 'invalid' }
  | ({ status: 'weak_password' } & PasswordProblem)
  /** Two-step sign-in is on and the code is missing or wrong: the link stays unspent. */
  | { status: 'two_step_refused'; code: CodeProblem['code']; message: string };

/** Ends a reset's transaction without keeping what it wrote (a spent link or code). */
class Undo extends Error {
  constructor(readonly result: ResetResult) {
    super(result.status);
  }
}

function refusedBy(problem: CodeProblem): ResetResult {
  return { status: 'two_step_refused', code: problem.code, message: problem.message };
}

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

/**
 * The account behind a live reset link when it has two-step sign-in on (the form then asks for a
 * code, and wrong codes count against the account); null otherwise.
 */
export async function resetLinkTwoStepUser(ctx: AppContext, token: string): Promise<string | null> {
  const found = await findByToken(ctx.db.kysely, 'reset', token, ctx.clock.now());
  const userId = found.status === 'valid' ? found.verification.user_id : null;
  return userId && (await twoStepEnabled(ctx.db.kysely, userId)) ? userId : null;
}

/** A link is for the address the account had when it was sent: a changed address kills it. */
function isForCurrentAddress(user: Pick<User, 'email_normalized'>, target: string): boolean {
  return user.email_normalized === target;
}

/**
 * Sets a new password with a reset link. The new password is checked before the link is spent,
 * so a refused password leaves the link working. An account with two-step sign-in also needs a
 * code from the app or a recovery code (ASVS 6.4.3: a reset does not bypass it); a missing or
 * wrong one leaves the link working too, and two-step sign-in stays on. The account's sessions
 * all end, pending reset and email-change secrets die, the address counts as proven, and the
 * owner is told by email. Nobody is logged in: the person resetting logs in with the new password.
 */
export async function resetPassword(
  ctx: AppContext,
  input: { token: string; password: string; code?: string; requestId?: string | null },
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
  const code = input.code ?? '';
  // Checked again below, where it counts; here it only saves hashing for a form sent without one.
  if (code.trim() === '' && (await twoStepEnabled(ctx.db.kysely, owner.id))) {
    return refusedBy(CODE_REQUIRED);
  }
  const passwordHash = await hashPassword(input.password);

  const now = ctx.clock.now();
  const result = await ctx.db.kysely
    .transaction()
    .execute(async (trx): Promise<ResetResult> => {
      // The second step first, in the transaction that spends the link: a wrong code changes
      // nothing, and a link that cannot be spent after all undoes the code's use.
      const factor = await useSecondFactor(ctx, trx, owner.id, code);
      if (factor.status === 'invalid') throw new Undo(refusedBy(factor));
      return spendAndReset(ctx, trx, input, { passwordHash, now, factor });
    })
    .catch((error: unknown) => {
      if (error instanceof Undo) return error.result;
      throw error;
    });
  if (result.status === 'reset') ctx.mailQueued();
  return result;
}

/** Spends the link and sets the password, in the caller's transaction; Undo when it cannot. */
async function spendAndReset(
  ctx: AppContext,
  trx: Transaction<Database>,
  input: { token: string; requestId?: string | null },
  options: { passwordHash: string; now: number; factor: Exclude<SecondFactorResult, CodeProblem> },
): Promise<ResetResult> {
  const { config } = ctx;
  const { passwordHash, now, factor } = options;
  const spent = await consumeToken(trx, 'reset', input.token, now);
  const user = spent?.user_id ? await findUserById(trx, spent.user_id) : undefined;
  if (!spent || !user || !isForCurrentAddress(user, spent.target)) {
    // Another request used it meanwhile, or it expired between the two reads.
    const after = await findByToken(trx, 'reset', input.token, now);
    throw new Undo({ status: after.status === 'valid' ? 'invalid' : after.status });
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
  const recovery = factor.status === 'ok' && factor.via === 'recovery_code' ? factor : null;
  return {
    status: 'reset',
    userId: user.id,
    ...(recovery ? { recoveryCodesLeft: recovery.recoveryCodesLeft } : {}),
  };
}
