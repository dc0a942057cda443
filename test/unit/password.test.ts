// §2 Passwords per NIST SP 800-63B-4, hashed with argon2id at OWASP's minimum.
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import {
  checkNewPassword,
  hashPassword,
  hashPool,
  verifyAgainstDummy,
  verifyPassword,
} from '../../src/accounts/password.ts';
import { loadConfig } from '../../src/config.ts';

const defaultMinLength = loadConfig({ env: {}, dotenvPath: false }).passwordMinLength;

describe('checkNewPassword', () => {
  it('requires 15 characters by default', () => {
    expect(defaultMinLength).toBe(15);
    expect(checkNewPassword('violet tram 14', { minLength: defaultMinLength })).toMatchObject({
      code: 'password_too_short',
    });
    expect(checkNewPassword('violet tram 15c', { minLength: defaultMinLength })).toBeNull();
  });

  it('explains the rule in its message', () => {
    const problem = checkNewPassword('short', { minLength: 15 });
    expect(problem?.code).toBe('password_too_short');
    expect(problem?.message).toContain('15');
  });

  it('has a configurable minimum', () => {
    const minLength = loadConfig({
      env: { PASSWORD_MIN_LENGTH: '8' },
      dotenvPath: false,
    }).passwordMinLength;
    expect(minLength).toBe(8);
    expect(checkNewPassword('tram7zq', { minLength })).toMatchObject({
      code: 'password_too_short',
    });
    expect(checkNewPassword('tram7zqx', { minLength })).toBeNull();
    expect(checkNewPassword('a'.repeat(19), { minLength: 20 })?.code).toBe('password_too_short');
  });

  it('counts characters, not UTF-16 units', () => {
    // 14 emoji are 28 UTF-16 units but only 14 characters.
    expect(checkNewPassword('🐢🦊🐙🦉🐝🐞🦀🐬🦋🐌🦔🐿🦝🦦', { minLength: 15 })?.code).toBe(
      'password_too_short',
    );
    expect(checkNewPassword('🐢🦊🐙🦉🐝🐞🦀🐬🦋🐌🦔🐿🦝🦦🦥', { minLength: 15 })).toBeNull();
  });

  it('allows at least 64 characters, with no composition rules', () => {
    const sixtyFour = 'plum kite rover '.repeat(4);
    expect(sixtyFour).toHaveLength(64);
    expect(checkNewPassword(sixtyFour, { minLength: 15 })).toBeNull();
    expect(
      checkNewPassword('the quick brown fox jumps over the lazy dog '.repeat(4), { minLength: 15 }),
    ).toBeNull();
    const longest = 'plum kite rover '.repeat(16);
    expect(longest).toHaveLength(256);
    expect(checkNewPassword(longest, { minLength: 15 })).toBeNull();
    expect(checkNewPassword(`${longest}z`, { minLength: 15 })?.code).toBe('password_too_long');
    // Only lower-case letters and spaces: no digit, capital or symbol required.
    expect(checkNewPassword('correct horse battery staple', { minLength: 15 })).toBeNull();
  });

  it('refuses common passwords, whatever their case', () => {
    expect(checkNewPassword('passwordpassword', { minLength: 15 })).toMatchObject({
      code: 'password_common',
    });
    expect(checkNewPassword('PasswordPassword', { minLength: 15 })?.code).toBe('password_common');
    expect(checkNewPassword('1qaz2wsx3edc4rfv', { minLength: 15 })?.code).toBe('password_common');
    expect(checkNewPassword('password1', { minLength: 8 })?.code).toBe('password_common');
    expect(checkNewPassword('iloveyou', { minLength: 8 })?.code).toBe('password_common');
  });

  it('refuses a common password padded out with digits and punctuation', () => {
    for (const password of [
      'password1234567',
      'Dragon!!!!!!!!!',
      '2024iloveyou2024',
      'monkey.12345678',
    ]) {
      expect(checkNewPassword(password, { minLength: 15 })?.code, password).toBe('password_common');
    }
    // Letters that make no listed word, or a listed word inside a longer phrase, are fine.
    expect(checkNewPassword('tram 7 violet 42 kite', { minLength: 15 })).toBeNull();
    expect(checkNewPassword('dragon fruit salad 2024', { minLength: 15 })).toBeNull();
  });

  it('refuses a short run repeated', () => {
    const repeated = [
      'aaaaaaaaaaaaaaa',
      ' '.repeat(15),
      '111111111111111',
      '121212121212121',
      'abcabcabcabcabca',
      'Zq7!Zq7!Zq7!Zq7!',
      'hellohellohello',
    ];
    for (const password of repeated) {
      expect(checkNewPassword(password, { minLength: 15 })?.code, password).toBe('password_common');
    }
    // A run of eight characters or more, repeated, is as strong as the run.
    expect(checkNewPassword('Zq7!kite Zq7!kite', { minLength: 15 })).toBeNull();
    expect(checkNewPassword('plum kite rover plum kite rover', { minLength: 15 })).toBeNull();
  });

  it('refuses a sequence of the alphabet, the digits or the keyboard, either way', () => {
    const sequences = [
      '123456789012345',
      '987654321098765',
      'abcdefghijklmnop',
      'ponmlkjihgfedcba',
      'qwertyuiopasdfgh',
      '1234567890qwerty',
      '1qaz2wsx3edc4rfv5tgb',
    ];
    for (const password of sequences) {
      expect(checkNewPassword(password, { minLength: 15 })?.code, password).toBe('password_common');
    }
    expect(checkNewPassword('13579246801357924', { minLength: 15 })).toBeNull();
    expect(checkNewPassword('abcdefghijklmnoz', { minLength: 15 })).toBeNull();
  });

  it('refuses the email address as the password', () => {
    expect(
      checkNewPassword('Someone.Long@example.com', {
        minLength: 15,
        email: 'someone.long@example.com',
      })?.code,
    ).toBe('password_common');
  });

  it('normalises with NFKC before counting and comparing', () => {
    // Fullwidth letters are compatibility characters for plain ASCII.
    expect(checkNewPassword('ｐａｓｓｗｏｒｄｐａｓｓｗｏｒｄ', { minLength: 15 })?.code).toBe(
      'password_common',
    );
  });
});

describe('hashPassword and verifyPassword', () => {
  it('uses argon2id at OWASP minimum parameters with a random salt', async () => {
    const password = 'correct horse battery staple';
    const first = await hashPassword(password);
    const second = await hashPassword(password);
    expect(first.startsWith('$argon2id$v=19$m=19456,t=2,p=1$')).toBe(true);
    expect(first).not.toBe(second);
    expect(first).not.toContain(password);
    expect(await verifyPassword(first, password)).toBe(true);
    expect(await verifyPassword(second, password)).toBe(true);
    expect(await verifyPassword(first, 'correct horse battery stapler')).toBe(false);
  });

  it('accepts a password typed with compatibility characters against its NFKC form', async () => {
    const plain = 'fine fish café 2026';
    const typed = 'ﬁne ﬁsh cafe\u0301 ２０２６'; // ligature "fi", decomposed é, fullwidth digits
    expect(typed).not.toBe(plain);
    expect(typed.normalize('NFKC')).toBe(plain);
    expect(await verifyPassword(await hashPassword(plain), typed)).toBe(true);
    expect(await verifyPassword(await hashPassword(typed), plain)).toBe(true);
  });

  it('never truncates: 100-character passwords differing only in the last character', async () => {
    const stem = 'long passphrase '.repeat(7).slice(0, 99);
    const a = `${stem}A`;
    const b = `${stem}B`;
    expect(a).toHaveLength(100);
    const hashA = await hashPassword(a);
    expect(await verifyPassword(hashA, a)).toBe(true);
    expect(await verifyPassword(hashA, b)).toBe(false);
    expect(await verifyPassword(await hashPassword(b), a)).toBe(false);
  });

  it('answers false, without throwing, for a damaged hash', async () => {
    expect(await verifyPassword('not-a-hash', 'anything at all here')).toBe(false);
    expect(await verifyPassword('', 'anything at all here')).toBe(false);
  });

  it('verifies against the dummy hash as false', async () => {
    expect(await verifyAgainstDummy('mailproof-dummy-password-for-timing')).toBe(false);
  });

  it('hashes off the event loop', async () => {
    let ticks = 0;
    const timer = setInterval(() => {
      ticks += 1;
    }, 1);
    try {
      await hashPassword('correct horse battery staple');
    } finally {
      clearInterval(timer);
    }
    // A synchronous hash would hold the loop until it finished, and no timer could fire.
    expect(ticks).toBeGreaterThan(0);
  });

  it('runs at most one hash or check per core at a time; the others wait their turn', async () => {
    const cores = Math.max(1, availableParallelism());
    expect(hashPool.size).toBe(cores);
    const stored = await hashPassword('correct horse battery staple');
    const work = [
      ...Array.from({ length: 2 * cores + 1 }, (_, i) => hashPassword(`password number ${i}`)),
      verifyPassword(stored, 'correct horse battery staple'),
      verifyPassword(stored, 'wrong horse battery staple'),
    ];
    // One thread per core, each holding the job it hashes and the next; the rest wait in the
    // main thread. A thread runs its jobs one after the other (the hash is synchronous there).
    expect(hashPool.stats()).toEqual({ threads: cores, inThreads: 2 * cores, queued: 3 });
    const results = await Promise.all(work);
    expect(results.slice(-2)).toEqual([true, false]);
    expect(results.slice(0, -2).every((h) => String(h).startsWith('$argon2id$'))).toBe(true);
    expect(new Set(results.slice(0, -2)).size).toBe(2 * cores + 1);
    expect(hashPool.stats()).toEqual({ threads: cores, inThreads: 0, queued: 0 });
  });

  it('answers false for a stored hash that is not an argon2 hash, and keeps working', async () => {
    expect(await verifyPassword('not a hash', 'correct horse battery staple')).toBe(false);
    const stored = await hashPassword('correct horse battery staple');
    expect(await verifyPassword(stored, 'correct horse battery staple')).toBe(true);
  });
});
