// Every limit comes from the one mechanism (src/ratelimit/limiter.ts): sign-up, login (per
// account and per client), resend, forgot, contact, code entry, reset and email-change
// submissions, and the password-checked account actions. Each refusal is answered with the wait
// (429 and Retry-After in the API, the wait on pages) and logged as one warn line with the
// limit's name and a hashed key, never the address.
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.ts';
import { address, csrfOf, getPage, type Jar, postForm } from '../support/forms.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';
import { api, logIn, PASSWORD, postAccount, signUp } from './helpers.ts';

let rt: TestRuntime;
const lines: string[] = [];

beforeAll(async () => {
  const log = createLogger({ logLevel: 'warn' }, { write: (line: string) => lines.push(line) });
  rt = await createTestRuntime({
    log,
    env: {
      RATE_LIMIT_SIGNUP_CLIENT: '3/1h',
      RATE_LIMIT_SIGNUP_ADDRESS: '2/1h',
      RATE_LIMIT_LOGIN_CLIENT: '3/5m',
      RATE_LIMIT_LOGIN_ADDRESS: '2/15m',
      RATE_LIMIT_RESEND_CLIENT: '3/1h',
      RATE_LIMIT_RESEND_ADDRESS: '1/1m',
      RATE_LIMIT_FORGOT_CLIENT: '3/1h',
      RATE_LIMIT_FORGOT_ADDRESS: '2/1h',
      RATE_LIMIT_CONTACT_CLIENT: '3/1h',
      RATE_LIMIT_CONTACT_ADDRESS: '2/1h',
      RATE_LIMIT_VERIFY_CLIENT: '2/5m',
      RATE_LIMIT_RESET_CLIENT: '2/15m',
      RATE_LIMIT_ACCOUNT_USER: '2/15m',
      RATE_LIMIT_EMAIL_CHANGE_ADDRESS: '1/1h',
    },
  });
});
afterAll(async () => {
  await rt.close();
});
beforeEach(() => {
  rt.limits.reset();
  lines.length = 0;
});

let ipSeq = 0;
function newIp(): string {
  ipSeq += 1;
  return `10.9.${Math.floor(ipSeq / 250)}.${(ipSeq % 250) + 1}`;
}

function post(url: string, payload: object, remoteAddress: string, jar: Jar = {}) {
  return rt.app.inject({
    method: 'POST',
    url,
    payload,
    remoteAddress,
    headers: {
      cookie: Object.entries(jar)
        .map(([k, v]) => `${k}=${v}`)
        .join('; '),
    },
  });
}

interface Logged {
  level: number;
  msg: string;
  limit?: string;
  key?: string;
  retryAfterSeconds?: number;
}

function limitLines(): Logged[] {
  return lines
    .map((line) => JSON.parse(line) as Logged)
    .filter((entry) => entry.msg === 'rate limit reached');
}

/** The API's 429: Retry-After in seconds, the same wait in the body, and a warn line. */
function expectLimited(
  res: LightMyRequestResponse,
  limit: string,
  secrets: string[],
  maxWaitSeconds: number,
) {
  expect(res.statusCode).toBe(429);
  const retryAfter = Number(res.headers['retry-after']);
  expect(retryAfter).toBeGreaterThan(0);
  expect(retryAfter).toBeLessThanOrEqual(maxWaitSeconds);
  expect(res.json()).toEqual({
    error: {
      code: 'rate_limited',
      message: `Too many requests. Try again in ${retryAfter} seconds.`,
      retryAfterSeconds: retryAfter,
    },
  });
  expectLogged(limit, secrets);
}

function expectLogged(limit: string, secrets: string[]) {
  const logged = limitLines();
  expect(logged.map((l) => l.limit)).toContain(limit);
  for (const entry of logged) {
    expect(entry.level).toBe(40);
    expect(entry.key).toMatch(/^[A-Za-z0-9_-]{12}$/);
  }
  const all = lines.join('');
  for (const secret of secrets) {
    expect(all).not.toContain(secret);
    expect(all.toLowerCase()).not.toContain(secret.toLowerCase());
  }
}

describe('API limits answer 429 with Retry-After and log the limit', () => {
  it('sign-up per address (from many clients) and per client (for many addresses)', async () => {
    const email = address('signup-limit');
    for (let i = 0; i < 2; i += 1) {
      expect((await post('/api/signup', { email, password: PASSWORD }, newIp())).statusCode).toBe(
        202,
      );
    }
    expectLimited(
      await post('/api/signup', { email, password: PASSWORD }, newIp()),
      'signupPerAddress',
      [email, email.split('@')[0] ?? ''],
      3600,
    );
    const ip = newIp();
    for (let i = 0; i < 3; i += 1) {
      await post('/api/signup', { email: address('signup-client'), password: PASSWORD }, ip);
    }
    expectLimited(
      await post('/api/signup', { email: address('signup-client'), password: PASSWORD }, ip),
      'signupPerClient',
      [ip],
      3600,
    );
  });

  it('login per account and per client, with a bounded wait (no permanent lockout)', async () => {
    const email = address('login-limit');
    for (let i = 0; i < 2; i += 1) {
      const res = await post('/api/login', { email, password: 'wrong password here' }, newIp());
      expect(res.statusCode).toBe(401);
    }
    expectLimited(
      await post('/api/login', { email, password: 'wrong password here' }, newIp()),
      'loginPerAddress',
      [email],
      15 * 60,
    );
    const ip = newIp();
    for (let i = 0; i < 3; i += 1) {
      await post('/api/login', { email: address('login-client'), password: 'x' }, ip);
    }
    expectLimited(
      await post('/api/login', { email: address('login-client'), password: 'x' }, ip),
      'loginPerClient',
      [],
      5 * 60,
    );
  });

  it('resend per address and per client', async () => {
    const email = address('resend-limit');
    expect((await post('/api/verify/resend', { email }, newIp())).statusCode).toBe(202);
    expectLimited(
      await post('/api/verify/resend', { email }, newIp()),
      'resendPerAddress',
      [email],
      60,
    );
    const ip = newIp();
    for (let i = 0; i < 3; i += 1) {
      await post('/api/verify/resend', { email: address('resend-client') }, ip);
    }
    expectLimited(
      await post('/api/verify/resend', { email: address('resend-client') }, ip),
      'resendPerClient',
      [],
      3600,
    );
  });

  it('forgot per address and per client', async () => {
    const email = address('forgot-limit');
    for (let i = 0; i < 2; i += 1) {
      expect((await post('/api/password/forgot', { email }, newIp())).statusCode).toBe(202);
    }
    expectLimited(
      await post('/api/password/forgot', { email }, newIp()),
      'forgotPerAddress',
      [email],
      3600,
    );
    const ip = newIp();
    for (let i = 0; i < 3; i += 1) {
      await post('/api/password/forgot', { email: address('forgot-client') }, ip);
    }
    expectLimited(
      await post('/api/password/forgot', { email: address('forgot-client') }, ip),
      'forgotPerClient',
      [],
      3600,
    );
  });

  it('contact per sender address', async () => {
    const email = address('contact-limit');
    const message = { name: 'Ada', email, message: 'Hello there, a question.' };
    for (let i = 0; i < 2; i += 1) {
      expect((await post('/api/contact', message, newIp())).statusCode).toBe(202);
    }
    expectLimited(await post('/api/contact', message, newIp()), 'contactPerAddress', [email], 3600);
  });

  it('code entry per client', async () => {
    const ip = newIp();
    const email = address('code-limit');
    for (let i = 0; i < 2; i += 1) {
      await post('/api/verify', { email, code: '12345678' }, ip);
    }
    expectLimited(
      await post('/api/verify', { email, code: '12345678' }, ip),
      'verifyPerClient',
      [email],
      300,
    );
  });

  it('reset and email-change link submissions per client', async () => {
    const ip = newIp();
    const token = 'A'.repeat(43);
    await post('/api/password/reset', { token, password: 'whatever long enough' }, ip);
    await post('/api/email/confirm', { token }, ip);
    expectLimited(
      await post('/api/password/reset', { token, password: 'whatever long enough' }, ip),
      'resetPerClient',
      [],
      15 * 60,
    );
  });

  it('password-checked account actions per account, and email changes per new address', async () => {
    const email = address('account-limit');
    await signUp(rt, email);
    const jar = await logIn(rt, email);
    for (let i = 0; i < 2; i += 1) {
      const res = await api(rt, 'POST', '/api/account/delete', jar, { password: 'guess number' });
      expect(res.statusCode).toBe(400);
    }
    expectLimited(
      await api(rt, 'POST', '/api/password/change', jar, {
        currentPassword: 'guess again',
        newPassword: 'a perfectly fine new passphrase',
      }),
      'accountPerUser',
      [email],
      15 * 60,
    );

    rt.limits.reset();
    lines.length = 0;
    const target = address('change-target');
    const first = await api(rt, 'POST', '/api/email/change', jar, {
      newEmail: target,
      password: PASSWORD,
    });
    expect(first.statusCode).toBe(202);
    const other = address('other-limit');
    await signUp(rt, other);
    const otherJar = await logIn(rt, other);
    expectLimited(
      await api(rt, 'POST', '/api/email/change', otherJar, {
        newEmail: target,
        password: PASSWORD,
      }),
      'emailChangePerAddress',
      [target, email, other],
      3600,
    );
  });
});

describe('page limits show the wait', () => {
  async function expectWaitPage(res: LightMyRequestResponse, limit: string, secrets: string[]) {
    expect(res.statusCode).toBe(429);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(res.body).toContain('Please wait a moment');
    expect(res.body).toMatch(/You can try again in \d+ (seconds?|minutes?)\./);
    expectLogged(limit, secrets);
  }

  it('/forgot', async () => {
    const email = address('forgot-page');
    const jar: Jar = {};
    const form = await getPage(rt, '/forgot', jar);
    let res: LightMyRequestResponse | undefined;
    for (let i = 0; i < 3; i += 1) {
      res = await postForm(rt, '/forgot', { _csrf: csrfOf(form.body), email }, jar);
    }
    await expectWaitPage(res as LightMyRequestResponse, 'forgotPerAddress', [email]);
  });

  it('/login', async () => {
    const email = address('login-page');
    const jar: Jar = {};
    const form = await getPage(rt, '/login', jar);
    let res: LightMyRequestResponse | undefined;
    for (let i = 0; i < 3; i += 1) {
      res = await postForm(
        rt,
        '/login',
        { _csrf: csrfOf(form.body), email, password: 'nope' },
        jar,
      );
    }
    await expectWaitPage(res as LightMyRequestResponse, 'loginPerAddress', [email]);
  });

  it('/reset/:token', async () => {
    const path = `/reset/${'B'.repeat(43)}`;
    const jar: Jar = {};
    const form = await getPage(rt, '/forgot', jar);
    let res: LightMyRequestResponse | undefined;
    for (let i = 0; i < 3; i += 1) {
      res = await postForm(rt, path, { _csrf: csrfOf(form.body), password: 'abc' }, jar);
    }
    await expectWaitPage(res as LightMyRequestResponse, 'resetPerClient', []);
  });

  it('/account', async () => {
    const email = address('account-page');
    await signUp(rt, email);
    const jar = await logIn(rt, email);
    let res: LightMyRequestResponse | undefined;
    for (let i = 0; i < 3; i += 1) {
      res = await postAccount(rt, jar, { intent: 'delete_account', password: 'wrong guess' });
    }
    await expectWaitPage(res as LightMyRequestResponse, 'accountPerUser', [email]);
  });
});
