// §1 Configuration: defaults, one clear error per bad value, production refusals, .env handling.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, DEV_SECRET_KEY, loadConfig } from '../../src/config.ts';

const BIN = fileURLToPath(new URL('../../bin/mailproof.js', import.meta.url));

const PRODUCTION = {
  NODE_ENV: 'production',
  SECRET_KEY: 'k9V2xQ7mZ4pR8tY1wE6uI3oA5sD0fG2hJ4kL',
  BASE_URL: 'https://mail.example.com',
  MAIL_SERVER: 'smtp.example.com',
};

function load(env: Record<string, string>) {
  return loadConfig({ env, dotenvPath: false });
}

/** Runs `load` expecting a ConfigError; returns it so the message can be checked. */
function configError(env: Record<string, string>): ConfigError {
  try {
    load(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'mailproof-config-'));
  tempDirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('loadConfig defaults', () => {
  it('needs no configuration in development', () => {
    const config = load({});
    expect(config.env).toBe('development');
    expect(config.isProduction).toBe(false);
    expect(config.port).toBe(3000);
    expect(config.host).toBe('127.0.0.1');
    expect(config.baseUrl).toBe('http://localhost:3000');
    expect(config.dataDir).toBe(path.resolve('./data'));
    expect(config.databaseUrl).toBe(`sqlite:${path.join(path.resolve('./data'), 'mailproof.db')}`);
    expect(config.secretKey).toBe(DEV_SECRET_KEY);
    expect(config.mail).toMatchObject({
      server: null,
      port: 587,
      useTls: false,
      useSsl: false,
      username: null,
      password: null,
      defaultSender: 'Mailproof <no-reply@localhost>',
    });
    expect(config.inbox.enabled).toBe(true);
    expect(config.inbox.smtpPort).toBe(2525);
    expect(config.passwordMinLength).toBe(15);
    expect(config.passwordHashThreads).toBe(availableParallelism());
    expect(config.requireVerifiedLogin).toBe(false);
    expect(config.requireTwoStep).toBe(false);
    expect(config.ttl).toEqual({
      signupLinkSeconds: 3600,
      codeSeconds: 600,
      sessionSeconds: 30 * 86400,
      sessionMaxAgeSeconds: 30 * 86400,
      resetLinkSeconds: 30 * 60,
      emailChangeLinkSeconds: 3600,
    });
    expect(config.rateLimits.forgotPerAddress).toEqual({ points: 3, durationSeconds: 3600 });
    expect(config.rateLimits.accountPerUser).toEqual({ points: 10, durationSeconds: 900 });
    expect(config.codeMaxAttempts).toBe(5);
    expect(config.rateLimits.enabled).toBe(true);
    expect(config.rateLimits.resendPerAddress).toEqual({ points: 1, durationSeconds: 60 });
    expect(config.contact.to).toBe('owner@localhost');
    expect(config.contact.linkTtlSeconds).toBe(15 * 60);
    expect(config.adminToken).toBeNull();
  });

  it('uses port 465 by default for implicit TLS and derives BASE_URL from PORT', () => {
    const config = load({ MAIL_USE_SSL: 'true', PORT: '8080' });
    expect(config.mail.port).toBe(465);
    expect(config.mail.useSsl).toBe(true);
    expect(config.baseUrl).toBe('http://localhost:8080');
  });

  it('reads the classic Flask names and keeps BASE_URL without a trailing slash', () => {
    const config = load({
      MAIL_SERVER: 'smtp.example.com',
      MAIL_PORT: '2587',
      MAIL_USE_TLS: 'yes',
      MAIL_USERNAME: 'user',
      MAIL_PASSWORD: 'pass',
      MAIL_DEFAULT_SENDER: 'Site <hello@example.com>',
      BASE_URL: 'https://example.com/app/',
      PASSWORD_MIN_LENGTH: '8',
      RATE_LIMITS: 'off',
      REQUIRE_VERIFIED_LOGIN: 'true',
      REQUIRE_TWO_STEP: 'yes',
    });
    expect(config.mail).toMatchObject({
      server: 'smtp.example.com',
      port: 2587,
      useTls: true,
      useSsl: false,
      username: 'user',
      password: 'pass',
      defaultSender: 'Site <hello@example.com>',
    });
    expect(config.baseUrl).toBe('https://example.com/app');
    expect(config.passwordMinLength).toBe(8);
    expect(config.rateLimits.enabled).toBe(false);
    expect(config.requireVerifiedLogin).toBe(true);
    expect(config.requireTwoStep).toBe(true);
  });

  it('reads PASSWORD_HASH_THREADS', () => {
    expect(load({ PASSWORD_HASH_THREADS: '1' }).passwordHashThreads).toBe(1);
    expect(load({ PASSWORD_HASH_THREADS: '12' }).passwordHashThreads).toBe(12);
  });

  it('never lets a code live longer than 10 minutes: a longer CODE_TTL stops start-up', () => {
    expect(load({ CODE_TTL: '10m' }).ttl.codeSeconds).toBe(600);
    expect(load({ CODE_TTL: '5m' }).ttl.codeSeconds).toBe(300);
    expect(configError({ CODE_TTL: '1h' }).message).toBe(
      'CODE_TTL must be at most 10m (an 8-digit code is safe to leave open only for a short time), got "1h"',
    );
    expect(configError({ CODE_TTL: '601' }).message).toContain('CODE_TTL must be at most 10m');
  });

  it("reads LOG_LEVEL as one of pino's levels", () => {
    expect(load({ LOG_LEVEL: 'debug' }).logLevel).toBe('debug');
    expect(load({ LOG_LEVEL: 'silent' }).logLevel).toBe('silent');
    expect(configError({ LOG_LEVEL: 'garbage' }).message).toBe(
      'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "garbage"',
    );
  });
});

describe('loadConfig refuses bad values with a message naming the variable', () => {
  const cases: Array<[string, string]> = [
    ['MAIL_PORT', 'abc'],
    ['MAIL_PORT', '70000'],
    ['MAIL_USE_TLS', 'maybe'],
    ['MAIL_USE_SSL', 'sometimes'],
    ['REQUIRE_TWO_STEP', 'mandatory'],
    ['BASE_URL', 'notaurl'],
    ['BASE_URL', 'ftp://example.com'],
    ['DATABASE_URL', 'ftp://x'],
    ['PASSWORD_MIN_LENGTH', '4'],
    ['PASSWORD_MIN_LENGTH', '7'],
    ['PASSWORD_MIN_LENGTH', 'ten'],
    ['PASSWORD_HASH_THREADS', '0'],
    ['PASSWORD_HASH_THREADS', 'all'],
    ['PASSWORD_HASH_THREADS', '257'],
    ['RATE_LIMIT_RESEND_ADDRESS', 'abc'],
    ['RATE_LIMIT_RESEND_ADDRESS', '0/1m'],
    ['RATE_LIMITS', 'sometimes'],
    ['SIGNUP_LINK_TTL', 'forever'],
    ['CODE_TTL', '2h'],
    ['LOG_LEVEL', 'verbose'],
    ['NODE_ENV', 'staging'],
    ['PORT', '-1'],
  ];
  for (const [name, value] of cases) {
    it(`${name}=${value}`, () => {
      const error = configError({ [name]: value });
      expect(error.name).toBe('ConfigError');
      expect(error.message).toContain(name);
      expect(error.message).not.toContain('\n');
    });
  }

  it('does not echo a DATABASE_URL that may hold a password', () => {
    const error = configError({ DATABASE_URL: 'ftp://admin:hunter2secret@db.example.com/x' });
    expect(error.message).toContain('DATABASE_URL');
    expect(error.message).not.toContain('hunter2secret');
    const unparsable = configError({
      DATABASE_URL: 'postgres://admin:hunter2secret@127.0.0.1:notaport/x',
    });
    expect(unparsable.message).toMatch(/^DATABASE_URL is not a valid URL/);
    expect(unparsable.message).not.toContain('hunter2secret');
  });

  it('accepts the supported DATABASE_URL schemes', () => {
    expect(load({ DATABASE_URL: 'sqlite:/tmp/x.db' }).databaseUrl).toBe('sqlite:/tmp/x.db');
    expect(load({ DATABASE_URL: 'postgres://u@h/db' }).databaseUrl).toBe('postgres://u@h/db');
    expect(load({ DATABASE_URL: 'postgresql://u@h/db' }).databaseUrl).toBe('postgresql://u@h/db');
    expect(load({ DATABASE_URL: 'mysql://u:p@h:3306/db' }).databaseUrl).toBe(
      'mysql://u:p@h:3306/db',
    );
    expect(load({ DATABASE_URL: 'mariadb://u@h/db' }).databaseUrl).toBe('mariadb://u@h/db');
  });

  it('refuses MAIL_USE_TLS and MAIL_USE_SSL both true, in any environment', () => {
    const error = configError({ MAIL_USE_TLS: 'true', MAIL_USE_SSL: 'true' });
    expect(error.message).toContain('MAIL_USE_TLS');
    expect(error.message).toContain('MAIL_USE_SSL');
  });
});

describe('loadConfig in production', () => {
  it('accepts a complete production configuration', () => {
    const config = load(PRODUCTION);
    expect(config.isProduction).toBe(true);
    expect(config.baseUrl).toBe('https://mail.example.com');
    expect(config.inbox.enabled).toBe(false);
    expect(config.secretKey).toBe(PRODUCTION.SECRET_KEY);
  });

  it('refuses a missing SECRET_KEY (the development default)', () => {
    const { SECRET_KEY: _omit, ...env } = PRODUCTION;
    expect(configError(env).message).toContain('SECRET_KEY');
  });

  it('refuses the development SECRET_KEY set explicitly', () => {
    expect(configError({ ...PRODUCTION, SECRET_KEY: DEV_SECRET_KEY }).message).toContain(
      'SECRET_KEY',
    );
  });

  it('refuses a short SECRET_KEY without printing it', () => {
    const error = configError({ ...PRODUCTION, SECRET_KEY: 'tooShortSecret123' });
    expect(error.message).toContain('SECRET_KEY');
    expect(error.message).not.toContain('tooShortSecret123');
  });

  it('refuses a missing BASE_URL', () => {
    const { BASE_URL: _omit, ...env } = PRODUCTION;
    expect(configError(env).message).toContain('BASE_URL');
  });

  it('refuses a missing MAIL_SERVER', () => {
    const { MAIL_SERVER: _omit, ...env } = PRODUCTION;
    expect(configError(env).message).toContain('MAIL_SERVER');
  });

  it('treats a blank value as missing', () => {
    expect(configError({ ...PRODUCTION, MAIL_SERVER: '   ' }).message).toContain('MAIL_SERVER');
  });

  it('refuses MAIL_USE_TLS and MAIL_USE_SSL both true', () => {
    const error = configError({ ...PRODUCTION, MAIL_USE_TLS: 'true', MAIL_USE_SSL: 'true' });
    expect(error.message).toContain('MAIL_USE_TLS');
    expect(error.message).toContain('MAIL_USE_SSL');
  });
});

describe('.env file', () => {
  it('is read, and the environment wins over it', () => {
    const dir = tempDir();
    const file = path.join(dir, '.env');
    writeFileSync(
      file,
      [
        '# a comment',
        'APP_NAME=From the file',
        'MAIL_PORT=2526',
        'PORT=4000',
        'MAIL_USE_TLS=true',
      ].join('\n'),
    );
    const config = loadConfig({ env: { PORT: '5000', MAIL_USE_TLS: 'false' }, dotenvPath: file });
    expect(config.appName).toBe('From the file');
    expect(config.mail.port).toBe(2526);
    expect(config.port).toBe(5000);
    expect(config.mail.useTls).toBe(false);
  });

  it('validates values that come from the file', () => {
    const dir = tempDir();
    const file = path.join(dir, '.env');
    writeFileSync(file, 'MAIL_PORT=abc\n');
    expect(() => loadConfig({ env: {}, dotenvPath: file })).toThrow(/MAIL_PORT/);
    expect(() => loadConfig({ env: {}, dotenvPath: file })).toThrow(ConfigError);
  });

  it('is not needed when absent', () => {
    const dir = tempDir();
    const config = loadConfig({ env: {}, dotenvPath: path.join(dir, 'missing.env') });
    expect(config.port).toBe(3000);
  });

  it('is ignored with dotenvPath: false', () => {
    const dir = tempDir();
    const file = path.join(dir, '.env');
    writeFileSync(file, 'APP_NAME=From the file\n');
    expect(loadConfig({ env: {}, dotenvPath: false }).appName).toBe('Mailproof');
  });
});

describe('the CLI with a bad setting', () => {
  it('exits 1 with one line naming the variable and no stack trace', () => {
    const cwd = tempDir();
    const dataDir = tempDir();
    const result = spawnSync(process.execPath, [BIN, 'migrate'], {
      cwd,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? cwd,
        MAIL_PORT: 'abc',
        DATA_DIR: dataDir,
      },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(result.error).toBeUndefined();
    expect(result.status).toBe(1);
    const lines = result.stderr.split('\n').filter((line) => line.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('MAIL_PORT');
    expect(lines[0]).not.toMatch(/\bat\s.+:\d+/);
    expect(result.stderr).not.toMatch(/^\s+at /m);
    expect(result.stdout).toBe('');
  });

  it('reads .env from the working directory when run as a command', () => {
    const cwd = tempDir();
    const dataDir = tempDir();
    writeFileSync(path.join(cwd, '.env'), 'RATE_LIMIT_RESEND_ADDRESS=abc\n');
    const result = spawnSync(process.execPath, [BIN, 'migrate'], {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? cwd, DATA_DIR: dataDir },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(result.status).toBe(1);
    const lines = result.stderr.split('\n').filter((line) => line.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('RATE_LIMIT_RESEND_ADDRESS');
  });
});
