import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

const PASSWORD = 'production passphrase for tests';

describe('production settings', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime({
      worker: false,
      env: {
        NODE_ENV: 'production',
        SECRET_KEY: 'a-production-secret-that-is-long-enough-0123456789',
        BASE_URL: 'https://accounts.example.com',
        MAIL_SERVER: '127.0.0.1',
        MAIL_PORT: '9',
        LOG_LEVEL: 'silent',
      },
    });
  });
  afterAll(async () => {
    await rt.close();
  });

  it('sets a __Host- session cookie that is Secure, HttpOnly and SameSite=Lax', async () => {
    const signup = await rt.app.inject({
      method: 'POST',
      url: '/api/signup',
      payload: { email: 'prod@example.com', password: PASSWORD },
    });
    expect(signup.statusCode).toBe(202);
    const login = await rt.app.inject({
      method: 'POST',
      url: '/api/login',
      payload: { email: 'prod@example.com', password: PASSWORD },
    });
    expect(login.statusCode).toBe(200);
    const cookie = String(login.headers['set-cookie']);
    expect(cookie).toMatch(/^__Host-mp_session=/);
    expect(cookie).toMatch(/; Secure/);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Lax/);
    expect(cookie).toMatch(/; Path=\//);
    expect(cookie).not.toMatch(/Domain=/i);
  });

  it('sends HSTS and keeps the inbox off', async () => {
    const page = await rt.app.inject({ url: '/signup' });
    expect(page.headers['strict-transport-security']).toMatch(/max-age=\d+/);
    expect(String(page.headers['set-cookie'])).toMatch(/__Host-mp_csrf=.*; Secure/);
    expect((await rt.app.inject({ url: '/_inbox' })).statusCode).toBe(404);
    // No CONTACT_TO in production: no contact form, so no link to it either.
    expect(page.body).not.toContain('href="/contact"');
    expect(page.body).not.toContain('href="/_inbox"');
    expect((await rt.app.inject({ url: '/_inbox/api/messages' })).statusCode).toBe(404);
  });

  it('builds emailed links from BASE_URL', async () => {
    const row = await rt.db.kysely
      .selectFrom('outbox')
      .select('payload')
      .where('to_address', '=', 'prod@example.com')
      .executeTakeFirstOrThrow();
    expect(JSON.parse(row.payload ?? '{}').url).toMatch(
      /^https:\/\/accounts\.example\.com\/verify\//,
    );
  });
});
