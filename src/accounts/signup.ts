// Sign-up with email and password. The answer never depends on whether the address has an account.
import { newId } from '../clock.ts';
import { type AppContext, messageIdDomain } from '../context.ts';
import { enqueueEmail } from '../mail/outbox.ts';
import { isValidEmail, normaliseEmail } from './email.ts';
import { queueSignupVerification } from './email-verification.ts';
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
  });
  return problem ? { status: 'invalid', field: 'password', ...problem } : null;
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

  await ctx.db.kysely.transaction().execute(async (trx) => {
    const inserted = await trx
      .insertInto('users')
      .values({
        id: newId(ctx.random),
        email,
        email_normalized: emailNormalized,
        password_hash: passwordHash,
        email_verified_at: null,
        created_at: now,
        updated_at: now,
      })
      .onConflict((oc) => oc.column('email_normalized').doNothing())
      .returning(['id', 'email', 'email_normalized'])
      .executeTakeFirst();
    if (inserted) {
      await queueSignupVerification(ctx, trx, inserted, requestId);
      return;
    }

    const existing = await trx
      .selectFrom('users')
      .select(['id', 'email', 'email_normalized', 'email_verified_at'])
      .where('email_normalized', '=', emailNormalized)
      .executeTakeFirstOrThrow();
    if (existing.email_verified_at !== null) {
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
    // Nobody has proved this address yet, so the latest sign-up sets the password: whoever
    // confirms the address then owns an account whose password an earlier stranger cannot know.
    await trx
      .updateTable('users')
      .set({ password_hash: passwordHash, updated_at: now })
      .where('id', '=', existing.id)
      .execute();
    await trx.deleteFrom('sessions').where('user_id', '=', existing.id).execute();
    await queueSignupVerification(ctx, trx, existing, requestId);
  });
  ctx.mailQueued();
  return { status: 'pending' };
}
