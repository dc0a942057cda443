// Proving an address at sign-up: issuing the link and code, confirming either, resending.
import { createHash } from 'node:crypto';
import type { Transaction } from 'kysely';
import { type AppContext, messageIdDomain, type OutboxLease } from '../context.ts';
import { transactionRetryingDeadlocks } from '../db/dialect.ts';
import { preparedQuery, type SyncSqliteRunner } from '../db/prepared.ts';
import type { Database, OutboxRow, User } from '../db/schema.ts';
import { type EnqueueOptions, enqueueEmail, enqueueEmailSync } from '../mail/outbox.ts';
import {
  checkCode,
  codeFailureAnswer,
  consumeToken,
  consumeTokenSync,
  failedOutright,
  findByToken,
  type IssuedSecret,
  type IssueOptions,
  issueVerification,
  issueVerificationSync,
  looksLikeToken,
  markUsed,
} from '../tokens/tokens.ts';
import { isValidEmail, normaliseEmail } from './email.ts';
import { findUserByEmail } from './user.ts';

export type ConfirmResult =
  | { status: 'verified'; userId: string }
  | { status: 'already_verified'; userId: string }
  | { status: 'expired' }
  | { status: 'invalid' };

export type CodeResult =
  | ConfirmResult
  | { status: 'code_invalid' }
  | { status: 'too_many_attempts' };

type SignupUser = Pick<User, 'id' | 'email' | 'email_normalized'>;

function signupSecret(ctx: AppContext, user: SignupUser, now: number): IssueOptions {
  const { config } = ctx;
  return {
    purpose: 'signup',
    target: user.email_normalized,
    userId: user.id,
    now,
    linkTtlSeconds: config.ttl.signupLinkSeconds,
    codeTtlSeconds: config.ttl.codeSeconds,
    secretKey: config.secretKey,
    random: ctx.random,
  };
}

function signupMessage(
  ctx: AppContext,
  user: SignupUser,
  requestId: string | null,
  now: number,
  { token, code }: IssuedSecret,
): EnqueueOptions<'verify-email'> {
  const { config } = ctx;
  return {
    to: user.email,
    template: 'verify-email',
    data: {
      url: `${config.baseUrl}/verify/${token}`,
      code,
      linkMinutes: Math.round(config.ttl.signupLinkSeconds / 60),
      codeMinutes: Math.round(Math.min(config.ttl.codeSeconds, config.ttl.signupLinkSeconds) / 60),
    },
    flow: 'signup',
    requestId,
    now,
    random: ctx.random,
    messageIdDomain: messageIdDomain(config),
  };
}

/** Queues the sign-up message with a fresh link and code; older ones for the address stop working. */
export async function queueSignupVerification(
  ctx: AppContext,
  trx: Transaction<Database>,
  user: SignupUser,
  requestId: string | null,
): Promise<void> {
  const now = ctx.clock.now();
  const secret = await issueVerification(trx, signupSecret(ctx, user, now));
  await enqueueEmail(trx, signupMessage(ctx, user, requestId, now, secret));
  // Counted as the row is written (inside the caller's transaction), for the metrics.
  ctx.events.emit('verification.queued', { purpose: 'signup' });
}

/**
 * `queueSignupVerification` inside a synchronous SQLite transaction (`Db.sqlite`); the message is
 * written with `lease` when one is given (see `AppContext.outboxHandoff`), and returned.
 */
export function queueSignupVerificationSync(
  ctx: AppContext,
  run: SyncSqliteRunner,
  user: SignupUser,
  requestId: string | null,
  lease: OutboxLease | null,
): OutboxRow {
  const now = ctx.clock.now();
  const secret = issueVerificationSync(run, signupSecret(ctx, user, now));
  const row = enqueueEmailSync(run, signupMessage(ctx, user, requestId, now, secret), lease);
  ctx.events.emit('verification.queued', { purpose: 'signup' });
  return row;
}

const markUserVerified = preparedQuery<{ userId: string; now: number }, never>((db, param) =>
  db
    .updateTable('users')
    .set({ email_verified_at: param('now'), updated_at: param('now') })
    .where('id', '=', param('userId'))
    .where('email_verified_at', 'is', null),
);

async function markVerified(
  trx: Transaction<Database>,
  userId: string,
  now: number,
): Promise<boolean> {
  const result = await markUserVerified(trx, { userId, now });
  return Number(result.numAffectedRows ?? 0) === 1;
}

async function isVerified(trx: Transaction<Database>, userId: string | null): Promise<boolean> {
  if (!userId) return false;
  const user = await trx
    .selectFrom('users')
    .select('email_verified_at')
    .where('id', '=', userId)
    .executeTakeFirst();
  return Boolean(user && user.email_verified_at !== null);
}

/** Confirms a sign-up by its link token. Only the POST of the confirm page calls this. */
export async function confirmSignupToken(ctx: AppContext, token: string): Promise<ConfirmResult> {
  if (!looksLikeToken(token)) return { status: 'invalid' };
  const now = ctx.clock.now();
  const { sqlite } = ctx.db;
  if (sqlite) {
    // On SQLite the common case runs synchronously, the same two statements without Kysely's
    // asynchronous layers; anything else falls through to the general path below.
    const fast = await sqlite.transaction((run): ConfirmResult | null => {
      const spent = consumeTokenSync(run, 'signup', token, now);
      if (!spent?.user_id) return null;
      const changed = markUserVerified.sync(run, { userId: spent.user_id, now });
      return {
        status: Number(changed.numAffectedRows ?? 0) === 1 ? 'verified' : 'already_verified',
        userId: spent.user_id,
      };
    });
    if (fast) return announceVerified(ctx, fast);
  }
  const result = await transactionRetryingDeadlocks(
    ctx.db.kysely,
    async (trx): Promise<ConfirmResult> => {
      // The common case in two statements: spend the live token, then mark its user verified.
      const spent = await consumeToken(trx, 'signup', token, now);
      if (spent?.user_id) {
        const changed = await markVerified(trx, spent.user_id, now);
        return { status: changed ? 'verified' : 'already_verified', userId: spent.user_id };
      }
      // Otherwise find out why, to give the right answer.
      const found = await findByToken(trx, 'signup', token, now);
      if (found.status === 'invalid' || !found.verification.user_id) return { status: 'invalid' };
      const userId = found.verification.user_id;
      if (await isVerified(trx, userId)) return { status: 'already_verified', userId };
      return found.status === 'expired' ? { status: 'expired' } : { status: 'invalid' };
    },
  );
  return announceVerified(ctx, result);
}

/** `email.verified` on ctx.events after the commit, for the first confirmation only. */
function announceVerified<R extends CodeResult>(ctx: AppContext, result: R): R {
  if (result.status === 'verified') ctx.events.emit('email.verified', { userId: result.userId });
  return result;
}

/** Confirms a sign-up by the code typed on another device. Wrong codes count against the secret. */
export async function confirmSignupCode(
  ctx: AppContext,
  email: string,
  code: string,
): Promise<CodeResult> {
  const now = ctx.clock.now();
  const result = await transactionRetryingDeadlocks(
    ctx.db.kysely,
    async (trx): Promise<CodeResult> => {
      const checked = await checkCode(trx, {
        purpose: 'signup',
        target: normaliseEmail(email),
        code,
        now,
        secretKey: ctx.config.secretKey,
        maxAttempts: ctx.config.codeMaxAttempts,
      });
      if (failedOutright(checked)) return codeFailureAnswer(checked);
      switch (checked.status) {
        case 'used': {
          const userId = checked.verification.user_id;
          return userId && (await isVerified(trx, userId))
            ? { status: 'already_verified', userId }
            : { status: 'code_invalid' };
        }
        case 'valid': {
          const userId = checked.verification.user_id;
          if (!userId) return { status: 'code_invalid' };
          // A double submit of the right code: the other request spent it first.
          if (!(await markUsed(trx, checked.verification.id, now))) {
            return (await isVerified(trx, userId))
              ? { status: 'already_verified', userId }
              : { status: 'code_invalid' };
          }
          const changed = await markVerified(trx, userId, now);
          return { status: changed ? 'verified' : 'already_verified', userId };
        }
      }
    },
  );
  return announceVerified(ctx, result);
}

/**
 * Sends a new link and code when the address has an unverified account. The caller answers the
 * same whatever happens here, so nobody learns whether the address has an account.
 */
export async function resendSignupVerification(
  ctx: AppContext,
  email: string,
  requestId: string | null,
): Promise<void> {
  if (!isValidEmail(email)) return;
  const now = ctx.clock.now();
  const queued = await ctx.db.kysely.transaction().execute(async (trx) => {
    await deleteExpiredDecoys(trx, 'signup', now);
    const user = await findUserByEmail(trx, email);
    if (!user || user.email_verified_at !== null) {
      // Nothing to send, but the same statements run, so the answer takes the same time.
      await issueDecoySecret(ctx, trx, { purpose: 'signup', email, now });
      return false;
    }
    await queueSignupVerification(ctx, trx, user, requestId);
    return true;
  });
  if (queued) ctx.mailQueued();
}

/**
 * For a request that must not reveal whether an address has an account (resend, forgot): when
 * there is nothing to send, a secret is still made and stored, bound to no user and sent to
 * nobody, so both answers do the same work. One row per address and purpose (replaced on each
 * request, deleted once expired), keyed by a hash so the address itself is not kept, and named
 * so that it never matches a real secret, which is keyed by the address (decision 012).
 */
export async function issueDecoySecret(
  ctx: AppContext,
  trx: Transaction<Database>,
  options: { purpose: 'signup' | 'reset'; email: string; now: number },
): Promise<void> {
  await issueVerification(trx, {
    purpose: options.purpose,
    target: `none:${createHash('sha256').update(normaliseEmail(options.email)).digest('hex')}`,
    userId: null,
    now: options.now,
    linkTtlSeconds: ctx.config.ttl.codeSeconds,
    codeTtlSeconds: ctx.config.ttl.codeSeconds,
    secretKey: ctx.config.secretKey,
    random: ctx.random,
  });
}

/** Run by the same requests, on both paths: decoy secrets never pile up. */
export async function deleteExpiredDecoys(
  trx: Transaction<Database>,
  purpose: 'signup' | 'reset',
  now: number,
): Promise<void> {
  await trx
    .deleteFrom('verifications')
    .where('purpose', '=', purpose)
    .where('user_id', 'is', null)
    .where('expires_at', '<=', now)
    .execute();
}

/** The address behind a link (expired or used), so its owner can get a new one without typing it. */
export async function targetOfToken(ctx: AppContext, token: string): Promise<string | null> {
  const found = await findByToken(ctx.db.kysely, 'signup', token, ctx.clock.now());
  return found.status === 'invalid' ? null : found.verification.target;
}
