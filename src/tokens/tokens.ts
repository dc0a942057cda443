// Link tokens and one-time codes: random, stored only as purpose-bound hashes, single-use,
// expiring, and replaced whenever a newer one is issued for the same purpose and target.
import { createHmac, hash, timingSafeEqual } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { newId, type Random } from '../clock.ts';
import { dialectOf, upsert } from '../db/dialect.ts';
import { preparedQuery, type SyncSqliteRunner } from '../db/prepared.ts';
import type { Database, Verification, VerificationPurpose } from '../db/schema.ts';

const TOKEN_BYTES = 32; // 256 bits, well above the 128 the spec requires
const CODE_DIGITS = 8;

type Executor = Kysely<Database> | Transaction<Database>;

export interface IssuedSecret {
  token: string;
  code: string;
}

export interface IssueOptions {
  purpose: VerificationPurpose;
  target: string;
  userId: string | null;
  now: number;
  linkTtlSeconds: number;
  codeTtlSeconds: number;
  secretKey: string;
  random: Random;
}

export function newToken(random: Random): string {
  return random.bytes(TOKEN_BYTES).toString('base64url');
}

export function newCode(random: Random): string {
  return String(random.int(10 ** CODE_DIGITS)).padStart(CODE_DIGITS, '0');
}

/** SHA-256 suffices for a 256-bit token; the purpose is part of the hash so tokens never cross flows. */
export function hashToken(purpose: VerificationPurpose, token: string): string {
  return hash('sha256', `${purpose}:${token}`, 'hex');
}

/** Codes have only 10^8 values, so they are keyed with the server secret: a leaked row cannot be brute-forced offline. */
export function hashCode(
  secretKey: string,
  purpose: VerificationPurpose,
  target: string,
  code: string,
): string {
  return createHmac('sha256', secretKey).update(`${purpose}:${target}:${code}`).digest('hex');
}

export function looksLikeToken(token: string): boolean {
  return /^[A-Za-z0-9_-]{43}$/.test(token);
}

export function normaliseCode(input: string): string {
  return input.replace(/[\s-]/g, '');
}

type VerificationValues = {
  id: string;
  purpose: VerificationPurpose;
  target: string;
  userId: string | null;
  tokenHash: string;
  codeHash: string;
  expiresAt: number;
  codeExpiresAt: number;
  now: number;
};

/** Inserts the secret for (purpose, target), replacing any earlier one. Compiled once per dialect. */
const writeVerification = preparedQuery<VerificationValues, never>((db, param) => {
  const values = {
    user_id: param('userId'),
    token_hash: param('tokenHash'),
    code_hash: param('codeHash'),
    code_attempts: 0,
    expires_at: param('expiresAt'),
    code_expires_at: param('codeExpiresAt'),
    used_at: null,
    created_at: param('now'),
  };
  const insert = db.insertInto('verifications').values({
    id: param('id'),
    purpose: param('purpose'),
    target: param('target'),
    ...values,
  });
  return upsert(db, insert, ['purpose', 'target'], values);
});

function newSecret(options: IssueOptions): IssuedSecret & { values: VerificationValues } {
  const token = newToken(options.random);
  const code = newCode(options.random);
  return {
    token,
    code,
    values: {
      id: newId(options.random),
      purpose: options.purpose,
      target: options.target,
      userId: options.userId,
      tokenHash: hashToken(options.purpose, token),
      codeHash: hashCode(options.secretKey, options.purpose, options.target, code),
      expiresAt: options.now + options.linkTtlSeconds * 1000,
      codeExpiresAt: options.now + Math.min(options.codeTtlSeconds, options.linkTtlSeconds) * 1000,
      now: options.now,
    },
  };
}

/** Issues a fresh link and code for (purpose, target); any earlier secret for the pair stops working. */
export async function issueVerification(
  db: Executor,
  options: IssueOptions,
): Promise<IssuedSecret> {
  const { token, code, values } = newSecret(options);
  await writeVerification(db, values);
  return { token, code };
}

/** `issueVerification` inside a synchronous SQLite transaction (`Db.sqlite`). */
export function issueVerificationSync(run: SyncSqliteRunner, options: IssueOptions): IssuedSecret {
  const { token, code, values } = newSecret(options);
  writeVerification.sync(run, values);
  return { token, code };
}

export type TokenLookup =
  | { status: 'valid'; verification: Verification }
  | { status: 'used'; verification: Verification }
  | { status: 'expired'; verification: Verification }
  | { status: 'invalid' };

/** Reads a link token without consuming it (for confirm pages and expired-link resends). */
export async function findByToken(
  db: Executor,
  purpose: VerificationPurpose,
  token: string,
  now: number,
): Promise<TokenLookup> {
  if (!looksLikeToken(token)) return { status: 'invalid' };
  const verification = await db
    .selectFrom('verifications')
    .selectAll()
    .where('token_hash', '=', hashToken(purpose, token))
    .where('purpose', '=', purpose)
    .executeTakeFirst();
  if (!verification) return { status: 'invalid' };
  if (verification.used_at !== null) return { status: 'used', verification };
  if (verification.expires_at <= now) return { status: 'expired', verification };
  return { status: 'valid', verification };
}

const spendLiveToken = preparedQuery<
  { now: number; tokenHash: string; purpose: VerificationPurpose },
  { id: string; user_id: string | null; target: string }
>((db, param) =>
  db
    .updateTable('verifications')
    .set({ used_at: param('now') })
    .where('token_hash', '=', param('tokenHash'))
    .where('purpose', '=', param('purpose'))
    .where('used_at', 'is', null)
    .where('expires_at', '>', param('now'))
    .returning(['id', 'user_id', 'target']),
);

// MySQL has no UPDATE … RETURNING: the same UPDATE, then the row it changed, which this
// transaction holds locked from the one statement to the next.
const spendLiveTokenWithoutReturning = preparedQuery<
  { now: number; tokenHash: string; purpose: VerificationPurpose },
  never
>((db, param) =>
  db
    .updateTable('verifications')
    .set({ used_at: param('now') })
    .where('token_hash', '=', param('tokenHash'))
    .where('purpose', '=', param('purpose'))
    .where('used_at', 'is', null)
    .where('expires_at', '>', param('now')),
);

const spentToken = preparedQuery<
  { tokenHash: string; purpose: VerificationPurpose },
  { id: string; user_id: string | null; target: string }
>((db, param) =>
  db
    .selectFrom('verifications')
    .select(['id', 'user_id', 'target'])
    .where('token_hash', '=', param('tokenHash'))
    .where('purpose', '=', param('purpose')),
);

/**
 * Spends a live (unused, unexpired) token; null when it is not live. One statement where the
 * database has UPDATE … RETURNING; on MySQL two, so call it inside a transaction there.
 */
export async function consumeToken(
  db: Executor,
  purpose: VerificationPurpose,
  token: string,
  now: number,
): Promise<{ id: string; user_id: string | null; target: string } | null> {
  if (!looksLikeToken(token)) return null;
  const tokenHash = hashToken(purpose, token);
  if (dialectOf(db) !== 'mysql') {
    const { rows } = await spendLiveToken(db, { now, tokenHash, purpose });
    return rows[0] ?? null;
  }
  const spent = await spendLiveTokenWithoutReturning(db, { now, tokenHash, purpose });
  if (Number(spent.numAffectedRows ?? 0) !== 1) return null;
  const { rows } = await spentToken(db, { tokenHash, purpose });
  return rows[0] ?? null;
}

/** `consumeToken` inside a synchronous SQLite transaction (`Db.sqlite`): the same statement. */
export function consumeTokenSync(
  run: SyncSqliteRunner,
  purpose: VerificationPurpose,
  token: string,
  now: number,
): { id: string; user_id: string | null; target: string } | null {
  if (!looksLikeToken(token)) return null;
  const tokenHash = hashToken(purpose, token);
  return spendLiveToken.sync(run, { now, tokenHash, purpose }).rows[0] ?? null;
}

/** Marks the secret used; returns false when another request consumed it first. */
export async function markUsed(
  db: Executor,
  verificationId: string,
  now: number,
): Promise<boolean> {
  const result = await db
    .updateTable('verifications')
    .set({ used_at: now })
    .where('id', '=', verificationId)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export type CodeCheck =
  | { status: 'valid'; verification: Verification }
  | { status: 'used'; verification: Verification }
  | { status: 'expired' }
  | { status: 'invalid' }
  | { status: 'too_many_attempts' };

/** A code check that failed (wrong, expired or out of attempts): every purpose answers alike. */
export type CodeCheckFailure = Extract<
  CodeCheck,
  { status: 'expired' | 'invalid' | 'too_many_attempts' }
>;

const CODE_FAILURE_ANSWER = {
  invalid: 'code_invalid',
  too_many_attempts: 'too_many_attempts',
  expired: 'expired',
} as const;

export function failedOutright(checked: CodeCheck): checked is CodeCheckFailure {
  return checked.status in CODE_FAILURE_ANSWER;
}

/** The answer to a failed check, as the sign-up, email-change and contact confirmations give it. */
export function codeFailureAnswer(checked: CodeCheckFailure) {
  return { status: CODE_FAILURE_ANSWER[checked.status] };
}

/**
 * Checks a typed code; a wrong one counts against the secret, which dies after `maxAttempts`.
 * Call it inside a transaction: the attempt it reserves is read back before the row is released.
 */
export async function checkCode(
  db: Executor,
  options: {
    purpose: VerificationPurpose;
    target: string;
    code: string;
    now: number;
    secretKey: string;
    maxAttempts: number;
  },
): Promise<CodeCheck> {
  const verification = await db
    .selectFrom('verifications')
    .selectAll()
    .where('purpose', '=', options.purpose)
    .where('target', '=', options.target)
    .executeTakeFirst();
  if (!verification) return { status: 'invalid' };
  const expected = Buffer.from(verification.code_hash, 'hex');
  const actual = Buffer.from(
    hashCode(options.secretKey, options.purpose, options.target, normaliseCode(options.code)),
    'hex',
  );
  const matches = timingSafeEqual(expected, actual);
  // A used secret only says "used" to someone who knows the code: no free probing of addresses.
  if (verification.used_at !== null) {
    return matches ? { status: 'used', verification } : { status: 'invalid' };
  }
  // Likewise an exhausted or expired secret: to anyone without the code it answers as an address
  // with no secret at all does, so guessing cannot tell that an address has a pending sign-up
  // (or contact message, or email change). Whoever types the right code learns why it failed.
  if (verification.code_attempts >= options.maxAttempts) {
    return matches ? { status: 'too_many_attempts' } : { status: 'invalid' };
  }
  if (verification.code_expires_at <= options.now) {
    return matches ? { status: 'expired' } : { status: 'invalid' };
  }
  // Every try takes one of the allowed attempts atomically, before the answer is known, so
  // parallel guesses cannot all read the same count and slip past the limit. The row stays
  // locked by this transaction until it ends, so the count read next is the one just written.
  const reservation = await db
    .updateTable('verifications')
    .set((eb) => ({ code_attempts: eb('code_attempts', '+', 1) }))
    .where('id', '=', verification.id)
    .where('code_attempts', '<', options.maxAttempts)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  const reserved =
    Number(reservation.numUpdatedRows) === 1
      ? await db
          .selectFrom('verifications')
          .select('code_attempts')
          .where('id', '=', verification.id)
          .executeTakeFirst()
      : undefined;
  if (!reserved) {
    // Either the attempts ran out meanwhile, or a parallel request with the code spent it.
    const now = await db
      .selectFrom('verifications')
      .selectAll()
      .where('id', '=', verification.id)
      .executeTakeFirst();
    if (now?.used_at != null)
      return matches ? { status: 'used', verification: now } : { status: 'invalid' };
    return matches ? { status: 'too_many_attempts' } : { status: 'invalid' };
  }
  if (matches) {
    // Only wrong codes count: the right one hands its attempt back.
    await db
      .updateTable('verifications')
      .set((eb) => ({ code_attempts: eb('code_attempts', '-', 1) }))
      .where('id', '=', verification.id)
      .execute();
    return { status: 'valid', verification };
  }
  // A wrong code is only ever "invalid", even the one that used the last attempt (see above).
  return { status: 'invalid' };
}
