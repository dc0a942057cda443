// Recovery codes: ten single-use codes shown once when two-step sign-in is turned on, for the
// day the phone is lost. Only a keyed hash of each is stored; making new ones replaces them all.
import { createHmac, hkdfSync } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { newId, type Random } from '../clock.ts';
import type { Database } from '../db/schema.ts';

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

const keys = new Map<string, Buffer>();

function hashKey(secretKey: string): Buffer {
  let key = keys.get(secretKey);
  if (!key) {
    key = Buffer.from(
      hkdfSync('sha256', secretKey, Buffer.alloc(0), 'mailproof recovery code', 32),
    );
    keys.set(secretKey, key);
  }
  return key;
}

/**
 * Keyed with a key derived from SECRET_KEY, like the 8-digit codes (decision 002): a leaked
 * table cannot be searched offline without it. Bound to the account, so equal codes of two
 * accounts hash apart.
 */
export function hashRecoveryCode(secretKey: string, userId: string, normalised: string): string {
  return createHmac('sha256', hashKey(secretKey)).update(`${userId}:${normalised}`).digest('hex');
}

/** Replaces every recovery code of the account with ten new ones, returned for showing once. */
export async function replaceRecoveryCodes(
  db: Executor,
  options: { userId: string; secretKey: string; random: Random; now: number },
): Promise<string[]> {
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, () => newRecoveryCode(options.random));
  await db.deleteFrom('two_step_recovery_codes').where('user_id', '=', options.userId).execute();
  await db
    .insertInto('two_step_recovery_codes')
    .values(
      codes.map((code) => ({
        id: newId(options.random),
        user_id: options.userId,
        code_hash: hashRecoveryCode(
          options.secretKey,
          options.userId,
          normaliseRecoveryCode(code) ?? '',
        ),
        used_at: null,
        created_at: options.now,
      })),
    )
    .execute();
  return codes;
}

export type RecoveryCodeUse = 'used' | 'already_used' | 'wrong';

/** Spends the code if it is one of the account's unused ones: one statement, so only once. */
export async function useRecoveryCode(
  db: Executor,
  options: { userId: string; secretKey: string; code: string; now: number },
): Promise<RecoveryCodeUse> {
  const normalised = normaliseRecoveryCode(options.code);
  if (!normalised) return 'wrong';
  const codeHash = hashRecoveryCode(options.secretKey, options.userId, normalised);
  const spent = await db
    .updateTable('two_step_recovery_codes')
    .set({ used_at: options.now })
    .where('user_id', '=', options.userId)
    .where('code_hash', '=', codeHash)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  if (Number(spent.numUpdatedRows) > 0) return 'used';
  const known = await db
    .selectFrom('two_step_recovery_codes')
    .select('id')
    .where('user_id', '=', options.userId)
    .where('code_hash', '=', codeHash)
    .executeTakeFirst();
  return known ? 'already_used' : 'wrong';
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
