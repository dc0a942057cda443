// Two-step sign-in's parts (docs/decisions/014): TOTP codes as authenticator apps make them
// (RFC 6238), accepted one step either side of now and once; the secret stored only encrypted;
// recovery codes that work once and are stored only as argon2id hashes (ASVS 6.5.2).
import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword, verifyPassword } from '../../src/accounts/password.ts';
import {
  newRecoveryCode,
  normaliseRecoveryCode,
  RECOVERY_CODE_COUNT,
  replaceRecoveryCodes,
  useRecoveryCode,
} from '../../src/accounts/recovery-codes.ts';
import { createSession, hashSessionId } from '../../src/accounts/session.ts';
import {
  base32Of,
  groupedBase32,
  matchTotp,
  newTotpSecret,
  openTotpSecret,
  otpauthUri,
  sealTotpSecret,
  totpCode,
  totpStep,
} from '../../src/accounts/totp.ts';
import { confirmEnrolment, startEnrolment, useSecondFactor } from '../../src/accounts/two-step.ts';
import { cryptoRandom, newId } from '../../src/clock.ts';
import type { User } from '../../src/db/schema.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

const SECRET_KEY = 'unit-test-secret-key-that-is-long-enough';
const PASSWORD = 'lantern orchard pebble';
// RFC 6238 appendix B: the SHA-1 key is the ASCII of "12345678901234567890".
const RFC_SECRET = Buffer.from('12345678901234567890', 'ascii');
const STEP_MS = 30_000;
/** The middle of a step, so ±1 step is unambiguous. */
const NOW = Date.parse('2026-01-15T12:00:15Z');

/** The code an authenticator app shows at `timestamp`, computed by otpauth directly. */
function appCode(secret: Buffer, timestamp: number): string {
  return TOTP.generate({
    secret: Secret.fromBase32(base32Of(secret)),
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
    timestamp,
  });
}

describe('TOTP codes', () => {
  it('are the codes of RFC 6238 (SHA-1, 6 digits, 30-second steps)', () => {
    // Appendix B's 8-digit values, of which an app shows the last 6.
    expect(totpCode(RFC_SECRET, totpStep(59_000))).toBe('287082');
    expect(totpCode(RFC_SECRET, totpStep(1_111_111_109_000))).toBe('081804');
    expect(totpCode(RFC_SECRET, totpStep(2_000_000_000_000))).toBe('279037');
    expect(appCode(RFC_SECRET, 59_000)).toBe('287082');
  });

  it('accept the current step and one step either side, nothing further', () => {
    const secret = newTotpSecret(cryptoRandom);
    const now = totpStep(NOW);
    expect(matchTotp(secret, appCode(secret, NOW), NOW, null)).toBe(now);
    expect(matchTotp(secret, appCode(secret, NOW - STEP_MS), NOW, null)).toBe(now - 1);
    expect(matchTotp(secret, appCode(secret, NOW + STEP_MS), NOW, null)).toBe(now + 1);
    for (const offset of [-2, 2, -3, 10]) {
      const code = appCode(secret, NOW + offset * STEP_MS);
      // A code of a far step can equal a near one by chance (1 in 10^6): not a refusal to test.
      const nearby = [-1, 0, 1].map((d) => appCode(secret, NOW + d * STEP_MS));
      if (nearby.includes(code)) continue;
      expect(matchTotp(secret, code, NOW, null), `${offset} steps`).toBeNull();
    }
  });

  it('refuse a code whose step is not newer than the last one accepted (replay)', () => {
    const secret = newTotpSecret(cryptoRandom);
    const now = totpStep(NOW);
    const code = appCode(secret, NOW);
    expect(matchTotp(secret, code, NOW, now - 1)).toBe(now);
    expect(matchTotp(secret, code, NOW, now)).toBeNull();
    expect(matchTotp(secret, appCode(secret, NOW - STEP_MS), NOW, now)).toBeNull();
    // The next step's code still works after this one was used.
    expect(matchTotp(secret, appCode(secret, NOW + STEP_MS), NOW, now)).toBe(now + 1);
  });

  it('refuse anything but six digits', () => {
    const secret = newTotpSecret(cryptoRandom);
    const code = appCode(secret, NOW);
    for (const typed of ['', code.slice(0, 5), `${code}0`, ` ${code}`, 'abcdef', '12345６']) {
      expect(matchTotp(secret, typed, NOW, null), JSON.stringify(typed)).toBeNull();
    }
  });

  it('use a 160-bit secret, shown in base32 (grouped for typing) and in an otpauth:// URI', () => {
    const secret = newTotpSecret(cryptoRandom);
    expect(secret).toHaveLength(20);
    expect(base32Of(secret)).toMatch(/^[A-Z2-7]{32}$/);
    expect(groupedBase32(secret)).toMatch(/^([A-Z2-7]{4} ){7}[A-Z2-7]{4}$/);
    const uri = new URL(otpauthUri(secret, 'Mailproof', 'ada@example.com'));
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.host).toBe('totp');
    expect(decodeURIComponent(uri.pathname)).toBe('/Mailproof:ada@example.com');
    expect(Object.fromEntries(uri.searchParams)).toEqual({
      secret: base32Of(secret),
      issuer: 'Mailproof',
      algorithm: 'SHA1',
      digits: '6',
      period: '30',
    });
  });
});

describe('the stored secret', () => {
  it('round-trips through AES-256-GCM, for its account and SECRET_KEY only', () => {
    const secret = newTotpSecret(cryptoRandom);
    const sealed = sealTotpSecret(SECRET_KEY, 'user-1', secret, cryptoRandom);
    expect(openTotpSecret(SECRET_KEY, 'user-1', sealed)).toEqual(secret);
    expect(openTotpSecret(SECRET_KEY, 'user-2', sealed)).toBeNull();
    expect(openTotpSecret(`${SECRET_KEY}-rotated`, 'user-1', sealed)).toBeNull();
    const last = sealed.at(-1) === 'A' ? 'B' : 'A';
    expect(openTotpSecret(SECRET_KEY, 'user-1', `${sealed.slice(0, -1)}${last}`)).toBeNull();
    expect(openTotpSecret(SECRET_KEY, 'user-1', 'v1.')).toBeNull();
    // A fresh IV each time: the same secret never seals to the same text.
    expect(sealTotpSecret(SECRET_KEY, 'user-1', secret, cryptoRandom)).not.toBe(sealed);
  });
});

describe('with a database', () => {
  let rt: TestRuntime;
  let seq = 0;

  beforeAll(async () => {
    rt = await createTestRuntime({ worker: false });
  });
  afterAll(async () => {
    await rt.close();
  });

  async function user(): Promise<User> {
    seq += 1;
    const email = `unit-two-step-${seq}-${Math.random().toString(36).slice(2, 8)}@example.com`;
    const row: User = {
      id: newId(cryptoRandom),
      email,
      email_normalized: email,
      password_hash: await hashPassword(PASSWORD),
      email_verified_at: NOW,
      created_at: NOW,
      updated_at: NOW,
    };
    await rt.db.kysely.insertInto('users').values(row).execute();
    return row;
  }

  it('keeps only the encrypted secret: no column holds it in base32, hex or raw', async () => {
    const owner = await user();
    const { token } = await createSession(rt.ctx, owner.id);
    const started = await startEnrolment(rt.ctx, owner, hashSessionId(token));
    if (started.status !== 'started') throw new Error(started.status);
    const secret = Buffer.from(Secret.fromBase32(started.enrolment.secret).bytes);
    const enabled = await confirmEnrolment(rt.ctx, owner, hashSessionId(token), {
      password: PASSWORD,
      code: appCode(secret, rt.clock.now()),
    });
    expect(enabled.status).toBe('enabled');

    const row = await rt.db.kysely
      .selectFrom('two_step_totp')
      .selectAll()
      .where('user_id', '=', owner.id)
      .executeTakeFirstOrThrow();
    const stored = JSON.stringify(row);
    expect(stored).not.toContain(started.enrolment.secret);
    expect(stored.toLowerCase()).not.toContain(started.enrolment.secret.toLowerCase());
    expect(stored).not.toContain(secret.toString('hex'));
    expect(stored).not.toContain(secret.toString('base64url'));
    expect(row.secret).toMatch(/^v1\.[A-Za-z0-9_-]+$/);
    expect(openTotpSecret(rt.config.secretKey, owner.id, row.secret)).toEqual(secret);
    // The code that turned it on counts as used.
    expect(row.last_used_step).toBe(totpStep(rt.clock.now()));
    // Nothing of the secret is left behind by the setup.
    const pending = await rt.db.kysely
      .selectFrom('two_step_enrolments')
      .selectAll()
      .where('user_id', '=', owner.id)
      .execute();
    expect(pending).toEqual([]);
  });

  it('accepts an app code once, even from two requests at the same moment', async () => {
    const owner = await user();
    const { token } = await createSession(rt.ctx, owner.id);
    const started = await startEnrolment(rt.ctx, owner, hashSessionId(token));
    if (started.status !== 'started') throw new Error(started.status);
    const secret = Buffer.from(Secret.fromBase32(started.enrolment.secret).bytes);
    await confirmEnrolment(rt.ctx, owner, hashSessionId(token), {
      password: PASSWORD,
      code: appCode(secret, rt.clock.now()),
    });
    rt.clock.advance(STEP_MS);
    const code = appCode(secret, rt.clock.now());
    const both = await Promise.all([
      useSecondFactor(rt.ctx, rt.db.kysely, owner.id, code),
      useSecondFactor(rt.ctx, rt.db.kysely, owner.id, code),
    ]);
    expect(both.map((r) => r.status).sort()).toEqual(['invalid', 'ok']);
    expect(await useSecondFactor(rt.ctx, rt.db.kysely, owner.id, code)).toMatchObject({
      status: 'invalid',
      code: 'code_used',
    });
  });

  it('makes ten readable recovery codes, stores only their argon2id hashes, accepts each once', async () => {
    const owner = await user();
    const codes = await replaceRecoveryCodes(rt.db.kysely, {
      userId: owner.id,
      random: cryptoRandom,
      now: NOW,
    });
    expect(codes).toHaveLength(RECOVERY_CODE_COUNT);
    expect(new Set(codes).size).toBe(RECOVERY_CODE_COUNT);
    for (const code of codes) expect(code).toMatch(/^[2-9a-hjkmnp-z]{5}-[2-9a-hjkmnp-z]{5}$/);

    const rows = await rt.db.kysely
      .selectFrom('two_step_recovery_codes')
      .selectAll()
      .where('user_id', '=', owner.id)
      .execute();
    expect(rows).toHaveLength(RECOVERY_CODE_COUNT);
    const stored = JSON.stringify(rows);
    for (const code of codes) {
      expect(stored).not.toContain(code);
      expect(stored).not.toContain(code.replace('-', ''));
    }
    // argon2id with the password options (OWASP's minimum) and a salt of its own per code.
    for (const row of rows) {
      expect(row.code_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$/);
    }
    expect(new Set(rows.map((r) => r.code_hash.split('$')[4])).size).toBe(RECOVERY_CODE_COUNT);
    const first = codes[0] ?? '';
    const matching = await Promise.all(
      rows.map((r) => verifyPassword(r.code_hash, normaliseRecoveryCode(first) ?? '')),
    );
    expect(matching.filter(Boolean)).toHaveLength(1);

    const use = (code: string) =>
      useRecoveryCode(rt.db.kysely, { userId: owner.id, code, now: NOW });
    // Typed in capitals, with spaces instead of the dash: still the code.
    expect(await use(first.toUpperCase().replace('-', ' '))).toBe('used');
    expect(await use(first)).toBe('already_used');
    expect(await use('zzzzz-zzzzz')).toBe('wrong');
    expect(await use('not a code')).toBe('wrong');
    const spent = await rt.db.kysely
      .selectFrom('two_step_recovery_codes')
      .select('id')
      .where('user_id', '=', owner.id)
      .where('used_at', '=', NOW)
      .execute();
    expect(spent).toHaveLength(1);
    // Another account's code is not this one's.
    const other = await user();
    expect(
      await useRecoveryCode(rt.db.kysely, { userId: other.id, code: codes[1] ?? '', now: NOW }),
    ).toBe('wrong');

    // New codes replace every old one.
    const fresh = await replaceRecoveryCodes(rt.db.kysely, {
      userId: owner.id,
      random: cryptoRandom,
      now: NOW,
    });
    expect(await use(codes[1] ?? '')).toBe('wrong');
    expect(await use(fresh[1] ?? '')).toBe('used');
  });

  it('spends a recovery code once, even when two requests use it at the same moment', async () => {
    const owner = await user();
    const codes = await replaceRecoveryCodes(rt.db.kysely, {
      userId: owner.id,
      random: cryptoRandom,
      now: NOW,
    });
    const code = codes[3] ?? '';
    const use = () => useRecoveryCode(rt.db.kysely, { userId: owner.id, code, now: NOW });
    const both = await Promise.all([use(), use()]);
    expect(both.sort()).toEqual(['already_used', 'used']);
    const rows = await rt.db.kysely
      .selectFrom('two_step_recovery_codes')
      .select(['id', 'used_at'])
      .where('user_id', '=', owner.id)
      .execute();
    expect(rows.filter((r) => r.used_at !== null)).toHaveLength(1);
    // The same through the second step, as a login or the account page would: one ok.
    const other = codes[4] ?? '';
    await rt.db.kysely
      .insertInto('two_step_totp')
      .values({
        user_id: owner.id,
        secret: sealTotpSecret(
          rt.config.secretKey,
          owner.id,
          newTotpSecret(cryptoRandom),
          cryptoRandom,
        ),
        last_used_step: null,
        enabled_at: NOW,
      })
      .execute();
    const factors = await Promise.all([
      useSecondFactor(rt.ctx, rt.db.kysely, owner.id, other),
      useSecondFactor(rt.ctx, rt.db.kysely, owner.id, other),
    ]);
    expect(factors.map((r) => r.status).sort()).toEqual(['invalid', 'ok']);
    expect(factors.find((r) => r.status === 'invalid')).toMatchObject({ code: 'code_used' });
  });

  it('draws recovery codes without ambiguous characters, about 49.5 bits each', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i += 1) {
      const code = newRecoveryCode(cryptoRandom);
      expect(code).not.toMatch(/[01ilo]/);
      seen.add(code);
    }
    expect(seen.size).toBe(200);
    expect(10 * Math.log2(31)).toBeGreaterThan(49);
    expect(normaliseRecoveryCode('ABCDE-23456')).toBe('abcde23456');
    expect(normaliseRecoveryCode('abcde-2345')).toBeNull();
    expect(normaliseRecoveryCode('abcd0-23456')).toBeNull();
  });
});
