// SPEC §4 / issue 5: the promise the peers break. 1000 sign-ups while the SMTP server refuses
// connections; then it comes back: every message arrives, none twice, no request failed.
import { createServer as createNetServer } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

const SIGNUPS = Number(process.env.SIGNUPS ?? 1000);
const PASSWORD = 'a long enough passphrase here';

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

/** A real SMTP server that records each message's Message-ID and recipient. */
function startSink(port: number): Promise<{ ids: string[]; to: string[]; close(): Promise<void> }> {
  const ids: string[] = [];
  const to: string[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    disableReverseLookup: true,
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const head = Buffer.concat(chunks).toString('utf8').split('\r\n\r\n')[0] ?? '';
        const id = /^message-id:\s*(\S+)/im.exec(head)?.[1];
        ids.push(id ?? '(none)');
        to.push(...session.envelope.rcptTo.map((r) => r.address));
        callback();
      });
    },
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(port, '127.0.0.1', () =>
      resolve({ ids, to, close: () => new Promise((done) => server.close(() => done())) }),
    );
  });
}

describe('SMTP down during 1000 sign-ups', () => {
  let rt: TestRuntime | undefined;
  let sink: Awaited<ReturnType<typeof startSink>> | undefined;
  afterAll(async () => {
    await rt?.close();
    await sink?.close();
  });

  it('queues every message, answers every request 202, and delivers each exactly once when SMTP is back', async () => {
    const port = await freePort(); // nothing listens there yet: connections are refused
    rt = await createTestRuntime({
      env: {
        RATE_LIMITS: 'off',
        MAIL_SERVER: '127.0.0.1',
        MAIL_PORT: String(port),
        MAIL_MAX_ATTEMPTS: '100',
        INBOX_ENABLED: 'false',
      },
    });
    const runtime = rt;
    const statuses = new Map<number, number>();
    const addresses = Array.from({ length: SIGNUPS }, (_, i) => `down-${i}@example.com`);
    // 8 at a time, as a busy sign-up page would see them.
    for (let i = 0; i < SIGNUPS; i += 8) {
      const answers = await Promise.all(
        addresses.slice(i, i + 8).map((email) =>
          runtime.app.inject({
            method: 'POST',
            url: '/api/signup',
            payload: { email, password: PASSWORD },
          }),
        ),
      );
      for (const answer of answers) {
        statuses.set(answer.statusCode, (statuses.get(answer.statusCode) ?? 0) + 1);
      }
      runtime.clock.advance(100); // time passes: the worker keeps retrying during the outage
    }
    expect(Object.fromEntries(statuses)).toEqual({ 202: SIGNUPS });

    // While SMTP is down, every message waits in the outbox and some have been retried.
    const queued = await runtime.db.kysely
      .selectFrom('outbox')
      .select(['status', 'attempts', 'last_error'])
      .execute();
    expect(queued).toHaveLength(SIGNUPS);
    expect(queued.every((row) => row.status === 'pending')).toBe(true);
    expect(
      queued.some((row) => row.attempts > 0 && /ECONNREFUSED|connect/i.test(row.last_error ?? '')),
    ).toBe(true);

    sink = await startSink(port);
    const started = Date.now();
    const deadline = started + Number(process.env.WAIT_MS ?? 120_000);
    let pending = SIGNUPS;
    while (Date.now() < deadline) {
      const rows = await runtime.db.kysely
        .selectFrom('outbox')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('status', '!=', 'sent')
        .executeTakeFirstOrThrow();
      pending = Number(rows.n);
      if (pending === 0) break;
      // The runtime's clock is a test clock: move it on so backed-off retries fall due.
      runtime.clock.advance(2000);
      runtime.worker?.wake();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if (pending !== 0) {
      console.log(
        await runtime.db.kysely
          .selectFrom('outbox')
          .select(['status', 'attempts', 'last_error', 'next_attempt_at', 'locked_until'])
          .limit(5)
          .execute(),
        Date.now(),
      );
    }
    expect(pending).toBe(0);
    expect(sink.ids).toHaveLength(SIGNUPS);
    expect(new Set(sink.ids).size).toBe(SIGNUPS);
    expect(new Set(sink.to)).toEqual(new Set(addresses));
    const dead = await runtime.db.kysely
      .selectFrom('outbox')
      .select('id')
      .where('status', '=', 'dead')
      .execute();
    expect(dead).toEqual([]);
  }, 300_000);
});
