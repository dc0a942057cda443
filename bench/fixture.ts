// The confirm fixture: unverified accounts, each with a live sign-up token issued by the domain
// code (issueVerification), written in large transactions to the same SQLite file the server uses.
import { createWriteStream } from 'node:fs';
import { sql } from 'kysely';
import { cryptoRandom, newId } from '../src/clock.ts';
import type { Config } from '../src/config.ts';
import type { Db } from '../src/db/index.ts';
import { issueVerification } from '../src/tokens/tokens.ts';

const TRANSACTION_SIZE = 5000;
const INSERT_ROWS = 500;

export interface FixtureBatch {
  /** Every account's address starts with this, so the batch can be counted afterwards. */
  emailPrefix: string;
  tokenFile: string;
  count: number;
  seconds: number;
}

/** Creates `count` unverified users and their sign-up tokens; writes the raw tokens one a line. */
export async function createConfirmFixture(
  db: Db,
  config: Config,
  options: { count: number; emailPrefix: string; tokenFile: string; passwordHash: string },
): Promise<FixtureBatch> {
  const started = performance.now();
  const out = createWriteStream(options.tokenFile);
  for (let start = 0; start < options.count; start += TRANSACTION_SIZE) {
    const size = Math.min(TRANSACTION_SIZE, options.count - start);
    const now = Date.now();
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
    const tokens = await db.kysely.transaction().execute(async (trx) => {
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
