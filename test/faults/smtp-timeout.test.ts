// Issue 5: an SMTP server that accepts the message and then never answers. The send times out
// (MAIL_TIMEOUT), counts as a temporary failure, and the retry delivers it.
import { createServer as createNetServer } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

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

describe('SMTP accepts, then goes silent', () => {
  let rt: TestRuntime | undefined;
  let server: SMTPServer | undefined;
  afterAll(async () => {
    await rt?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  it('times out, keeps the message pending with the error, and delivers it on the retry', async () => {
    let dataCommands = 0;
    const accepted: string[] = [];
    server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      disableReverseLookup: true,
      logger: false,
      onData(stream, session, callback) {
        dataCommands++;
        const first = dataCommands === 1;
        stream.resume();
        stream.on('end', () => {
          if (first) return; // the whole message arrived; the reply never comes
          accepted.push(session.envelope.rcptTo[0]?.address ?? '');
          callback();
        });
      },
    });
    const port = await freePort();
    await new Promise<void>((resolve) => server?.listen(port, '127.0.0.1', () => resolve()));
    rt = await createTestRuntime({
      env: {
        RATE_LIMITS: 'off',
        MAIL_SERVER: '127.0.0.1',
        MAIL_PORT: String(port),
        MAIL_TIMEOUT: '1s',
        INBOX_ENABLED: 'false',
      },
    });
    const runtime = rt;
    const res = await runtime.app.inject({
      method: 'POST',
      url: '/api/signup',
      payload: { email: 'silent@example.com', password: 'a long enough passphrase here' },
    });
    expect(res.statusCode).toBe(202);

    const row = async () =>
      runtime.db.kysely
        .selectFrom('outbox')
        .select(['status', 'attempts', 'last_error'])
        .executeTakeFirstOrThrow();
    const until = async (check: (r: Awaited<ReturnType<typeof row>>) => boolean) => {
      for (let i = 0; i < 200; i++) {
        const current = await row();
        if (check(current)) return current;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error(`outbox row stayed ${JSON.stringify(await row())}`);
    };

    const failed = await until((r) => r.attempts === 1 && r.last_error !== null);
    expect(failed.status).toBe('pending');
    expect(failed.last_error).toMatch(/timeout|timed out|ETIMEDOUT/i);
    expect(accepted).toEqual([]);

    runtime.clock.advance(60_000); // past the backoff
    runtime.worker?.wake();
    const sent = await until((r) => r.status === 'sent');
    expect(sent.attempts).toBe(2);
    expect(accepted).toEqual(['silent@example.com']);
    expect(dataCommands).toBe(2);
  }, 60_000);
});
