// Two-step sign-in (docs/decisions/014): after the password, a code from an authenticator app
// (TOTP, RFC 6238) or one of ten single-use recovery codes. Turning it on asks for the password
// and a code from the app; turning it off and making new recovery codes ask for the password and
// a code (or a recovery code). The owner is told by email when it goes on or off.
import type { Kysely, Transaction } from 'kysely';
import type { Random } from '../clock.ts';
import type { Config } from '../config.ts';
import { type AppContext, messageIdDomain } from '../context.ts';
import { insertUnlessTaken } from '../db/dialect.ts';
import type { Database, User } from '../db/schema.ts';
import { enqueueEmail } from '../mail/outbox.ts';
import { WRONG_PASSWORD, type WrongPassword } from './account.ts';
import { verifyPassword } from './password.ts';
import {
  makeRecoveryCodes,
  recoveryCodesLeft,
  replaceRecoveryCodes,
  useRecoveryCode,
} from './recovery-codes.ts';
import { type NewSession, rotateSession } from './session.ts';
import {
  base32Of,
  groupedBase32,
  matchTotp,
  newTotpSecret,
  openTotpSecret,
  otpauthUri,
  sealTotpSecret,
  TOTP_DIGITS,
} from './totp.ts';
import { findUserByEmail } from './user.ts';

type Executor = Kysely<Database> | Transaction<Database>;

/** How long a secret shown for setting up stays usable: scanning and typing take a minute or two. */
export const ENROLMENT_SECONDS = 30 * 60;

export interface TwoStepStatus {
  enabled: boolean;
  recoveryCodesLeft: number;
}

export interface CodeProblem {
  status: 'invalid';
  field: 'code';
  code: 'code_required' | 'code_invalid' | 'code_used';
  message: string;
}

export const CODE_REQUIRED: CodeProblem = {
  status: 'invalid',
  field: 'code',
  code: 'code_required',
  message: `Enter the ${TOTP_DIGITS}-digit code from your authenticator app, or one of your recovery codes.`,
};

const CODE_WRONG: CodeProblem = {
  status: 'invalid',
  field: 'code',
  code: 'code_invalid',
  message: 'That code is not right. Check your authenticator app and try again.',
};

// Telling "already used" apart helps the owner and gives nothing away: only someone who has a
// recent code (or a recovery code) sees it.
const APP_CODE_USED: CodeProblem = {
  status: 'invalid',
  field: 'code',
  code: 'code_used',
  message: 'That code was already used. Wait for your app to show the next one.',
};

const RECOVERY_CODE_USED: CodeProblem = {
  status: 'invalid',
  field: 'code',
  code: 'code_used',
  message: 'That recovery code was already used. Each one works once.',
};

export async function twoStepEnabled(db: Executor, userId: string): Promise<boolean> {
  const row = await db
    .selectFrom('two_step_totp')
    .select('user_id')
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * REQUIRE_TWO_STEP: true when the site requires two-step sign-in and this account has not set it
 * up yet. Its session may then only set it up (or log out); the pages and the API ask this once,
 * in their login guards. No query when the setting is off.
 */
export async function twoStepSetupRequired(ctx: AppContext, userId: string): Promise<boolean> {
  return ctx.config.requireTwoStep && !(await twoStepEnabled(ctx.db.kysely, userId));
}

export const TWO_STEP_REQUIRED_BY_SITE = {
  status: 'required_by_site',
  message:
    'This site requires two-step sign-in, so it cannot be turned off. You can make new recovery codes.',
} as const;

export async function twoStepStatus(db: Executor, userId: string): Promise<TwoStepStatus> {
  const enabled = await twoStepEnabled(db, userId);
  return { enabled, recoveryCodesLeft: enabled ? await recoveryCodesLeft(db, userId) : 0 };
}

// --- Setting it up ---------------------------------------------------------------------------

/** What the owner needs to add the account to an authenticator app. */
export interface Enrolment {
  /** The secret in base32, as apps take it. */
  secret: string;
  /** The same in groups of four, for typing. */
  groupedSecret: string;
  /** The otpauth:// URI a QR code carries. */
  uri: string;
  expiresAt: number;
}

function enrolmentOf(ctx: AppContext, user: User, secret: Buffer, expiresAt: number): Enrolment {
  return {
    secret: base32Of(secret),
    groupedSecret: groupedBase32(secret),
    uri: otpauthUri(secret, ctx.config.appName, user.email),
    expiresAt,
  };
}

export type StartEnrolmentResult =
  | { status: 'started'; enrolment: Enrolment }
  | { status: 'already_enabled' };

/**
 * Makes a new secret and keeps it, encrypted, for this session only until a code from the app
 * confirms it. Starting again replaces it.
 */
export async function startEnrolment(
  ctx: AppContext,
  user: User,
  sessionIdHash: string,
): Promise<StartEnrolmentResult> {
  if (await twoStepEnabled(ctx.db.kysely, user.id)) return { status: 'already_enabled' };
  const secret = newTotpSecret(ctx.random);
  const now = ctx.clock.now();
  const expiresAt = now + ENROLMENT_SECONDS * 1000;
  await ctx.db.kysely.transaction().execute(async (trx) => {
    await trx
      .deleteFrom('two_step_enrolments')
      .where((eb) =>
        eb.or([eb('session_id_hash', '=', sessionIdHash), eb('expires_at', '<=', now)]),
      )
      .where('user_id', '=', user.id)
      .execute();
    await trx
      .insertInto('two_step_enrolments')
      .values({
        session_id_hash: sessionIdHash,
        user_id: user.id,
        secret: sealTotpSecret(ctx.config.secretKey, user.id, secret, ctx.random),
        expires_at: expiresAt,
      })
      .execute();
  });
  return { status: 'started', enrolment: enrolmentOf(ctx, user, secret, expiresAt) };
}

/** The secret this session is setting up, if any and still in time. */
export async function currentEnrolment(
  ctx: AppContext,
  user: User,
  sessionIdHash: string,
): Promise<Enrolment | null> {
  const row = await ctx.db.kysely
    .selectFrom('two_step_enrolments')
    .select(['secret', 'expires_at'])
    .where('session_id_hash', '=', sessionIdHash)
    .where('user_id', '=', user.id)
    .executeTakeFirst();
  if (!row || row.expires_at <= ctx.clock.now()) return null;
  const secret = openTotpSecret(ctx.config.secretKey, user.id, row.secret);
  return secret ? enrolmentOf(ctx, user, secret, row.expires_at) : null;
}

export type EnableResult =
  | { status: 'enabled'; recoveryCodes: string[]; session: NewSession }
  | { status: 'no_enrolment' | 'already_enabled' }
  | WrongPassword
  | CodeProblem;

/**
 * Turns two-step sign-in on once the password and a code from the app (which proves the app has
 * the secret) are right. The code's time step counts as used. Returns the recovery codes, to be
 * shown once; the session continues under a new id, the owner is told by email.
 */
export async function confirmEnrolment(
  ctx: AppContext,
  user: User,
  sessionIdHash: string,
  input: { password: string; code: string; requestId?: string | null },
): Promise<EnableResult> {
  if (!(await verifyPassword(user.password_hash, input.password))) return WRONG_PASSWORD;
  const typed = input.code.replace(/[\s-]/g, '');
  if (typed === '') return CODE_REQUIRED;
  const now = ctx.clock.now();
  const pending = await ctx.db.kysely
    .selectFrom('two_step_enrolments')
    .select(['secret', 'expires_at'])
    .where('session_id_hash', '=', sessionIdHash)
    .where('user_id', '=', user.id)
    .executeTakeFirst();
  if (!pending || pending.expires_at <= now) return { status: 'no_enrolment' };
  const secret = openTotpSecret(ctx.config.secretKey, user.id, pending.secret);
  const step = secret ? matchTotp(secret, typed, now, null) : null;
  if (step === null) return CODE_WRONG;

  // Ten argon2id hashes take a while: made before the transaction, which then does not wait.
  const made = await makeRecoveryCodes(ctx.random);
  const done = await ctx.db.kysely.transaction().execute(async (trx) => {
    const inserted = await insertUnlessTaken(
      trx,
      trx.insertInto('two_step_totp').values({
        user_id: user.id,
        secret: pending.secret,
        last_used_step: step,
        enabled_at: now,
      }),
      'user_id',
    );
    if (!inserted) return null;
    const recoveryCodes = await replaceRecoveryCodes(trx, {
      userId: user.id,
      random: ctx.random,
      now,
      made,
    });
    await trx.deleteFrom('two_step_enrolments').where('user_id', '=', user.id).execute();
    await queueNotice(ctx, trx, user.email, {
      enabled: true,
      by: 'owner',
      now,
      requestId: input.requestId,
    });
    return { recoveryCodes, session: await rotateSession(ctx, trx, user.id, sessionIdHash) };
  });
  if (!done) return { status: 'already_enabled' };
  ctx.mailQueued();
  return { status: 'enabled', ...done };
}

// --- The second step -------------------------------------------------------------------------

export type SecondFactorResult =
  | { status: 'ok'; via: 'app' }
  | { status: 'ok'; via: 'recovery_code'; recoveryCodesLeft: number }
  | { status: 'not_enabled' }
  | CodeProblem;

/**
 * Checks a code typed as the second step: six digits are a code from the app, anything else is
 * tried as a recovery code. A right code is spent (its time step, or the recovery code) in the
 * same statement that checks it has not been, so two requests cannot both use it.
 */
export async function useSecondFactor(
  ctx: AppContext,
  db: Executor,
  userId: string,
  code: string,
): Promise<SecondFactorResult> {
  const totp = await db
    .selectFrom('two_step_totp')
    .select(['secret', 'last_used_step'])
    .where('user_id', '=', userId)
    .executeTakeFirst();
  if (!totp) return { status: 'not_enabled' };
  const typed = code.replace(/[\s-]/g, '');
  if (typed === '') return CODE_REQUIRED;
  const now = ctx.clock.now();
  // Recovery codes are ten characters, so six digits can only be a code from the app.
  if (new RegExp(`^\\d{${TOTP_DIGITS}}$`).test(typed)) {
    return useAppCode(ctx, db, userId, totp, typed, now);
  }
  const use = await useRecoveryCode(db, { userId, code: typed, now });
  if (use === 'used') {
    return {
      status: 'ok',
      via: 'recovery_code',
      recoveryCodesLeft: await recoveryCodesLeft(db, userId),
    };
  }
  return use === 'already_used' ? RECOVERY_CODE_USED : CODE_WRONG;
}

async function useAppCode(
  ctx: AppContext,
  db: Executor,
  userId: string,
  totp: { secret: string; last_used_step: number | null },
  typed: string,
  now: number,
): Promise<SecondFactorResult> {
  const secret = openTotpSecret(ctx.config.secretKey, userId, totp.secret);
  if (!secret) {
    ctx.log.error('a two-step secret cannot be decrypted: was SECRET_KEY changed?');
    return CODE_WRONG;
  }
  const step = matchTotp(secret, typed, now, totp.last_used_step);
  if (step === null) {
    return matchTotp(secret, typed, now, null) === null ? CODE_WRONG : APP_CODE_USED;
  }
  // Replay protection: only a step newer than the last one accepted moves it forward, so of two
  // requests with the same code only the first gets through.
  const moved = await db
    .updateTable('two_step_totp')
    .set({ last_used_step: step })
    .where('user_id', '=', userId)
    .where((eb) => eb.or([eb('last_used_step', 'is', null), eb('last_used_step', '<', step)]))
    .executeTakeFirst();
  return Number(moved.numUpdatedRows) > 0 ? { status: 'ok', via: 'app' } : APP_CODE_USED;
}

// --- Turning it off, new recovery codes ------------------------------------------------------

/** Refusals that undo what a transaction did (a spent recovery code) travel as this. */
class Refused extends Error {
  constructor(readonly result: CodeProblem | { status: 'not_enabled' }) {
    super(result.status);
  }
}

async function withSecondFactor<T>(
  ctx: AppContext,
  user: User,
  code: string,
  then: (trx: Transaction<Database>) => Promise<T>,
): Promise<T | CodeProblem | { status: 'not_enabled' }> {
  try {
    return await ctx.db.kysely.transaction().execute(async (trx) => {
      const factor = await useSecondFactor(ctx, trx, user.id, code);
      if (factor.status !== 'ok') throw new Refused(factor);
      return then(trx);
    });
  } catch (error) {
    if (error instanceof Refused) return error.result;
    throw error;
  }
}

export type DisableResult =
  | { status: 'disabled'; session: NewSession }
  | { status: 'not_enabled' }
  | typeof TWO_STEP_REQUIRED_BY_SITE
  | WrongPassword
  | CodeProblem;

/**
 * Turns two-step sign-in off with the password and a code (or a recovery code): the secret,
 * recovery codes and waiting logins go, the owner is told, this session gets a new id. Refused
 * while the site requires two-step sign-in (REQUIRE_TWO_STEP).
 */
export async function disableTwoStep(
  ctx: AppContext,
  user: User,
  sessionIdHash: string,
  input: { password: string; code: string; requestId?: string | null },
): Promise<DisableResult> {
  // REQUIRE_TWO_STEP: only the operator (`mailproof two-step off EMAIL`) turns it off then.
  if (ctx.config.requireTwoStep) return TWO_STEP_REQUIRED_BY_SITE;
  if (!(await verifyPassword(user.password_hash, input.password))) return WRONG_PASSWORD;
  if (input.code.trim() === '') return CODE_REQUIRED;
  const now = ctx.clock.now();
  const result = await withSecondFactor(ctx, user, input.code, async (trx) => {
    await removeTwoStep(trx, user.id);
    await queueNotice(ctx, trx, user.email, {
      enabled: false,
      by: 'owner',
      now,
      requestId: input.requestId,
    });
    const session = await rotateSession(ctx, trx, user.id, sessionIdHash);
    return { status: 'disabled' as const, session };
  });
  if (result.status === 'disabled') ctx.mailQueued();
  return result;
}

export type RegenerateResult =
  | { status: 'regenerated'; recoveryCodes: string[]; session: NewSession }
  | { status: 'not_enabled' }
  | WrongPassword
  | CodeProblem;

/** Ten new recovery codes for the password and a code; every earlier one stops working. */
export async function regenerateRecoveryCodes(
  ctx: AppContext,
  user: User,
  sessionIdHash: string,
  input: { password: string; code: string },
): Promise<RegenerateResult> {
  if (!(await verifyPassword(user.password_hash, input.password))) return WRONG_PASSWORD;
  if (input.code.trim() === '') return CODE_REQUIRED;
  const now = ctx.clock.now();
  return withSecondFactor(ctx, user, input.code, async (trx) => {
    const recoveryCodes = await replaceRecoveryCodes(trx, {
      userId: user.id,
      random: ctx.random,
      now,
    });
    const session = await rotateSession(ctx, trx, user.id, sessionIdHash);
    return { status: 'regenerated' as const, recoveryCodes, session };
  });
}

async function removeTwoStep(db: Executor, userId: string): Promise<void> {
  await db.deleteFrom('two_step_challenges').where('user_id', '=', userId).execute();
  await db.deleteFrom('two_step_enrolments').where('user_id', '=', userId).execute();
  await db.deleteFrom('two_step_recovery_codes').where('user_id', '=', userId).execute();
  await db.deleteFrom('two_step_totp').where('user_id', '=', userId).execute();
}

/**
 * For operators (`mailproof two-step off EMAIL`), when the owner has lost both the app and the
 * recovery codes and has proved who they are some other way. The password still guards the
 * account; the owner is told by email. False when no such account has two-step sign-in on.
 */
export async function turnTwoStepOffByOperator(
  db: Kysely<Database>,
  config: Config,
  email: string,
  deps: { random: Random; now: number },
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const user = await findUserByEmail(trx, email);
    if (!user || !(await twoStepEnabled(trx, user.id))) return false;
    await removeTwoStep(trx, user.id);
    await queueNotice({ config, random: deps.random }, trx, user.email, {
      enabled: false,
      by: 'operator',
      now: deps.now,
      requestId: null,
    });
    return true;
  });
}

async function queueNotice(
  ctx: Pick<AppContext, 'config' | 'random'>,
  db: Executor,
  to: string,
  notice: { enabled: boolean; by: 'owner' | 'operator'; now: number; requestId?: string | null },
): Promise<void> {
  const { baseUrl } = ctx.config;
  await enqueueEmail(db, {
    to,
    template: 'two-step-changed',
    data: {
      enabled: notice.enabled,
      by: notice.by,
      accountUrl: `${baseUrl}/account`,
      forgotUrl: `${baseUrl}/forgot`,
    },
    flow: notice.enabled ? 'two-step-on' : 'two-step-off',
    requestId: notice.requestId ?? null,
    now: notice.now,
    random: ctx.random,
    messageIdDomain: messageIdDomain(ctx.config),
  });
}
