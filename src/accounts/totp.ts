// Time-based one-time passwords (RFC 6238) as every authenticator app reads them: SHA-1, six
// digits, 30-second steps. The secret is stored only encrypted; a code is accepted once.
import { createCipheriv, createDecipheriv, hkdfSync, timingSafeEqual } from 'node:crypto';
import { HOTP, Secret, TOTP } from 'otpauth';
import type { Random } from '../clock.ts';

export const TOTP_DIGITS = 6;
export const TOTP_PERIOD_SECONDS = 30;
const TOTP_ALGORITHM = 'SHA1';
/** 160 bits: RFC 4226's recommended length, and what authenticator apps expect for SHA-1. */
const SECRET_BYTES = 20;
/**
 * Steps accepted either side of the server's: a phone's clock may be a little off. One step, as
 * RFC 6238 §5.2 recommends; with replay refused, a code still works at most once.
 */
export const TOTP_DRIFT_STEPS = 1;

export function newTotpSecret(random: Random): Buffer {
  return random.bytes(SECRET_BYTES);
}

function otpSecret(secret: Buffer): Secret {
  return new Secret({ buffer: Uint8Array.from(secret).buffer });
}

export function base32Of(secret: Buffer): string {
  return otpSecret(secret).base32;
}

/** The base32 secret in groups of four, for typing into an app that cannot scan. */
export function groupedBase32(secret: Buffer): string {
  return base32Of(secret).replace(/(.{4})(?=.)/g, '$1 ');
}

/** The `otpauth://` URI the QR code carries: the app shows `issuer (account)` next to the codes. */
export function otpauthUri(secret: Buffer, issuer: string, account: string): string {
  return new TOTP({
    issuer,
    label: account,
    algorithm: TOTP_ALGORITHM,
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
    secret: otpSecret(secret),
  }).toString();
}

/** The time step `now` (ms) falls in. The server's clock decides, never the client's. */
export function totpStep(now: number): number {
  return TOTP.counter({ period: TOTP_PERIOD_SECONDS, timestamp: now });
}

export function totpCode(secret: Buffer, step: number): string {
  return HOTP.generate({
    secret: otpSecret(secret),
    algorithm: TOTP_ALGORITHM,
    digits: TOTP_DIGITS,
    counter: step,
  });
}

/**
 * The time step whose code `code` is, within the drift window around `now` and newer than
 * `lastUsedStep` (replay protection); null when there is none.
 */
export function matchTotp(
  secret: Buffer,
  code: string,
  now: number,
  lastUsedStep: number | null,
): number | null {
  if (!new RegExp(`^\\d{${TOTP_DIGITS}}$`).test(code)) return null;
  const typed = Buffer.from(code);
  const current = totpStep(now);
  let matched: number | null = null;
  for (let step = current - TOTP_DRIFT_STEPS; step <= current + TOTP_DRIFT_STEPS; step += 1) {
    if (lastUsedStep !== null && step <= lastUsedStep) continue;
    const expected = Buffer.from(totpCode(secret, step));
    if (timingSafeEqual(expected, typed) && matched === null) matched = step;
  }
  return matched;
}

// The secret must be readable again to compute codes, so it cannot be hashed: it is encrypted
// under a key of its own, derived from SECRET_KEY, so SECRET_KEY itself keeps one purpose.
const KEY_INFO = 'mailproof totp secret';
const SEALED_PREFIX = 'v1.';
const IV_BYTES = 12;
const TAG_BYTES = 16;

const keys = new Map<string, Buffer>();

function encryptionKey(secretKey: string): Buffer {
  let key = keys.get(secretKey);
  if (!key) {
    key = Buffer.from(hkdfSync('sha256', secretKey, Buffer.alloc(0), KEY_INFO, 32));
    keys.set(secretKey, key);
  }
  return key;
}

/**
 * AES-256-GCM, bound to the account (the user id is the associated data): a row copied to
 * another account does not decrypt there.
 */
export function sealTotpSecret(
  secretKey: string,
  userId: string,
  secret: Buffer,
  random: Random,
): string {
  const iv = random.bytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', encryptionKey(secretKey), iv);
  cipher.setAAD(Buffer.from(userId, 'utf8'));
  const sealed = Buffer.concat([cipher.update(secret), cipher.final()]);
  return `${SEALED_PREFIX}${Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64url')}`;
}

/** The secret, or null when it cannot be opened (SECRET_KEY changed, or the row was tampered with). */
export function openTotpSecret(secretKey: string, userId: string, sealed: string): Buffer | null {
  if (!sealed.startsWith(SEALED_PREFIX)) return null;
  const raw = Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64url');
  if (raw.length <= IV_BYTES + TAG_BYTES) return null;
  try {
    const decipher = createDecipheriv(
      'aes-256-gcm',
      encryptionKey(secretKey),
      raw.subarray(0, IV_BYTES),
    );
    decipher.setAAD(Buffer.from(userId, 'utf8'));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
  } catch {
    return null;
  }
}
