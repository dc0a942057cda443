import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

describe('sign-up smoke', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime();
  });
  afterAll(async () => {
    await rt.close();
  });

  it('signs up, mails a link and code, and confirms by POST', async () => {
    const res = await rt.app.inject({
      method: 'POST',
      url: '/api/signup',
      payload: { email: 'smoke@example.com', password: 'a long enough passphrase here' },
    });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ status: 'pending' });
    const mail = await rt.mailTo('smoke@example.com');
    expect(mail.verification.code).toMatch(/^\d{8}$/);
    const token = new URL(mail.verification.url ?? '').pathname.split('/').pop();
    const verify = await rt.app.inject({ method: 'POST', url: '/api/verify', payload: { token } });
    expect(verify.json()).toEqual({ status: 'verified' });
  });
});
