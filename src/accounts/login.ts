import type { AppContext } from '../context.ts';
import type { User } from '../db/schema.ts';
import { isValidEmail } from './email.ts';
import { verifyAgainstDummy, verifyPassword } from './password.ts';
import { createSession } from './session.ts';
import { twoStepEnabled } from './two-step.ts';
import { startChallenge } from './two-step-login.ts';
import { findUserByEmail } from './user.ts';

export type LoginResult =
  /** `expiresAt`: the session's absolute end, which the cookie's expiry follows. */
  | { status: 'ok'; user: User; sessionToken: string; expiresAt: number }
  | { status: 'invalid_credentials' }
  | { status: 'email_not_verified' }
  /** Two-step sign-in is on: no session yet, a challenge for the code (docs/decisions/014). */
  | { status: 'two_step_required'; challenge: string; expiresAt: number };

export async function logIn(
  ctx: AppContext,
  input: { email: string; password: string },
): Promise<LoginResult> {
  const user = isValidEmail(input.email)
    ? await findUserByEmail(ctx.db.kysely, input.email)
    : undefined;
  const ok = user
    ? await verifyPassword(user.password_hash, input.password)
    : await verifyAgainstDummy(input.password);
  if (!user || !ok) return { status: 'invalid_credentials' };
  // Only someone who knows the password learns that the address is unverified.
  if (ctx.config.requireVerifiedLogin && user.email_verified_at === null) {
    return { status: 'email_not_verified' };
  }
  // Only someone who knows the password learns that the account has two-step sign-in on.
  if (await twoStepEnabled(ctx.db.kysely, user.id)) {
    const challenge = await startChallenge(ctx, user.id);
    return {
      status: 'two_step_required',
      challenge: challenge.token,
      expiresAt: challenge.expiresAt,
    };
  }
  const { token, endsAt } = await createSession(ctx, user.id);
  return { status: 'ok', user, sessionToken: token, expiresAt: endsAt };
}
