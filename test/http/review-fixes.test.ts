// Regression tests for defects found in review: each failed before its fix.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { extractLinks } from '../../src/inbox/extract.ts';
import type { MailTransport } from '../../src/mail/transport.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

const PASSWORD = 'a passphrase long enough for tests';

async function signUpAndReadCode(rt: TestRuntime, email: string): Promise<string> {
  const res = await rt.app.inject({
    method: 'POST',
    url: '/api/signup',
    payload: { email, password: PASSWORD },
  });
  expect(res.statusCode).toBe(202);
  const mail = await rt.mailTo(email);
  return mail.verification.code ?? '';
}

describe('review fixes', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime({ env: { INBOX_AUTH: 'dev:inbox-password' } });
  });
  afterAll(async () => {
    await rt.close();
  });

  it('lets parallel wrong codes use at most the allowed attempts', async () => {
    const email = 'parallel-codes@example.com';
    const code = await signUpAndReadCode(rt, email);
    const wrong = code === '00000000' ? '11111111' : '00000000';
    const answers = await Promise.all(
      Array.from({ length: 12 }, () =>
        rt.app.inject({ method: 'POST', url: '/api/verify', payload: { email, code: wrong } }),
      ),
    );
    const codes = answers.map((a) => a.json().error.code);
    // Each is "wrong code" (as for an address without a secret); the row's count is the limit.
    expect(codes).toEqual(Array.from({ length: 12 }, () => 'code_invalid'));
    const row = await rt.db.kysely
      .selectFrom('verifications')
      .select('code_attempts')
      .where('target', '=', email)
      .executeTakeFirstOrThrow();
    expect(row.code_attempts).toBe(5);
    const right = await rt.app.inject({
      method: 'POST',
      url: '/api/verify',
      payload: { email, code },
    });
    expect(right.json().error.code).toBe('too_many_attempts');
  });

  it('answers a double submit of the right code with verified and already_verified', async () => {
    const email = 'double-code@example.com';
    const code = await signUpAndReadCode(rt, email);
    const answers = await Promise.all(
      [1, 2].map(() =>
        rt.app.inject({ method: 'POST', url: '/api/verify', payload: { email, code } }),
      ),
    );
    expect(answers.map((a) => a.statusCode)).toEqual([200, 200]);
    expect(answers.map((a) => a.json().status).sort()).toEqual(['already_verified', 'verified']);
  });

  it('keeps the inbox behind INBOX_AUTH', async () => {
    for (const url of ['/_inbox', '/_inbox/api/messages', '/_inbox/api/latest?to=a@b.c']) {
      const res = await rt.app.inject({ url });
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Basic realm="Mailproof inbox"/);
    }
    const wrong = Buffer.from('dev:nope').toString('base64');
    expect(
      (await rt.app.inject({ url: '/_inbox', headers: { authorization: `Basic ${wrong}` } }))
        .statusCode,
    ).toBe(401);
    const right = Buffer.from('dev:inbox-password').toString('base64');
    const ok = await rt.app.inject({
      url: '/_inbox/api/messages',
      headers: { authorization: `Basic ${right}` },
    });
    expect(ok.statusCode).toBe(200);
  });

  it('refuses an open inbox in production', () => {
    const env = {
      NODE_ENV: 'production',
      SECRET_KEY: 'a-production-secret-that-is-long-enough-0123456789',
      BASE_URL: 'https://example.com',
      MAIL_SERVER: 'smtp.example.com',
      INBOX_ENABLED: 'true',
    };
    expect(() => loadConfig({ dotenvPath: false, env })).toThrow(ConfigError);
    expect(() => loadConfig({ dotenvPath: false, env })).toThrow(/INBOX_AUTH/);
    const config = loadConfig({
      dotenvPath: false,
      env: { ...env, INBOX_AUTH: 'ops:a-long-inbox-password' },
    });
    expect(config.inbox.auth).toEqual({ user: 'ops', password: 'a-long-inbox-password' });
  });

  it('links the contact form from every page when it is enabled', async () => {
    const home = await rt.app.inject({ url: '/' });
    expect(home.body).toContain('<a href="/contact">Contact</a>');
  });

  it('answers 404, not 500, for static names that are object properties', async () => {
    for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      expect((await rt.app.inject({ url: `/static/${name}` })).statusCode).toBe(404);
    }
  });

  it('reads a message with an out-of-range numeric entity', () => {
    const links = extractLinks('<a href="https://x.test/&#x110000;&#99999999;">x</a>', null);
    expect(links).toEqual(['https://x.test/\ufffd\ufffd']);
  });
});

describe('a worker that lost its lease', () => {
  let rt: TestRuntime;
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const slowTransport: MailTransport = {
    name: 'slow',
    async send() {
      await gate;
    },
    async close() {},
  };
  beforeAll(async () => {
    rt = await createTestRuntime({ transport: slowTransport, worker: false });
  });
  afterAll(async () => {
    release();
    await rt.close();
  });

  it('does not overwrite the row once another worker holds it', async () => {
    const res = await rt.app.inject({
      method: 'POST',
      url: '/api/signup',
      payload: { email: 'lease@example.com', password: PASSWORD },
    });
    expect(res.statusCode).toBe(202);
    const { createOutboxWorker } = await import('../../src/mail/worker.ts');
    const worker = createOutboxWorker({
      db: rt.db,
      transport: slowTransport,
      clock: rt.clock,
      random: rt.ctx.random,
      log: rt.ctx.log,
      branding: rt.ctx.branding,
      from: 'x@mailproof.test',
      maxAttempts: 5,
    });
    const pass = worker.drainOnce();
    // While the send hangs, the lease passes to another worker, which delivers the message.
    await new Promise((r) => setTimeout(r, 50));
    await rt.db.kysely
      .updateTable('outbox')
      .set({ locked_by: 'another-worker', status: 'dead', last_error: 'set by the other worker' })
      .where('to_address', '=', 'lease@example.com')
      .execute();
    release();
    await pass;
    const row = await rt.db.kysely
      .selectFrom('outbox')
      .select(['status', 'locked_by', 'last_error'])
      .where('to_address', '=', 'lease@example.com')
      .executeTakeFirstOrThrow();
    expect(row).toEqual({
      status: 'dead',
      locked_by: 'another-worker',
      last_error: 'set by the other worker',
    });
  });
});
