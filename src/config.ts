// The only module that reads the process environment. Everything else receives a Config.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';

export const DEV_SECRET_KEY = 'mailproof-development-secret-do-not-use-in-production';
const MIN_PRODUCTION_SECRET_LENGTH = 32;

export interface RateLimitRule {
  points: number;
  durationSeconds: number;
}

export interface Config {
  env: 'development' | 'production' | 'test';
  isProduction: boolean;
  appName: string;
  brandColor: string;
  secretKey: string;
  baseUrl: string;
  host: string;
  port: number;
  dataDir: string;
  databaseUrl: string;
  logLevel: string;
  trustProxy: boolean;
  mail: {
    server: string | null;
    port: number;
    useTls: boolean;
    useSsl: boolean;
    username: string | null;
    password: string | null;
    defaultSender: string;
    maxAttempts: number;
    /** How long the SMTP server may go silent (greeting, any reply) before the send fails and is retried. */
    timeoutSeconds: number;
    /** PEM of a CA to trust for MAIL_SERVER's certificate besides the system's (MAIL_CA_FILE). */
    caPem: string | null;
    /** Signs every outgoing message when DKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY are set. */
    dkim: DkimConfig | null;
  };
  inbox: {
    enabled: boolean;
    /** `user:password` for HTTP basic auth on /_inbox; required when enabled in production. */
    auth: { user: string; password: string } | null;
    smtpPort: number;
    smtpHost: string;
    retainMessages: number;
    /** Messages older than this are deleted; 0 keeps them until the count limit. */
    retainSeconds: number;
    /** SpamAssassin's spamd for the spam check (SPAMD_HOST=host[:port]); null skips the check. */
    spamd: { host: string; port: number } | null;
  };
  contact: {
    /** Where accepted messages are delivered; null disables the contact form. */
    to: string | null;
    linkTtlSeconds: number;
    /** Unconfirmed messages older than this are deleted by the worker. */
    pendingRetentionSeconds: number;
    webhookUrl: string | null;
    webhookSecret: string | null;
  };
  /** Password for the owner's admin pages (HTTP basic auth); null disables them. */
  adminToken: string | null;
  passwordMinLength: number;
  /** Threads that hash and check passwords (decision 018); one per core by default. */
  passwordHashThreads: number;
  requireVerifiedLogin: boolean;
  /** REQUIRE_TWO_STEP: accounts without two-step sign-in may only set it up (decision 014). */
  requireTwoStep: boolean;
  ttl: {
    signupLinkSeconds: number;
    codeSeconds: number;
    sessionSeconds: number;
    /** Absolute session lifetime from login, however active the session is (ASVS 7.3.2). */
    sessionMaxAgeSeconds: number;
    resetLinkSeconds: number;
    emailChangeLinkSeconds: number;
  };
  codeMaxAttempts: number;
  /** Rate-limit counters in Redis instead of the database (REDIS_URL). */
  redisUrl: string | null;
  outbox: {
    /** How often an idle worker looks for due rows (PostgreSQL also wakes it by NOTIFY). */
    pollSeconds: number;
    /** How long a claimed row stays with its worker before another may take it. */
    leaseSeconds: number;
  };
  rateLimits: {
    enabled: boolean;
    signupPerClient: RateLimitRule;
    signupPerAddress: RateLimitRule;
    resendPerClient: RateLimitRule;
    resendPerAddress: RateLimitRule;
    loginPerClient: RateLimitRule;
    loginPerAddress: RateLimitRule;
    verifyPerClient: RateLimitRule;
    contactPerClient: RateLimitRule;
    contactPerAddress: RateLimitRule;
    forgotPerClient: RateLimitRule;
    forgotPerAddress: RateLimitRule;
    resetPerClient: RateLimitRule;
    accountPerUser: RateLimitRule;
    emailChangePerAddress: RateLimitRule;
    /** Wrong two-step codes (authenticator or recovery) per account, wherever they are typed. */
    twoStepPerUser: RateLimitRule;
  };
}

export interface DkimConfig {
  domain: string;
  selector: string;
  /** PEM text of the private key (read from the file when DKIM_PRIVATE_KEY is a path). */
  privateKey: string;
}

/** Raised for any invalid or missing setting; its message names the variable and is safe to print. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

export interface LoadConfigOptions {
  env?: Env;
  /** Path of a .env file to read; values already in `env` win. `false` reads none. */
  dotenvPath?: string | false;
}

export function loadConfig(options: LoadConfigOptions = {}): Config {
  const processEnv = options.env ?? process.env;
  const dotenvPath = options.dotenvPath === undefined ? path.resolve('.env') : options.dotenvPath;
  const fileEnv = dotenvPath && existsSync(dotenvPath) ? parseDotenv(readFileSync(dotenvPath)) : {};
  const env: Env = { ...fileEnv, ...processEnv };
  return buildConfig(new EnvReader(env));
}

class EnvReader {
  constructor(private readonly env: Env) {}

  raw(name: string): string | undefined {
    const value = this.env[name];
    if (value === undefined) return undefined;
    const trimmed = value.trim();
    return trimmed === '' ? undefined : trimmed;
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  optional(name: string): string | null {
    return this.raw(name) ?? null;
  }

  bool(name: string, fallback: boolean): boolean {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const lower = value.toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(lower)) return true;
    if (['0', 'false', 'no', 'off'].includes(lower)) return false;
    throw new ConfigError(`${name} must be true or false, got "${value}"`);
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got "${value}"`);
    }
    return Number(value);
  }

  port(name: string, fallback: number): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (!/^\d+$/.test(value) || Number(value) > 65535) {
      throw new ConfigError(`${name} must be a port number (0-65535), got "${value}"`);
    }
    return Number(value);
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(value)) {
      throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got "${value}"`);
    }
    return value as T;
  }

  /** Seconds; with `max`, a longer value stops start-up (the message says `why`) rather than being cut. */
  duration(name: string, fallbackSeconds: number, max?: { seconds: number; why: string }): number {
    const value = this.raw(name);
    if (value === undefined) return fallbackSeconds;
    const seconds = parseDuration(value);
    if (seconds === null || seconds <= 0) {
      throw new ConfigError(
        `${name} must be a duration such as 90s, 15m, 1h or 7d (or seconds), got "${value}"`,
      );
    }
    if (max && seconds > max.seconds) {
      throw new ConfigError(
        `${name} must be at most ${formatDuration(max.seconds)} (${max.why}), got "${value}"`,
      );
    }
    return seconds;
  }

  rateLimit(name: string, fallback: string): RateLimitRule {
    const value = this.raw(name) ?? fallback;
    const match = /^(\d+)\s*\/\s*(\S+)$/.exec(value);
    const durationSeconds = match?.[2] ? parseDuration(match[2]) : null;
    if (!match || durationSeconds === null || Number(match[1]) < 1 || durationSeconds <= 0) {
      throw new ConfigError(
        `${name} must be a limit such as 5/15m (5 per 15 minutes), got "${value}"`,
      );
    }
    return { points: Number(match[1]), durationSeconds };
  }
}

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** pino's levels, and `silent`. */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** 600 → "10m", 90 → "90s": the largest unit that divides the seconds. */
function formatDuration(seconds: number): string {
  for (const [unit, size] of Object.entries(DURATION_UNITS).reverse()) {
    if (seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}

export function parseDuration(value: string): number | null {
  const match = /^(\d+)\s*([smhd]?)$/i.exec(value.trim());
  if (!match?.[1]) return null;
  const unit = (match[2] ?? '').toLowerCase() || 's';
  return Number(match[1]) * (DURATION_UNITS[unit] ?? 1);
}

function buildConfig(read: EnvReader): Config {
  const nodeEnv = read.string('NODE_ENV', 'development');
  if (!['development', 'production', 'test'].includes(nodeEnv)) {
    throw new ConfigError(`NODE_ENV must be development, production or test, got "${nodeEnv}"`);
  }
  const env = nodeEnv as Config['env'];
  const isProduction = env === 'production';

  const port = read.port('PORT', 3000);
  const host = read.string('HOST', '127.0.0.1');
  const dataDir = path.resolve(read.string('DATA_DIR', './data'));

  const secretKey = read.optional('SECRET_KEY') ?? DEV_SECRET_KEY;
  if (isProduction && secretKey === DEV_SECRET_KEY) {
    throw new ConfigError('SECRET_KEY must be set in production (a long random value)');
  }
  if (isProduction && secretKey.length < MIN_PRODUCTION_SECRET_LENGTH) {
    throw new ConfigError(
      `SECRET_KEY must be at least ${MIN_PRODUCTION_SECRET_LENGTH} characters in production`,
    );
  }

  const baseUrl = readBaseUrl(read, isProduction, port);
  const databaseUrl = readDatabaseUrl(read, dataDir);

  const mailServer = read.optional('MAIL_SERVER');
  const useTls = read.bool('MAIL_USE_TLS', false);
  const useSsl = read.bool('MAIL_USE_SSL', false);
  if (useTls && useSsl) {
    throw new ConfigError(
      'MAIL_USE_TLS and MAIL_USE_SSL are both true; choose STARTTLS (MAIL_USE_TLS) or implicit TLS (MAIL_USE_SSL)',
    );
  }
  if (isProduction && !mailServer) {
    throw new ConfigError('MAIL_SERVER must be set in production (your SMTP provider)');
  }
  const defaultSender = read.string(
    'MAIL_DEFAULT_SENDER',
    `Mailproof <no-reply@${new URL(baseUrl).hostname}>`,
  );
  if (!/@[^@\s>]+>?$/.test(defaultSender)) {
    throw new ConfigError(
      `MAIL_DEFAULT_SENDER must be an address such as "Site <no-reply@example.com>", got "${defaultSender}"`,
    );
  }

  const passwordMinLength = read.int('PASSWORD_MIN_LENGTH', 15, 8, 64);
  const rateLimitsSetting = read.string('RATE_LIMITS', 'on').toLowerCase();
  if (!['on', 'off'].includes(rateLimitsSetting)) {
    throw new ConfigError(`RATE_LIMITS must be on or off, got "${rateLimitsSetting}"`);
  }

  return {
    env,
    isProduction,
    appName: read.string('APP_NAME', 'Mailproof'),
    brandColor: readColor(read),
    secretKey,
    baseUrl,
    host,
    port,
    dataDir,
    databaseUrl,
    logLevel: read.oneOf('LOG_LEVEL', LOG_LEVELS, env === 'test' ? 'silent' : 'info'),
    trustProxy: read.bool('TRUST_PROXY', false),
    mail: {
      server: mailServer,
      port: read.port('MAIL_PORT', useSsl ? 465 : 587),
      useTls,
      useSsl,
      username: read.optional('MAIL_USERNAME'),
      password: read.optional('MAIL_PASSWORD'),
      defaultSender,
      maxAttempts: read.int('MAIL_MAX_ATTEMPTS', 8, 1, 100),
      timeoutSeconds: read.duration('MAIL_TIMEOUT', 30),
      caPem: readMailCa(read, useTls || useSsl),
      dkim: readDkim(read, defaultSender),
    },
    inbox: {
      enabled: read.bool('INBOX_ENABLED', !isProduction),
      auth: readInboxAuth(read, isProduction),
      smtpPort: read.port('INBOX_SMTP_PORT', 2525),
      smtpHost: read.string('INBOX_SMTP_HOST', '127.0.0.1'),
      retainMessages: read.int('INBOX_RETAIN_MESSAGES', 5000, 10, 10_000_000),
      retainSeconds:
        read.optional('INBOX_RETAIN_AGE') === '0'
          ? 0
          : read.duration('INBOX_RETAIN_AGE', 7 * 86400),
      spamd: readSpamd(read),
    },
    contact: readContact(read, isProduction, baseUrl),
    adminToken: readAdminToken(read, isProduction),
    passwordMinLength,
    passwordHashThreads: read.int('PASSWORD_HASH_THREADS', availableParallelism(), 1, 256),
    requireVerifiedLogin: read.bool('REQUIRE_VERIFIED_LOGIN', false),
    requireTwoStep: read.bool('REQUIRE_TWO_STEP', false),
    ttl: {
      signupLinkSeconds: read.duration('SIGNUP_LINK_TTL', 3600),
      codeSeconds: read.duration('CODE_TTL', 600, {
        seconds: 600,
        why: 'an 8-digit code is safe to leave open only for a short time',
      }),
      sessionSeconds: read.duration('SESSION_TTL', 30 * 86400),
      sessionMaxAgeSeconds: read.duration('SESSION_MAX_AGE', 30 * 86400),
      resetLinkSeconds: read.duration('RESET_LINK_TTL', 30 * 60),
      emailChangeLinkSeconds: read.duration('EMAIL_CHANGE_LINK_TTL', 3600),
    },
    codeMaxAttempts: read.int('CODE_MAX_ATTEMPTS', 5, 1, 5),
    redisUrl: readRedisUrl(read),
    outbox: {
      pollSeconds: read.duration('OUTBOX_POLL_INTERVAL', 1),
      leaseSeconds: read.duration('OUTBOX_LEASE', 60),
    },
    rateLimits: {
      enabled: rateLimitsSetting === 'on',
      signupPerClient: read.rateLimit('RATE_LIMIT_SIGNUP_CLIENT', '30/1h'),
      signupPerAddress: read.rateLimit('RATE_LIMIT_SIGNUP_ADDRESS', '3/1h'),
      resendPerClient: read.rateLimit('RATE_LIMIT_RESEND_CLIENT', '20/1h'),
      resendPerAddress: read.rateLimit('RATE_LIMIT_RESEND_ADDRESS', '1/1m'),
      loginPerClient: read.rateLimit('RATE_LIMIT_LOGIN_CLIENT', '30/5m'),
      loginPerAddress: read.rateLimit('RATE_LIMIT_LOGIN_ADDRESS', '10/15m'),
      verifyPerClient: read.rateLimit('RATE_LIMIT_VERIFY_CLIENT', '60/5m'),
      contactPerClient: read.rateLimit('RATE_LIMIT_CONTACT_CLIENT', '10/1h'),
      contactPerAddress: read.rateLimit('RATE_LIMIT_CONTACT_ADDRESS', '3/1h'),
      forgotPerClient: read.rateLimit('RATE_LIMIT_FORGOT_CLIENT', '20/1h'),
      forgotPerAddress: read.rateLimit('RATE_LIMIT_FORGOT_ADDRESS', '3/1h'),
      resetPerClient: read.rateLimit('RATE_LIMIT_RESET_CLIENT', '20/15m'),
      accountPerUser: read.rateLimit('RATE_LIMIT_ACCOUNT_USER', '10/15m'),
      emailChangePerAddress: read.rateLimit('RATE_LIMIT_EMAIL_CHANGE_ADDRESS', '3/1h'),
      twoStepPerUser: read.rateLimit('RATE_LIMIT_TWO_STEP_USER', '5/15m'),
    },
  };
}

function readContact(read: EnvReader, isProduction: boolean, baseUrl: string): Config['contact'] {
  // In development the form works out of the box: owner mail lands in the inbox like the rest.
  const to =
    read.optional('CONTACT_TO') ?? (isProduction ? null : `owner@${new URL(baseUrl).hostname}`);
  if (to !== null && !/^[^@\s<>]+@[^@\s<>]+$/.test(to)) {
    throw new ConfigError(`CONTACT_TO must be one email address, got "${to}"`);
  }
  const webhookUrl = read.optional('CONTACT_WEBHOOK_URL');
  if (webhookUrl !== null && !/^https?:\/\/\S+$/.test(webhookUrl)) {
    throw new ConfigError('CONTACT_WEBHOOK_URL must be an http(s) URL');
  }
  const webhookSecret = read.optional('CONTACT_WEBHOOK_SECRET');
  if (webhookUrl && (!webhookSecret || webhookSecret.length < 16)) {
    throw new ConfigError(
      'CONTACT_WEBHOOK_SECRET must be set (at least 16 characters) when CONTACT_WEBHOOK_URL is set',
    );
  }
  return {
    to,
    linkTtlSeconds: read.duration('CONTACT_LINK_TTL', 15 * 60),
    pendingRetentionSeconds: read.duration('CONTACT_PENDING_RETENTION', 24 * 3600),
    webhookUrl,
    webhookSecret,
  };
}

function readMailCa(read: EnvReader, tls: boolean): string | null {
  const file = read.optional('MAIL_CA_FILE');
  if (file === null) return null;
  if (!tls) {
    throw new ConfigError(
      'MAIL_CA_FILE is set but the connection would not use TLS: set MAIL_USE_TLS (STARTTLS) or MAIL_USE_SSL',
    );
  }
  const pem = readTextFile('MAIL_CA_FILE', file);
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new ConfigError(
      `MAIL_CA_FILE must be a PEM file with a CA certificate: "${file}" is not`,
    );
  }
  return pem;
}

/** `secret`: the value may be a mistyped secret rather than a path, so the message omits it. */
function readTextFile(name: string, file: string, secret = false): string {
  try {
    return readFileSync(path.resolve(file), 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    const what = secret ? 'the file it names' : `"${file}"`;
    throw new ConfigError(`${name} cannot be read: ${what} (${code})`);
  }
}

const DKIM_VARIABLES = ['DKIM_DOMAIN', 'DKIM_SELECTOR', 'DKIM_PRIVATE_KEY'] as const;

function readDkim(read: EnvReader, defaultSender: string): DkimConfig | null {
  const set = DKIM_VARIABLES.filter((name) => read.optional(name) !== null);
  if (set.length === 0) return null;
  if (set.length < DKIM_VARIABLES.length) {
    const missing = DKIM_VARIABLES.filter((name) => !set.includes(name));
    throw new ConfigError(
      `${missing.join(' and ')} must be set too: DKIM signing needs DKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY, or none of them`,
    );
  }
  const domain = (read.optional('DKIM_DOMAIN') ?? '').toLowerCase().replace(/\.$/, '');
  if (!/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/.test(domain)) {
    throw new ConfigError(`DKIM_DOMAIN must be a domain name such as example.com, got "${domain}"`);
  }
  // DMARC counts a signature only when its domain is the From address's domain or a parent of it.
  const senderDomain = /@([^@\s>]+)>?$/.exec(defaultSender)?.[1]?.toLowerCase() ?? '';
  if (senderDomain !== domain && !senderDomain.endsWith(`.${domain}`)) {
    throw new ConfigError(
      `DKIM_DOMAIN must be the domain of MAIL_DEFAULT_SENDER (${senderDomain}) or a parent of it, got "${domain}"`,
    );
  }
  const selector = read.optional('DKIM_SELECTOR') ?? '';
  if (!/^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$/.test(selector)) {
    throw new ConfigError(
      `DKIM_SELECTOR must be a DNS label such as mail2024 (letters, digits, ".", "-", "_"), got "${selector}"`,
    );
  }
  return { domain, selector, privateKey: readDkimKey(read.optional('DKIM_PRIVATE_KEY') ?? '') };
}

/** DKIM_PRIVATE_KEY holds the PEM itself (newlines may be written as \n) or a path to a PEM file. */
function readDkimKey(value: string): string {
  const pem = value.startsWith('-----BEGIN')
    ? value.replace(/\\n/g, '\n')
    : readTextFile('DKIM_PRIVATE_KEY', value, true);
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    // The message never quotes the value: it is a secret.
    throw new ConfigError('DKIM_PRIVATE_KEY is not a PEM private key');
  }
  // nodemailer signs with rsa-sha256 only; below 1024 bits receivers ignore the signature.
  if (key.asymmetricKeyType !== 'rsa' || (key.asymmetricKeyDetails?.modulusLength ?? 0) < 1024) {
    throw new ConfigError('DKIM_PRIVATE_KEY must be an RSA private key of at least 1024 bits');
  }
  return pem;
}

function readRedisUrl(read: EnvReader): string | null {
  const value = read.optional('REDIS_URL');
  if (value === null) return null;
  if (!/^rediss?:\/\/[^\s]+$/.test(value)) {
    throw new ConfigError('REDIS_URL must be redis://host:port (or rediss:// for TLS)');
  }
  return value;
}

function readSpamd(read: EnvReader): Config['inbox']['spamd'] {
  const value = read.optional('SPAMD_HOST');
  if (!value) return null;
  const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(value);
  const port = match?.[2] ? Number(match[2]) : 783;
  if (!match?.[1] || port < 1 || port > 65535) {
    throw new ConfigError(
      `SPAMD_HOST must be host or host:port (spamd's port is 783), got "${value}"`,
    );
  }
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
}

function readInboxAuth(read: EnvReader, isProduction: boolean): Config['inbox']['auth'] {
  const value = read.optional('INBOX_AUTH');
  if (value === null) {
    if (isProduction && read.bool('INBOX_ENABLED', false)) {
      throw new ConfigError(
        'INBOX_AUTH must be set (user:password) when INBOX_ENABLED is true in production',
      );
    }
    return null;
  }
  const colon = value.indexOf(':');
  const user = value.slice(0, colon);
  const password = value.slice(colon + 1);
  if (colon < 1 || password.length < (isProduction ? 16 : 1)) {
    throw new ConfigError(
      `INBOX_AUTH must be user:password${isProduction ? ' with a password of at least 16 characters' : ''}`,
    );
  }
  return { user, password };
}

function readAdminToken(read: EnvReader, isProduction: boolean): string | null {
  const token = read.optional('ADMIN_TOKEN');
  if (token !== null && isProduction && token.length < 16) {
    throw new ConfigError('ADMIN_TOKEN must be at least 16 characters in production');
  }
  return token;
}

function readColor(read: EnvReader): string {
  const value = read.string('BRAND_COLOR', '#2f5bd3');
  if (!/^#[0-9a-fA-F]{6}$/.test(value)) {
    throw new ConfigError(`BRAND_COLOR must be a colour such as #2f5bd3, got "${value}"`);
  }
  return value;
}

function readBaseUrl(read: EnvReader, isProduction: boolean, port: number): string {
  const value = read.optional('BASE_URL');
  if (!value) {
    if (isProduction) {
      throw new ConfigError(
        'BASE_URL must be set in production (the public origin, e.g. https://example.com)',
      );
    }
    return `http://localhost:${port}`;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`BASE_URL must be an absolute http(s) URL, got "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`BASE_URL must be an absolute http(s) URL, got "${value}"`);
  }
  return url.origin + url.pathname.replace(/\/+$/, '');
}

function readDatabaseUrl(read: EnvReader, dataDir: string): string {
  const value = read.optional('DATABASE_URL');
  if (!value) return `sqlite:${path.join(dataDir, 'mailproof.db')}`;
  if (/^sqlite:/.test(value)) return value;
  if (/^(postgres(ql)?|mysql|mariadb):\/\//.test(value)) {
    if (URL.canParse(value)) return value;
    throw new ConfigError(
      'DATABASE_URL is not a valid URL: check its host, port and the escaping of its password (the value is not shown because it may hold a password)',
    );
  }
  throw new ConfigError(
    'DATABASE_URL must start with sqlite:, postgres://, postgresql://, mysql:// or mariadb:// (the value is not shown because it may hold a password)',
  );
}

/** Settings that must never reach a log line, an error or a page. */
export function secretValues(config: Config): string[] {
  return [
    config.secretKey,
    config.mail.password,
    config.mail.dkim?.privateKey ?? null,
    config.adminToken,
    config.contact.webhookSecret,
    config.inbox.auth?.password ?? null,
  ].filter((v): v is string => Boolean(v));
}
