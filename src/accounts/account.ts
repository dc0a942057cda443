// What the owner does on the account page: change the password, end sessions, delete the
// account. Each asks for the current password again first (ASVS 7.5.1–7.5.3).
import { sql } from 'kysely';
import { type AppContext, messageIdDomain } from '../context.ts';
import type { User } from '../db/schema.ts';
import { enqueueEmail } from '../mail/outbox.ts';
import {
  checkNewPassword,
  hashPassword,
  type PasswordProblem,
  verifyPassword,
} from './password.ts';
import { invalidateSessionsById, type NewSession, rotateSession } from './session.ts';

export interface WrongPassword {
  status: 'invalid';
  field: 'currentPassword';
  code: 'current_password_invalid';
  message: string;
}

export const WRONG_PASSWORD: WrongPassword = {
  status: 'invalid',
  field: 'currentPassword',
  code: 'current_password_invalid',
  message: 'That is not your current password.',
};

export type ChangePasswordResult =
  | { status: 'changed'; session: NewSession }
  | WrongPassword
  | ({ status: 'invalid'; field: 'newPassword' } & PasswordProblem);

/** Checks the new password before anything costly or counted happens. */
export function validatePasswordChange(
  ctx: AppContext,
  user: Pick<User, 'email'>,
  newPassword: string,
): Extract<ChangePasswordResult, { field: 'newPassword' }> | null {
  const problem = checkNewPassword(newPassword, {
    minLength: ctx.config.passwordMinLength,
    email: user.email,
    appName: ctx.config.appName,
  });
  return problem ? { status: 'invalid', field: 'newPassword', ...problem } : null;
}

/**
 * Changes the password. Every other session ends; this one continues under a new id (the user
 * just authenticated again). Pending reset links and email changes, which were allowed by the
 * old password, die; the owner is told by email.
 */
export async function changePassword(
  ctx: AppContext,
  user: User,
  currentSessionIdHash: string,
  input: { currentPassword: string; newPassword: string; requestId?: string | null },
): Promise<ChangePasswordResult> {
  const invalid = validatePasswordChange(ctx, user, input.newPassword);
  if (invalid) return invalid;
  if (!(await verifyPassword(user.password_hash, input.currentPassword))) return WRONG_PASSWORD;
  const passwordHash = await hashPassword(input.newPassword);
  const now = ctx.clock.now();
  const session = await ctx.db.kysely.transaction().execute(async (trx) => {
    await trx
      .updateTable('users')
      .set({ password_hash: passwordHash, updated_at: now })
      .where('id', '=', user.id)
      .execute();
    await trx.deleteFrom('sessions').where('user_id', '=', user.id).execute();
    await trx
      .deleteFrom('verifications')
      .where('user_id', '=', user.id)
      .where('purpose', 'in', ['reset', 'email_change'])
      .execute();
    await enqueueEmail(trx, {
      to: user.email,
      template: 'password-changed',
      data: { via: 'change', forgotUrl: `${ctx.config.baseUrl}/forgot` },
      flow: 'password-change',
      requestId: input.requestId ?? null,
      now,
      random: ctx.random,
      messageIdDomain: messageIdDomain(ctx.config),
    });
    return rotateSession(ctx, trx, user.id, currentSessionIdHash);
  });
  ctx.mailQueued();
  return { status: 'changed', session };
}

export type EndSessionsResult =
  | { status: 'ended'; count: number; includesCurrent: boolean }
  | WrongPassword;

/**
 * Ends the named sessions, or all of them ("log out everywhere"), after the password is typed
 * again (ASVS 7.5.2). Ending only others keeps this session, under a new id.
 */
export async function endSessions(
  ctx: AppContext,
  user: User,
  current: { idHash: string; publicId: string },
  input: { password: string; which: 'all' | readonly string[] },
): Promise<EndSessionsResult & { session?: NewSession }> {
  if (!(await verifyPassword(user.password_hash, input.password))) return WRONG_PASSWORD;
  if (input.which === 'all') {
    const { numDeletedRows } = await ctx.db.kysely
      .deleteFrom('sessions')
      .where('user_id', '=', user.id)
      .executeTakeFirst();
    return { status: 'ended', count: Number(numDeletedRows), includesCurrent: true };
  }
  const includesCurrent = input.which.includes(current.publicId);
  const count = await invalidateSessionsById(ctx, user.id, input.which);
  if (includesCurrent) return { status: 'ended', count, includesCurrent };
  const session = await rotateSession(ctx, ctx.db.kysely, user.id, current.idHash);
  return { status: 'ended', count, includesCurrent, session };
}

export type DeleteAccountResult = { status: 'deleted' } | WrongPassword;

/**
 * Deletes the account with its sessions, secrets, two-step sign-in and the mail still waiting to
 * go to its address (ASVS 7.4.2). Mail already sent stays in the outbox's history, without its data.
 */
export async function deleteAccount(
  ctx: AppContext,
  user: User,
  input: { password: string },
): Promise<DeleteAccountResult> {
  if (!(await verifyPassword(user.password_hash, input.password))) return WRONG_PASSWORD;
  await ctx.db.kysely.transaction().execute(async (trx) => {
    await trx
      .deleteFrom('outbox')
      .where('status', '=', 'pending')
      .where('kind', '=', 'email')
      .where(sql<string>`lower(to_address)`, '=', user.email_normalized)
      .execute();
    // Two-step rows would also go by ON DELETE CASCADE; named here so the list is whole.
    await trx.deleteFrom('two_step_challenges').where('user_id', '=', user.id).execute();
    await trx.deleteFrom('two_step_enrolments').where('user_id', '=', user.id).execute();
    await trx.deleteFrom('two_step_recovery_codes').where('user_id', '=', user.id).execute();
    await trx.deleteFrom('two_step_totp').where('user_id', '=', user.id).execute();
    await trx.deleteFrom('sessions').where('user_id', '=', user.id).execute();
    await trx.deleteFrom('verifications').where('user_id', '=', user.id).execute();
    await trx.deleteFrom('users').where('id', '=', user.id).execute();
  });
  return { status: 'deleted' };
}
