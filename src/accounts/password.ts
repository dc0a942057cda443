// Passwords per NIST SP 800-63B-4: a minimum length, a generous maximum, no composition rules,
// a check against common passwords, NFKC normalisation, never truncated; argon2id to store.
import { availableParallelism } from 'node:os';
import { type Algorithm, hash, verify } from '@node-rs/argon2';
import { dictionary } from '@zxcvbn-ts/language-common';
import pLimit from 'p-limit';

export const MAX_PASSWORD_LENGTH = 256;

// OWASP's minimum for argon2id: 19 MiB of memory, 2 passes, 1 lane.
const ARGON2ID_OPTIONS = {
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
  if (commonPasswords.has(lower) || (options.email && lower === options.email.toLowerCase())) {
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
 * At most one hash or check per core at a time; the rest wait their turn here. libuv's pool would
 * run four at once: on two cores they then share the CPU and the cache (each fills 19 MiB), and
 * hashing 8 passwords at a time gave 108 hashes/s with four running against 119 with two
 * (docs/performance.md, fifth session). It also leaves the pool's other threads free for files
 * and DNS.
 */
export const hashSlots = pLimit(Math.max(1, availableParallelism()));

/** Hashes on libuv's thread pool, so the event loop keeps serving requests. */
export function hashPassword(password: string): Promise<string> {
  const normalised = normalisePassword(password);
  return hashSlots(() => hash(normalised, ARGON2ID_OPTIONS));
}

export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  const normalised = normalisePassword(password);
  try {
    return await hashSlots(() => verify(passwordHash, normalised));
  } catch {
    return false;
  }
}

let dummyHash: Promise<string> | null = null;

/** Spends the same time as a real check, so an unknown address answers as slowly as a known one. */
export async function verifyAgainstDummy(password: string): Promise<false> {
  dummyHash ??= hashPassword('mailproof-dummy-password-for-timing');
  await verifyPassword(await dummyHash, password);
  return false;
}
