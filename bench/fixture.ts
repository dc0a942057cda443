// The confirm fixtures: unverified accounts with a live sign-up token each, or pending contact
// messages with a live contact token each, issued by the domain code (issueVerification) and
// written in large transactions to the same SQLite file the server uses.
import { createWriteStream, readFileSync } from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { sql, type Transaction } from 'kysely';
import { cryptoRandom, newId } from '../src/clock.ts';
import { type Config, loadConfig } from '../src/config.ts';
import { type Db, migrateToLatest, openDatabase } from '../src/db/index.ts';
import type { Database } from '../src/db/schema.ts';
import { hashToken, issueVerification } from '../src/tokens/tokens.ts';

const TRANSACTION_SIZE = 5000;
const INSERT_ROWS = 500;

export interface FixtureBatch {
  /** Every account's (or contact message's) address starts with this, so the batch can be counted afterwards. */
  emailPrefix: string;
  tokenFile: string;
  count: number;
  seconds: number;
}

/**
 * For the SQLite experiments: a migrated database file in `dir` with `count` confirm accounts,
 * closed and checkpointed into the file, and the stored hashes of their sign-up tokens.
 */
export async function confirmFixtureFile(
  dir: string,
  count: number,
): Promise<{ file: string; tokenHashes: string[] }> {
  const file = path.join(dir, 'fixture.db');
  const url = `sqlite:${file}`;
  const db = openDatabase(url);
  await migrateToLatest(db);
  const config = loadConfig({
    env: { NODE_ENV: 'development', DATA_DIR: dir, DATABASE_URL: url },
    dotenvPath: false,
  });
  const fixture = await createConfirmFixture(db, config, {
    count,
    emailPrefix: 'f',
    tokenFile: path.join(dir, 'tokens.txt'),
    passwordHash: 'x',
  });
  await db.close();
  const raw = new SQLite(file);
  raw.pragma('wal_checkpoint(TRUNCATE)');
  raw.close();
  const tokens = readFileSync(fixture.tokenFile, 'utf8').trim().split('\n');
  return { file, tokenHashes: tokens.map((token) => hashToken('signup', token)) };
}

/** Creates `count` unverified users and their sign-up tokens; writes the raw tokens one a line. */
export function createConfirmFixture(
  db: Db,
  config: Config,
  options: { count: number; emailPrefix: string; tokenFile: string; passwordHash: string },
): Promise<FixtureBatch> {
  return writeFixture(db, options, async (trx, start, size, now) => {
    const users = Array.from({ length: size }, (_, i) => {
      const email = `${options.emailPrefix}${start + i}@bench.test`;
      return {
        id: newId(cryptoRandom),
        email,
        email_normalized: email,
        password_hash: options.passwordHash,
        email_verified_at: null,
        created_at: now,
        updated_at: now,
      };
    });
    for (let i = 0; i < users.length; i += INSERT_ROWS) {
      await trx
        .insertInto('users')
        .values(users.slice(i, i + INSERT_ROWS))
        .execute();
    }
    const issued: string[] = [];
    for (const user of users) {
      const { token } = await issueVerification(trx, {
        purpose: 'signup',
        target: user.email_normalized,
        userId: user.id,
        now,
        linkTtlSeconds: config.ttl.signupLinkSeconds,
        codeTtlSeconds: config.ttl.codeSeconds,
        secretKey: config.secretKey,
        random: cryptoRandom,
      });
      issued.push(token);
    }
    return issued;
  });
}

/**
 * Creates `count` pending contact messages (as submitContact stores them, without the
 * verification email) and their contact tokens; writes the raw tokens one a line.
 */
export function createContactFixture(
  db: Db,
  config: Config,
  options: { count: number; emailPrefix: string; tokenFile: string; message: string },
): Promise<FixtureBatch> {
  return writeFixture(db, options, async (trx, start, size, now) => {
    const messages = Array.from({ length: size }, (_, i) => {
      const email = `${options.emailPrefix}${start + i}@bench.test`;
      return {
        id: newId(cryptoRandom),
        name: 'Bench Sender',
        email,
        email_normalized: email,
        message: options.message,
        status: 'pending' as const,
        created_at: now,
        accepted_at: null,
      };
    });
    for (let i = 0; i < messages.length; i += INSERT_ROWS) {
      await trx
        .insertInto('contact_messages')
        .values(messages.slice(i, i + INSERT_ROWS))
        .execute();
    }
    const issued: string[] = [];
    for (const message of messages) {
      const { token } = await issueVerification(trx, {
        purpose: 'contact',
        target: message.id,
        userId: null,
        now,
        linkTtlSeconds: config.contact.linkTtlSeconds,
        codeTtlSeconds: config.ttl.codeSeconds,
        secretKey: config.secretKey,
        random: cryptoRandom,
      });
      issued.push(token);
    }
    return issued;
  });
}

/** Runs `chunk` in transactions of 5,000 rows and writes the tokens it returns to the file. */
async function writeFixture(
  db: Db,
  options: { count: number; emailPrefix: string; tokenFile: string },
  chunk: (
    trx: Transaction<Database>,
    start: number,
    size: number,
    now: number,
  ) => Promise<string[]>,
): Promise<FixtureBatch> {
  const started = performance.now();
  const out = createWriteStream(options.tokenFile);
  for (let start = 0; start < options.count; start += TRANSACTION_SIZE) {
    const size = Math.min(TRANSACTION_SIZE, options.count - start);
    const now = Date.now();
    const tokens = await db.kysely.transaction().execute((trx) => chunk(trx, start, size, now));
    if (!out.write(`${tokens.join('\n')}\n`)) {
      await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    }
  }
  await new Promise<void>((resolve, reject) =>
    out.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
  // Fold the write-ahead log back into the database, so the server reads a short WAL.
  await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(db.kysely);
  return {
    emailPrefix: options.emailPrefix,
    tokenFile: options.tokenFile,
    count: options.count,
    seconds: (performance.now() - started) / 1000,
  };
}

/** How many of the batch's accounts are verified now. */
export async function countVerified(db: Db, emailPrefix: string): Promise<number> {
  const row = await db.kysely
    .selectFrom('users')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('email_normalized', 'like', `${emailPrefix}%`)
    .where('email_verified_at', 'is not', null)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** How many of the batch's contact messages are accepted now. */
export async function countAccepted(db: Db, emailPrefix: string): Promise<number> {
  const row = await db.kysely
    .selectFrom('contact_messages')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('email_normalized', 'like', `${emailPrefix}%`)
    .where('status', '=', 'accepted')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** A contact message of `bytes` characters: the text bench/lua/contact.lua sends. */
export function contactMessage(bytes: number): string {
  const text = 'Hello, I would like to know more about your service and its pricing. ';
  const body = text.repeat(Math.ceil(bytes / text.length));
  const half = Math.floor(bytes / 2);
  return `${body.slice(0, half - 4)}\n\n${body.slice(half, bytes)}`;
}

export interface SubmittedCounts {
  /** Pending messages from the batch's addresses. */
  messages: number;
  /** Live contact verifications whose target is one of those messages. */
  verifications: number;
  /** Verification emails (contact-verify) queued to those addresses. */
  emails: number;
}

/** What the contact submits from addresses starting with `emailPrefix` wrote. */
export async function countSubmitted(db: Db, emailPrefix: string): Promise<SubmittedCounts> {
  const like = `${emailPrefix}%`;
  const [messages, verifications, emails] = await Promise.all([
    db.kysely
      .selectFrom('contact_messages')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('email_normalized', 'like', like)
      .where('status', '=', 'pending')
      .executeTakeFirstOrThrow(),
    db.kysely
      .selectFrom('verifications')
      .innerJoin('contact_messages', 'contact_messages.id', 'verifications.target')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('verifications.purpose', '=', 'contact')
      .where('verifications.used_at', 'is', null)
      .where('contact_messages.email_normalized', 'like', like)
      .executeTakeFirstOrThrow(),
    db.kysely
      .selectFrom('outbox')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('template', '=', 'contact-verify')
      .where('to_address', 'like', like)
      .executeTakeFirstOrThrow(),
  ]);
  return {
    messages: Number(messages.n),
    verifications: Number(verifications.n),
    emails: Number(emails.n),
  };
}

export interface ContactTotals {
  /** Contact messages accepted, in the whole database. */
  accepted: number;
  /** Outbox rows delivering an accepted message to CONTACT_TO (contact-delivery), any status. */
  deliveries: number;
  /** Outbox rows of any kind that are dead-lettered. */
  dead: number;
}

export async function contactTotals(db: Db): Promise<ContactTotals> {
  const [accepted, deliveries, dead] = await Promise.all([
    db.kysely
      .selectFrom('contact_messages')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', 'accepted')
      .executeTakeFirstOrThrow(),
    db.kysely
      .selectFrom('outbox')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('template', '=', 'contact-delivery')
      .executeTakeFirstOrThrow(),
    db.kysely
      .selectFrom('outbox')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', 'dead')
      .executeTakeFirstOrThrow(),
  ]);
  return {
    accepted: Number(accepted.n),
    deliveries: Number(deliveries.n),
    dead: Number(dead.n),
  };
}
