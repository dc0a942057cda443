// §2 Link tokens and codes: random, hashed, purpose-bound, single-use, replaced, expiring.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cryptoRandom, type Random } from '../../src/clock.ts';
import type { VerificationPurpose } from '../../src/db/schema.ts';
import {
  checkCode,
  consumeToken,
  findByToken,
  hashCode,
  hashToken,
  issueVerification,
  markUsed,
  newCode,
  newToken,
} from '../../src/tokens/tokens.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

const SECRET = 'unit-test-secret-key-that-is-long-enough';
const NOW = Date.parse('2026-01-15T12:00:00Z');
const LINK_TTL = 3600;
const CODE_TTL = 600;

let rt: TestRuntime;
let counter = 0;

beforeAll(async () => {
  rt = await createTestRuntime({ worker: false });
});
afterAll(async () => {
  await rt.close();
});

function uniqueTarget(): string {
  counter += 1;
  return `target-${counter}-${Math.random().toString(36).slice(2, 8)}@example.com`;
}

function issue(
  target: string,
  overrides: {
    purpose?: VerificationPurpose;
    now?: number;
    secretKey?: string;
    random?: Random;
  } = {},
) {
  return issueVerification(rt.db.kysely, {
    purpose: overrides.purpose ?? 'signup',
    target,
    userId: null,
    now: overrides.now ?? NOW,
    linkTtlSeconds: LINK_TTL,
    codeTtlSeconds: CODE_TTL,
    secretKey: overrides.secretKey ?? SECRET,
    random: overrides.random ?? cryptoRandom,
  });
}

function check(target: string, code: string, overrides: { now?: number; secretKey?: string } = {}) {
  return checkCode(rt.db.kysely, {
    purpose: 'signup',
    target,
    code,
    now: overrides.now ?? NOW,
    secretKey: overrides.secretKey ?? SECRET,
    maxAttempts: 5,
  });
}

function rowsFor(target: string) {
  return rt.db.kysely
    .selectFrom('verifications')
    .selectAll()
    .where('target', '=', target)
    .execute();
}

function wrongCode(code: string): string {
  return code === '00000000' ? '11111111' : '00000000';
}

describe('secrets', () => {
  it('makes url-safe link tokens of at least 128 random bits', () => {
    const tokens = new Set<string>();
    for (let i = 0; i < 500; i += 1) {
      const token = newToken(cryptoRandom);
      expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(encodeURIComponent(token)).toBe(token);
      expect(Buffer.from(token, 'base64url').length).toBeGreaterThanOrEqual(16);
      tokens.add(token);
    }
    expect(tokens.size).toBe(500);
  });

  it('draws the token from the injected random source', () => {
    const sizes: number[] = [];
    const random: Random = {
      bytes: (size) => {
        sizes.push(size);
        return Buffer.alloc(size, 7);
      },
      int: () => 0,
    };
    const token = newToken(random);
    expect(sizes[0]).toBeGreaterThanOrEqual(16);
    expect(Buffer.from(token, 'base64url')).toEqual(Buffer.alloc(sizes[0] ?? 0, 7));
  });

  it('makes 8-digit codes, keeping leading zeros', () => {
    for (let i = 0; i < 200; i += 1) expect(newCode(cryptoRandom)).toMatch(/^\d{8}$/);
    const bounds: number[] = [];
    const fixed = (value: number): Random => ({
      bytes: (size) => Buffer.alloc(size),
      int: (max) => {
        bounds.push(max);
        return value;
      },
    });
    expect(newCode(fixed(42))).toBe('00000042');
    expect(newCode(fixed(99_999_999))).toBe('99999999');
    expect(bounds).toEqual([100_000_000, 100_000_000]);
  });

  it('binds token hashes to their purpose', () => {
    const token = newToken(cryptoRandom);
    const signup = hashToken('signup', token);
    expect(signup).toMatch(/^[0-9a-f]{64}$/);
    expect(signup).not.toBe(hashToken('reset', token));
    expect(signup).not.toBe(hashToken('contact', token));
    expect(signup).not.toBe(hashToken('email_change', token));
    expect(signup).not.toBe(createHash('sha256').update(token).digest('hex'));
    expect(hashToken('signup', token)).toBe(signup);
  });

  it('keys code hashes with the secret and binds them to purpose and target', () => {
    const base = hashCode(SECRET, 'signup', 'a@example.com', '12345678');
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(hashCode(SECRET, 'signup', 'a@example.com', '12345678')).toBe(base);
    expect(hashCode('another-secret', 'signup', 'a@example.com', '12345678')).not.toBe(base);
    expect(hashCode(SECRET, 'reset', 'a@example.com', '12345678')).not.toBe(base);
    expect(hashCode(SECRET, 'signup', 'b@example.com', '12345678')).not.toBe(base);
    expect(hashCode(SECRET, 'signup', 'a@example.com', '12345679')).not.toBe(base);
    // Not a plain digest that anyone holding the row could brute-force over 10^8 codes.
    expect(base).not.toBe(
      createHash('sha256').update('signup:a@example.com:12345678').digest('hex'),
    );
  });
});

describe('issueVerification', () => {
  it('stores only hashes: neither the token nor the code is in the row', async () => {
    const target = uniqueTarget();
    const { token, code } = await issue(target);
    const rows = await rowsFor(target);
    expect(rows).toHaveLength(1);
    const row = rows[0];
    if (!row) throw new Error('no row');
    const dump = JSON.stringify(row);
    expect(dump).not.toContain(token);
    expect(dump).not.toContain(code);
    expect(row.token_hash).toBe(hashToken('signup', token));
    expect(row.code_hash).toBe(hashCode(SECRET, 'signup', target, code));
    expect(row.purpose).toBe('signup');
    expect(row.used_at).toBeNull();
    expect(Number(row.code_attempts)).toBe(0);
    expect(Number(row.expires_at)).toBe(NOW + LINK_TTL * 1000);
    expect(Number(row.code_expires_at)).toBe(NOW + CODE_TTL * 1000);
  });

  it('replaces the earlier link and code for the same purpose and target', async () => {
    const target = uniqueTarget();
    const first = await issue(target);
    const second = await issue(target, { now: NOW + 1000 });
    expect(second.token).not.toBe(first.token);
    expect(await rowsFor(target)).toHaveLength(1);

    expect((await findByToken(rt.db.kysely, 'signup', first.token, NOW + 2000)).status).toBe(
      'invalid',
    );
    expect((await findByToken(rt.db.kysely, 'signup', second.token, NOW + 2000)).status).toBe(
      'valid',
    );
    if (first.code !== second.code) {
      expect((await check(target, first.code, { now: NOW + 2000 })).status).toBe('invalid');
    }
    expect((await check(target, second.code, { now: NOW + 2000 })).status).toBe('valid');
  });

  it('resets the used mark and the attempt counter when reissued', async () => {
    const target = uniqueTarget();
    const first = await issue(target);
    await check(target, wrongCode(first.code));
    const found = await findByToken(rt.db.kysely, 'signup', first.token, NOW);
    if (found.status !== 'valid') throw new Error(`expected valid, got ${found.status}`);
    expect(await markUsed(rt.db.kysely, found.verification.id, NOW)).toBe(true);

    const second = await issue(target, { now: NOW + 1000 });
    const [row] = await rowsFor(target);
    expect(row?.used_at).toBeNull();
    expect(Number(row?.code_attempts)).toBe(0);
    expect((await findByToken(rt.db.kysely, 'signup', second.token, NOW + 1000)).status).toBe(
      'valid',
    );
  });

  it('keeps secrets for other purposes and other targets', async () => {
    const a = uniqueTarget();
    const b = uniqueTarget();
    const signupA = await issue(a);
    const signupB = await issue(b);
    const resetA = await issue(a, { purpose: 'reset' });
    expect((await findByToken(rt.db.kysely, 'signup', signupA.token, NOW)).status).toBe('valid');
    expect((await findByToken(rt.db.kysely, 'signup', signupB.token, NOW)).status).toBe('valid');
    expect((await findByToken(rt.db.kysely, 'reset', resetA.token, NOW)).status).toBe('valid');
  });
});

describe('findByToken', () => {
  it('answers valid, then used after markUsed, and markUsed succeeds once only', async () => {
    const target = uniqueTarget();
    const { token } = await issue(target);
    const found = await findByToken(rt.db.kysely, 'signup', token, NOW);
    expect(found.status).toBe('valid');
    if (found.status !== 'valid') return;
    expect(found.verification.target).toBe(target);
    // Looking a token up does not consume it.
    expect((await findByToken(rt.db.kysely, 'signup', token, NOW)).status).toBe('valid');

    expect(await markUsed(rt.db.kysely, found.verification.id, NOW + 1)).toBe(true);
    expect(await markUsed(rt.db.kysely, found.verification.id, NOW + 2)).toBe(false);
    const used = await findByToken(rt.db.kysely, 'signup', token, NOW + 3);
    expect(used.status).toBe('used');
  });

  it('answers expired from the moment the link lifetime has passed', async () => {
    const target = uniqueTarget();
    const { token } = await issue(target);
    const expiry = NOW + LINK_TTL * 1000;
    expect((await findByToken(rt.db.kysely, 'signup', token, expiry - 1)).status).toBe('valid');
    expect((await findByToken(rt.db.kysely, 'signup', token, expiry)).status).toBe('expired');
    expect((await findByToken(rt.db.kysely, 'signup', token, expiry + 86_400_000)).status).toBe(
      'expired',
    );
  });

  it('answers invalid for unknown, malformed, or other-purpose tokens', async () => {
    const target = uniqueTarget();
    const { token } = await issue(target);
    expect((await findByToken(rt.db.kysely, 'signup', newToken(cryptoRandom), NOW)).status).toBe(
      'invalid',
    );
    expect((await findByToken(rt.db.kysely, 'signup', 'short', NOW)).status).toBe('invalid');
    expect((await findByToken(rt.db.kysely, 'signup', `${token}x`, NOW)).status).toBe('invalid');
    expect((await findByToken(rt.db.kysely, 'signup', "' OR 1=1 --", NOW)).status).toBe('invalid');
    expect((await findByToken(rt.db.kysely, 'reset', token, NOW)).status).toBe('invalid');
    expect((await findByToken(rt.db.kysely, 'contact', token, NOW)).status).toBe('invalid');
  });
});

describe('consumeToken', () => {
  it('spends a live token exactly once', async () => {
    const target = uniqueTarget();
    const { token } = await issue(target);
    const spent = await consumeToken(rt.db.kysely, 'signup', token, NOW + 5);
    expect(spent).toMatchObject({ target, user_id: null });
    expect(await consumeToken(rt.db.kysely, 'signup', token, NOW + 6)).toBeNull();
    const [row] = await rowsFor(target);
    expect(Number(row?.used_at)).toBe(NOW + 5);
    expect((await findByToken(rt.db.kysely, 'signup', token, NOW + 7)).status).toBe('used');
  });

  it('spends nothing that is expired, replaced, malformed or for another purpose', async () => {
    const target = uniqueTarget();
    const { token } = await issue(target);
    expect(await consumeToken(rt.db.kysely, 'signup', token, NOW + LINK_TTL * 1000)).toBeNull();
    expect(await consumeToken(rt.db.kysely, 'reset', token, NOW)).toBeNull();
    expect(await consumeToken(rt.db.kysely, 'signup', 'short', NOW)).toBeNull();
    const { token: newer } = await issue(target, { now: NOW + 1 });
    expect(await consumeToken(rt.db.kysely, 'signup', token, NOW + 2)).toBeNull();
    const [row] = await rowsFor(target);
    expect(row?.used_at).toBeNull();
    expect(await consumeToken(rt.db.kysely, 'signup', newer, NOW + 2)).not.toBeNull();
  });

  it('lets only one of many concurrent spends win', async () => {
    const target = uniqueTarget();
    const { token } = await issue(target);
    const results = await Promise.all(
      Array.from({ length: 10 }, () => consumeToken(rt.db.kysely, 'signup', token, NOW)),
    );
    expect(results.filter((r) => r !== null)).toHaveLength(1);
  });
});

describe('checkCode', () => {
  let target: string;
  let code: string;
  beforeEach(async () => {
    target = uniqueTarget();
    ({ code } = await issue(target));
  });

  it('accepts the right code, also typed with a space or hyphen', async () => {
    expect((await check(target, code)).status).toBe('valid');
    expect((await check(target, `${code.slice(0, 4)} ${code.slice(4)}`)).status).toBe('valid');
    expect((await check(target, `${code.slice(0, 4)}-${code.slice(4)}`)).status).toBe('valid');
    const [row] = await rowsFor(target);
    expect(Number(row?.code_attempts)).toBe(0);
  });

  it('refuses a code checked with another secret key', async () => {
    expect((await check(target, code, { secretKey: 'some-other-secret-key' })).status).toBe(
      'invalid',
    );
  });

  it('refuses the code for another target', async () => {
    const other = uniqueTarget();
    const otherCode = code === '22222222' ? 33_333_333 : 22_222_222;
    await issue(other, {
      random: { bytes: (size) => cryptoRandom.bytes(size), int: () => otherCode },
    });
    expect((await check(other, String(otherCode))).status).toBe('valid');
    expect((await check(other, code)).status).toBe('invalid');
    expect((await check(uniqueTarget(), code)).status).toBe('invalid');
  });

  it('counts wrong attempts and dies after 5, even for the right code', async () => {
    const wrong = wrongCode(code);
    for (let attempt = 1; attempt <= 4; attempt += 1) {
      expect((await check(target, wrong)).status).toBe('invalid');
      const [row] = await rowsFor(target);
      expect(Number(row?.code_attempts)).toBe(attempt);
    }
    // The fifth wrong code uses the last attempt; wrong codes still answer "invalid", as for a
    // target with no secret, and only the right code is told that the attempts ran out.
    expect((await check(target, wrong)).status).toBe('invalid');
    expect((await check(target, code)).status).toBe('too_many_attempts');
    expect((await check(target, wrong)).status).toBe('invalid');
    expect((await check('nobody-has-this@example.com', wrong)).status).toBe('invalid');
    const [row] = await rowsFor(target);
    expect(Number(row?.code_attempts)).toBe(5);
  });

  it('still accepts the right code after 4 wrong ones', async () => {
    const wrong = wrongCode(code);
    for (let attempt = 1; attempt <= 4; attempt += 1) await check(target, wrong);
    expect((await check(target, code)).status).toBe('valid');
  });

  it('expires the code after its own lifetime, before the link', async () => {
    const codeExpiry = NOW + CODE_TTL * 1000;
    expect((await check(target, code, { now: codeExpiry - 1 })).status).toBe('valid');
    expect((await check(target, code, { now: codeExpiry })).status).toBe('expired');
    // A wrong code for an expired secret is only "invalid": no telling that the secret exists.
    expect((await check(target, wrongCode(code), { now: codeExpiry })).status).toBe('invalid');
    const [row] = await rowsFor(target);
    expect(Number(row?.code_attempts)).toBe(0);
  });

  it('says used only to someone who knows the code', async () => {
    const found = await check(target, code);
    if (found.status !== 'valid') throw new Error('expected valid');
    expect(await markUsed(rt.db.kysely, found.verification.id, NOW)).toBe(true);
    expect((await check(target, code)).status).toBe('used');
    expect((await check(target, wrongCode(code))).status).toBe('invalid');
  });
});
