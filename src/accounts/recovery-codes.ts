// Recovery codes: ten single-use codes shown once when two-step sign-in is turned on, for the
// day the phone is lost. Only an argon2id hash of each is stored (ASVS 6.5.2); making new ones
// replaces them all.
import type { Kysely, Transaction } from 'kysely';
import { newId, type Random } from '../clock.ts';
import type { Database } from '../db/schema.ts';
import { hashPassword, verifyPassword } from './password.ts';

type Executor = Kysely<Database> | Transaction<Database>;

export const RECOVERY_CODE_COUNT = 10;
const RECOVERY_CODE_LENGTH = 10;
/** No 0/o, 1/l/i: nothing that reads as something else when copied from paper. 31 symbols. */
const ALPHABET = '23456789abcdefghjkmnpqrstuvwxyz';
const CODE_PATTERN = new RegExp(`^[${ALPHABET}]{${RECOVERY_CODE_LENGTH}}$`);

/** Ten symbols of 31, drawn from the CSPRNG without bias: about 49.5 bits. Shown as xxxxx-xxxxx. */
export function newRecoveryCode(random: Random): string {
  let code = '';
  for (let i = 0; i < RECOVERY_CODE_LENGTH; i += 1) code += ALPHABET[random.int(ALPHABET.length)];
  return `${code.slice(0, 5)}-${code.slice(5)}`;
}

/** The code as stored: lower case, without spaces or dashes; null when it cannot be one. */
export function normaliseRecoveryCode(input: string): string | null {
  const code = input.toLowerCase().replace(/[\s-]/g, '');
  return CODE_PATTERN.test(code) ? code : null;
}

/**
 * A lookup secret of about 49.5 bits, under the 112 of ASVS 6.5.2, so it is stored as passwords
 * are: argon2id with a random salt per code (src/accounts/password.ts), hashed on libuv's thread
 * pool. A copy of the table (even with SECRET_KEY) costs a slow hash per guess per code.
 */
export function hashRecoveryCode(normalised: string): Promise<string> {
  return hashPassword(normalised);
}

/** Ten new codes and their hashes, not stored yet. */
export interface MadeRecoveryCodes {
  codes: string[];
  hashes: string[];
}

/**
 * Draws ten codes and hashes them, side by side on the thread pool. Callers that can do this
 * before their transaction do (turning it on), so the transaction does not wait for ten hashes.
 */
export async function makeRecoveryCodes(random: Random): Promise<MadeRecoveryCodes> {
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, () => newRecoveryCode(random));
  const hashes = await Promise.all(
    codes.map((code) => hashRecoveryCode(normaliseRecoveryCode(code) ?? '')),
  );
  return { codes, hashes };
}

/** Replaces every recovery code of the account with ten new ones, returned for showing once. */
export async function replaceRecoveryCodes(
  db: Executor,
  options: { userId: string; random: Random; now: number; made?: MadeRecoveryCodes },
): Promise<string[]> {
  const { codes, hashes } = options.made ?? (await makeRecoveryCodes(options.random));
  await db.deleteFrom('two_step_recovery_codes').where('user_id', '=', options.userId).execute();
  await db
    .insertInto('two_step_recovery_codes')
    .values(
      codes.map((_, i) => ({
        id: newId(options.random),
        user_id: options.userId,
        code_hash: hashes[i] ?? '',
        used_at: null,
        created_at: options.now,
      })),
    )
    .execute();
  return codes;
}

export type RecoveryCodeUse = 'used' | 'already_used' | 'wrong';

/**
 * Spends the code if it is one of the account's unused ones. Each hash has its own salt, so the
 * typed code is checked against every code of the account (ten at most: used ones too, to tell
 * "already used" apart), concurrently; the one that matches is spent by a single conditional
 * UPDATE (used_at IS NULL), so of two requests with the same code only one spends it.
 */
export async function useRecoveryCode(
  db: Executor,
  options: { userId: string; code: string; now: number },
): Promise<RecoveryCodeUse> {
  const normalised = normaliseRecoveryCode(options.code);
  if (!normalised) return 'wrong';
  const rows = await db
    .selectFrom('two_step_recovery_codes')
    .select(['id', 'code_hash', 'used_at'])
    .where('user_id', '=', options.userId)
    .limit(RECOVERY_CODE_COUNT)
    .execute();
  const matches = await Promise.all(rows.map((row) => verifyPassword(row.code_hash, normalised)));
  const match = rows.find((_, i) => matches[i]);
  if (!match) return 'wrong';
  if (match.used_at !== null) return 'already_used';
  const spent = await db
    .updateTable('two_step_recovery_codes')
    .set({ used_at: options.now })
    .where('id', '=', match.id)
    .where('user_id', '=', options.userId)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  return Number(spent.numUpdatedRows) > 0 ? 'used' : 'already_used';
}

export async function recoveryCodesLeft(db: Executor, userId: string): Promise<number> {
  const row = await db
    .selectFrom('two_step_recovery_codes')
    .select((eb) => eb.fn.countAll<number | string>().as('left'))
    .where('user_id', '=', userId)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  return Number(row?.left ?? 0);
}
