// Sign-up with email and password. The answer never depends on whether the address has an account.
import type { Transaction } from 'kysely';
import { newId } from '../clock.ts';
import { type AppContext, messageIdDomain } from '../context.ts';
import { insertUnlessTaken, lockForUpdate, transactionRetryingDeadlocks } from '../db/dialect.ts';
import { preparedQuery } from '../db/prepared.ts';
import type { Database } from '../db/schema.ts';
import { enqueueEmail } from '../mail/outbox.ts';
import { isValidEmail, normaliseEmail } from './email.ts';
import {
  issueDecoySecret,
  queueSignupVerification,
  queueSignupVerificationSync,
} from './email-verification.ts';
import { checkNewPassword, hashPassword, type PasswordProblem } from './password.ts';

export type SignupResult =
  | { status: 'pending' }
  | { status: 'invalid'; field: 'email'; code: 'email_invalid'; message: string }
  | ({ status: 'invalid'; field: 'password' } & PasswordProblem);

export function validateSignup(
  ctx: AppContext,
  input: { email: string; password: string },
): Exclude<SignupResult, { status: 'pending' }> | null {
  if (!isValidEmail(input.email)) {
    return {
      status: 'invalid',
      field: 'email',
      code: 'email_invalid',
      message: 'Enter a valid email address, such as name@example.com.',
    };
  }
  const problem = checkNewPassword(input.password, {
    minLength: ctx.config.passwordMinLength,
    email: input.email.trim(),
    appName: ctx.config.appName,
  });
  return problem ? { status: 'invalid', field: 'password', ...problem } : null;
}

/**
 * Every field's problem at once, for the sign-up page: a form sent with both fields wrong marks
 * both. The API answers with the first (`validateSignup`), as its one error code can name one.
 */
export function signupFieldErrors(
  ctx: AppContext,
  input: { email: string; password: string },
): Partial<Record<'email' | 'password', string>> {
  const errors: Partial<Record<'email' | 'password', string>> = {};
  const first = validateSignup(ctx, input);
  if (first?.status !== 'invalid') return errors;
  errors[first.field] = first.message;
  if (first.field === 'email') {
    const problem = checkNewPassword(input.password, {
      minLength: ctx.config.passwordMinLength,
      appName: ctx.config.appName,
    });
    if (problem) errors.password = problem.message;
  }
  return errors;
}

export async function signUp(
  ctx: AppContext,
  input: { email: string; password: string; requestId?: string | null },
): Promise<SignupResult> {
  const invalid = validateSignup(ctx, input);
  if (invalid) return invalid;

  const email = input.email.trim();
  const emailNormalized = normaliseEmail(email);
  // Hash first, whatever happens next, so both branches below take the same time.
  const passwordHash = await hashPassword(input.password);
  const requestId = input.requestId ?? null;
  const now = ctx.clock.now();

  // SQLite, a new address (the common case): one synchronous transaction, which may share its
  // commit with other requests of the same event-loop turn. An address already taken, even by a
  // sign-up earlier in the same group, takes the general path below once this one has committed.
  // The message goes straight to this process's worker when it has room (no claim needed).
  const sqlite = ctx.db.sqlite;
  if (sqlite) {
    const user = { id: newId(ctx.random), email, email_normalized: emailNormalized };
    const handoff = ctx.outboxHandoff?.() ?? null;
    const message = await sqlite.transaction((run) => {
      const { numAffectedRows } = insertNewUser.sync(run, { ...user, passwordHash, now });
      if (numAffectedRows !== 1n) return null;
      return queueSignupVerificationSync(ctx, run, user, requestId, handoff);
    });
    if (message) {
      if (handoff) handoff.accept([message]);
      else ctx.mailQueued();
      ctx.events.emit('signup.requested');
      return { status: 'pending' };
    }
  }

  await transactionRetryingDeadlocks(ctx.db.kysely, async (trx) => {
    const user = { id: newId(ctx.random), email, email_normalized: emailNormalized };
    // Of concurrent sign-ups for one address exactly one inserts; the others wait for it to
    // commit, then take the path of an existing account below.
    const inserted = await insertUnlessTaken(
      trx,
      trx.insertInto('users').values({
        ...user,
        password_hash: passwordHash,
        email_verified_at: null,
        created_at: now,
        updated_at: now,
      }),
      'email_normalized',
    );
    if (inserted) {
      await queueSignupVerification(ctx, trx, user, requestId);
      return;
    }

    const existing = await trx
      .selectFrom('users')
      .select(['id', 'email', 'email_normalized', 'email_verified_at'])
      .where('email_normalized', '=', emailNormalized)
      .executeTakeFirstOrThrow();
    // Nobody has proved this address yet, so the latest sign-up sets the password: whoever
    // confirms the address then owns an account whose password an earlier stranger cannot know.
    const reset =
      existing.email_verified_at === null &&
      (await setUnprovenPassword(trx, existing.id, emailNormalized, passwordHash, now));
    if (!reset) {
      // As many writes as a new account's secret and message: the answer takes as long.
      await issueDecoySecret(ctx, trx, { purpose: 'signup', email, now });
      await enqueueEmail(trx, {
        to: existing.email,
        template: 'signup-existing',
        data: { loginUrl: `${ctx.config.baseUrl}/login` },
        flow: 'signup',
        requestId,
        now,
        random: ctx.random,
        messageIdDomain: messageIdDomain(ctx.config),
      });
      return;
    }
    await trx.deleteFrom('sessions').where('user_id', '=', existing.id).execute();
    // Reset links and email changes allowed by the replaced password die with it (decision 012).
    await trx
      .deleteFrom('verifications')
      .where('user_id', '=', existing.id)
      .where('purpose', 'in', ['reset', 'email_change'])
      .execute();
    await queueSignupVerification(ctx, trx, existing, requestId);
  });
  ctx.mailQueued();
  ctx.events.emit('signup.requested');
  return { status: 'pending' };
}

/** SQLite: a new account, unless the address has one (ON CONFLICT DO NOTHING). Compiled once. */
const insertNewUser = preparedQuery<
  { id: string; email: string; email_normalized: string; passwordHash: string; now: number },
  never
>((db, param) =>
  db
    .insertInto('users')
    .values({
      id: param('id'),
      email: param('email'),
      email_normalized: param('email_normalized'),
      password_hash: param('passwordHash'),
      email_verified_at: null,
      created_at: param('now'),
      updated_at: param('now'),
    })
    .onConflict((oc) => oc.column('email_normalized').doNothing()),
);

/**
 * Sets the password of an account whose address is unproven; false once it has been proved (a
 * confirmation committed since it was read is final). Locks in the order a confirmation takes
 * them, the address's secret and then the account, so the two wait for each other, never deadlock.
 */
async function setUnprovenPassword(
  trx: Transaction<Database>,
  userId: string,
  emailNormalized: string,
  passwordHash: string,
  now: number,
): Promise<boolean> {
  await lockForUpdate(
    trx,
    trx
      .selectFrom('verifications')
      .select('id')
      .where('purpose', '=', 'signup')
      .where('target', '=', emailNormalized),
  ).execute();
  const result = await trx
    .updateTable('users')
    .set({ password_hash: passwordHash, updated_at: now })
    .where('id', '=', userId)
    .where('email_verified_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}
