// Issue 5: a `mailproof worker` process killed with SIGKILL in the middle of sending 1000
// messages; another worker finishes. None is lost; duplicates are at most the killed worker's
// in-flight batch (rows it had claimed, whose sending it could not record).
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer as createNetServer } from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { SMTPServer } from 'smtp-server';
import { afterAll, describe, expect, it } from 'vitest';
import { cryptoRandom } from '../../src/clock.ts';
import { migrateToLatest, openDatabase } from '../../src/db/index.ts';
import { enqueueEmail } from '../../src/mail/outbox.ts';
import { CLAIM_BATCH_SIZE } from '../../src/mail/worker.ts';
import { POSTGRES_URL } from '../support/runtime.ts';

const MESSAGES = 1000;
const BATCH = CLAIM_BATCH_SIZE; // the worker's claim size
const BIN = path.resolve('bin/mailproof.js');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe.runIf(process.env.MAILPROOF_TEST_DB === 'postgres')('a worker killed mid-send', () => {
  const schema = `mp_kill_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const children: ChildProcess[] = [];
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  let close: () => Promise<void> = async () => {};
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await close();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    await admin.end().catch(() => {});
  });

  it(`loses none of ${MESSAGES} messages, and sends at most one batch twice`, async () => {
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    const url = new URL(POSTGRES_URL);
    url.searchParams.set('options', `-c search_path=${schema}`);
    const db = openDatabase(url.toString());
    await migrateToLatest(db);
    const now = Date.now();
    await db.kysely.transaction().execute(async (trx) => {
      for (let i = 0; i < MESSAGES; i++) {
        await enqueueEmail(trx, {
          to: `kill-${i}@example.com`,
          template: 'verify-email',
          data: {
            url: `http://mailproof.test/verify/t${i}`,
            code: '12345678',
            linkMinutes: 60,
            codeMinutes: 10,
          },
          flow: 'signup',
          now,
          random: cryptoRandom,
          messageIdDomain: 'mailproof.test',
        });
      }
    });
    const expected = new Set(
      (await db.kysely.selectFrom('outbox').select('message_id').execute()).map(
        (r) => r.message_id,
      ),
    );
    await db.close();
    expect(expected.size).toBe(MESSAGES);

    // A real SMTP server, a little slow (5 ms a message), recording Message-IDs.
    const received: string[] = [];
    const sink = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      disableReverseLookup: true,
      logger: false,
      onData(stream, _session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          const head = Buffer.concat(chunks).toString('utf8').split('\r\n\r\n')[0] ?? '';
          received.push(/^message-id:\s*(\S+)/im.exec(head)?.[1] ?? '(none)');
          setTimeout(() => callback(), 5);
        });
      },
    });
    // The killed worker's connections end in a reset, which smtp-server reports as an 'error'
    // event on the server: expected here, and not a failure of the test.
    sink.on('error', () => {});
    const smtpPort = await freePort();
    await new Promise<void>((resolve) => sink.listen(smtpPort, '127.0.0.1', () => resolve()));
    close = () => new Promise((resolve) => sink.close(() => resolve()));

    const env = {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'development',
      DATABASE_URL: url.toString(),
      DATA_DIR: path.join(process.env.TMPDIR ?? '/tmp', schema),
      MAIL_SERVER: '127.0.0.1',
      MAIL_PORT: String(smtpPort),
      INBOX_ENABLED: 'false',
      LOG_LEVEL: 'warn',
      // The killed worker's rows come back to the others after this long.
      OUTBOX_LEASE: '3s',
      OUTBOX_POLL_INTERVAL: '1s',
    };
    const worker = (name: string) => {
      const child = spawn(process.execPath, [BIN, 'worker'], { env, stdio: 'ignore' });
      children.push(child);
      return Object.assign(child, { label: name });
    };

    const first = worker('first');
    await waitFor(() => received.length >= 150, 60_000, 'the first worker to be sending');
    first.kill('SIGKILL');
    await new Promise((resolve) => first.on('exit', resolve));
    const sentByFirst = received.length;
    expect(sentByFirst).toBeLessThan(MESSAGES);

    worker('second');
    await waitFor(() => new Set(received).size >= MESSAGES, 120_000, 'every message');
    await new Promise((resolve) => setTimeout(resolve, 1000)); // late duplicates would show now

    const unique = new Set(received);
    expect(unique).toEqual(expected);
    const duplicates = received.length - unique.size;
    expect(duplicates).toBeLessThanOrEqual(BATCH);
    const { rows } = await admin.query(
      `SELECT status, count(*)::int AS n FROM ${schema}.outbox GROUP BY status`,
    );
    expect(rows).toEqual([{ status: 'sent', n: MESSAGES }]);
  }, 240_000);
});
