// Invalid input is answered before any limit is counted, so typos never lock anyone out.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

describe('validation before rate limits', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime({
      env: {
        RATE_LIMIT_SIGNUP_ADDRESS: '1/1h',
        RATE_LIMIT_CONTACT_ADDRESS: '1/1h',
        ADMIN_TOKEN: 'an-admin-token-of-some-length',
      },
    });
  });
  afterAll(async () => {
    await rt.close();
  });

  it('does not count rejected sign-ups against the address', async () => {
    for (let i = 0; i < 3; i++) {
      const bad = await rt.app.inject({
        method: 'POST',
        url: '/api/signup',
        payload: { email: 'typo@example.com', password: 'short' },
      });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().error.code).toBe('password_too_short');
    }
    const good = await rt.app.inject({
      method: 'POST',
      url: '/api/signup',
      payload: { email: 'typo@example.com', password: 'finally a long enough passphrase' },
    });
    expect(good.statusCode).toBe(202);
    const again = await rt.app.inject({
      method: 'POST',
      url: '/api/signup',
      payload: { email: 'typo@example.com', password: 'finally a long enough passphrase' },
    });
    expect(again.statusCode).toBe(429);
  });

  it('does not count rejected contact messages against the address', async () => {
    const bad = await rt.app.inject({
      method: 'POST',
      url: '/api/contact',
      payload: { name: 'Tab\tName', email: 'writer@example.com', message: 'hello' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('name_invalid');
    const good = await rt.app.inject({
      method: 'POST',
      url: '/api/contact',
      payload: { name: 'Writer', email: 'writer@example.com', message: 'hello' },
    });
    expect(good.statusCode).toBe(202);
    const limited = await rt.app.inject({
      method: 'POST',
      url: '/api/contact',
      payload: { name: 'Writer', email: 'writer@example.com', message: 'hello again' },
    });
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('refuses basic auth without a user:password pair on the admin page', async () => {
    const bare = Buffer.from('an-admin-token-of-some-length').toString('base64');
    const res = await rt.app.inject({
      url: '/admin/contact',
      headers: { authorization: `Basic ${bare}` },
    });
    expect(res.statusCode).toBe(401);
    const paired = Buffer.from('owner:an-admin-token-of-some-length').toString('base64');
    const ok = await rt.app.inject({
      url: '/admin/contact',
      headers: { authorization: `Basic ${paired}` },
    });
    expect(ok.statusCode).toBe(200);
  });
});
