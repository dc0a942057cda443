// Passwords per NIST SP 800-63B-4: a minimum length, a generous maximum, no composition rules,
// a check against common passwords, NFKC normalisation, never truncated; argon2id to store.
import type { Algorithm } from '@node-rs/argon2';
import { dictionary } from '@zxcvbn-ts/language-common';
import { HashPool } from './hash-pool.ts';

export const MAX_PASSWORD_LENGTH = 256;

// OWASP's minimum for argon2id: 19 MiB of memory, 2 passes, 1 lane.
export const ARGON2ID_OPTIONS = {
  algorithm: 2 as Algorithm, // Argon2id
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
};

const commonPasswords = new Set(
  (dictionary['passwords-common'] as string[]).map((p) => p.toLowerCase()),
);

export type PasswordProblem =
  | { code: 'password_too_short'; message: string }
  | { code: 'password_too_long'; message: string }
  | { code: 'password_common'; message: string };

export function normalisePassword(password: string): string {
  return password.normalize('NFKC');
}

/** Letters only, lower-cased: "Mailproof-2024!" and "mail.proof" both become "mailproof". */
function lettersOf(text: string): string {
  return text.toLowerCase().replace(/[^\p{L}]/gu, '');
}

/**
 * The context-specific words of NIST SP 800-63B (ASVS 6.1.2, 6.2.11): the name of the service,
 * the address, its local part and its domain's name. A password made of one of them plus digits
 * and punctuation ("mailproof2024!!!", "alice.smith123456") is refused.
 */
export function contextWords(options: { email?: string; appName?: string }): string[] {
  const words = ['mailproof'];
  if (options.appName) words.push(options.appName);
  const email = options.email?.trim();
  if (email) {
    const at = email.lastIndexOf('@');
    words.push(email);
    if (at > 0) words.push(email.slice(0, at), email.slice(at + 1).split('.')[0] ?? '');
  }
  return [...new Set(words.map(lettersOf).filter((word) => word.length >= 3))];
}

/**
 * A common password padded out with digits and punctuation ("password1234567", "Dragon!!!!!!!!!").
 * The list holds few entries as long as the 15-character minimum, so padding is what people add to
 * reach it; only the letters count, and they must make a listed word of four letters or more.
 */
function isPaddedCommonWord(password: string): boolean {
  const letters = lettersOf(password);
  return letters.length >= 4 && commonPasswords.has(letters);
}

/**
 * A short run repeated: "aaaaaaaaaaaaaaa", fifteen spaces, "121212121212121", "abcabcabcabcabc".
 * Such a password is only as strong as its run, and a run under the 8 characters NIST allows at
 * the least is refused; a longer one repeated ("plum kite rover plum kite rover") is not.
 */
const SHORTEST_RUN_ALLOWED = 8;
function isRepetition(password: string): boolean {
  const chars = [...password];
  const longestRun = Math.min(SHORTEST_RUN_ALLOWED - 1, Math.floor(chars.length / 2));
  for (let run = 1; run <= longestRun; run++) {
    if (chars.every((char, i) => char === chars[i % run])) return true;
  }
  return false;
}

// Runs people type as sequences: the alphabet, the digits (9 wraps round to 0) and the rows and
// columns of a QWERTY keyboard, read forwards or backwards.
const SEQUENCES = [
  'abcdefghijklmnopqrstuvwxyz',
  '0123456789',
  'qwertyuiopasdfghjklzxcvbnm',
  '1234567890qwertyuiopasdfghjklzxcvbnm',
  '1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p',
].flatMap((run) => [run, [...run].reverse().join('')]);

/** The whole password is part of a sequence, repeated as often as needed: "123456789012345". */
function isSequence(password: string): boolean {
  return SEQUENCES.some((run) =>
    run.repeat(Math.ceil(password.length / run.length) + 1).includes(password),
  );
}

/** Returns the first problem with a new password, or null when it is acceptable. */
export function checkNewPassword(
  password: string,
  options: { minLength: number; email?: string; appName?: string },
): PasswordProblem | null {
  const normalised = normalisePassword(password);
  const length = [...normalised].length;
  if (length < options.minLength) {
    return {
      code: 'password_too_short',
      message: `Use at least ${options.minLength} characters. A few words together make a strong password that is easy to remember.`,
    };
  }
  if (length > MAX_PASSWORD_LENGTH) {
    return {
      code: 'password_too_long',
      message: `Use at most ${MAX_PASSWORD_LENGTH} characters.`,
    };
  }
  const lower = normalised.toLowerCase();
  if (
    commonPasswords.has(lower) ||
    (options.email && lower === options.email.toLowerCase()) ||
    isPaddedCommonWord(normalised) ||
    isRepetition(lower) ||
    isSequence(lower)
  ) {
    return {
      code: 'password_common',
      message: 'This password is too common or too easy to guess. Choose another one.',
    };
  }
  if (contextWords(options).includes(lettersOf(normalised))) {
    return {
      code: 'password_common',
      message:
        'This password is too easy to guess: it is made from your email address or the name of this site. Choose another one.',
    };
  }
  return null;
}

/**
 * One thread per core hashes and checks passwords (src/accounts/hash-pool.ts), so the event loop
 * keeps serving requests, and at most one hash or check per core runs at a time; the rest wait
 * their turn. Four at once on two cores share the CPU and the cache (each fills 19 MiB): hashing 8
 * passwords at a time gave 108 hashes/s with four running against 119 with two (docs/performance.md,
 * fifth session). libuv's own pool stays free for files and DNS.
 */
export const hashPool = new HashPool();

export function hashPassword(password: string): Promise<string> {
  const normalised = normalisePassword(password);
  return hashPool.run({
    op: 'hash',
    password: normalised,
    options: ARGON2ID_OPTIONS,
  }) as Promise<string>;
}

/**
 * True when the password matches. A stored value that is not an argon2 hash never matches; a
 * thread that fails rejects, so a fault is never mistaken for a wrong password.
 */
export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  const normalised = normalisePassword(password);
  const matches = await hashPool.run({ op: 'verify', hash: passwordHash, password: normalised });
  return matches === true;
}

let dummyHash: Promise<string> | null = null;

/** Spends the same time as a real check, so an unknown address answers as slowly as a known one. */
export async function verifyAgainstDummy(password: string): Promise<false> {
  dummyHash ??= hashPassword('mailproof-dummy-password-for-timing');
  await verifyPassword(await dummyHash, password);
  return false;
}
