// §2 Log in and log out with server-side sessions: the cookie, the hashed row, unverified users.
import { createHash } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { address, cookieHeader, csrfOf, type Jar, remember } from '../support/forms.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

const PASSWORD = 'lantern orchard pebble';

function setCookies(res: LightMyRequestResponse): string[] {
  const header = res.headers['set-cookie'];
  if (header === undefined) return [];
  return Array.isArray(header) ? header : [header];
}

function sessionCookieOf(res: LightMyRequestResponse): string {
  const value = res.cookies.find((c) => c.name === 'mp_session')?.value;
  if (!value) throw new Error('no mp_session cookie set');
  return value;
}

function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

async function signUp(rt: TestRuntime, email: string, verify: boolean) {
  const res = await rt.app.inject({
    method: 'POST',
    url: '/api/signup',
    payload: { email, password: PASSWORD },
  });
  expect(res.statusCode).toBe(202);
  const mail = await rt.mailTo(email);
  if (!verify) return mail;
  const token = new URL(mail.verification.url ?? '').pathname.split('/').pop();
  const verified = await rt.app.inject({
    method: 'POST',
    url: '/api/verify',
    payload: { token },
  });
  expect(verified.json()).toEqual({ status: 'verified' });
  return mail;
}

function apiLogin(rt: TestRuntime, email: string, password = PASSWORD, jar: Jar = {}) {
  return rt.app.inject({
    method: 'POST',
    url: '/api/login',
    payload: { email, password },
    headers: { cookie: cookieHeader(jar) },
  });
}

function me(rt: TestRuntime, session?: string) {
  return rt.app.inject({
    method: 'GET',
    url: '/api/me',
    headers: session ? { cookie: `mp_session=${session}` } : {},
  });
}

function sessionRows(rt: TestRuntime) {
  return rt.db.kysely.selectFrom('sessions').selectAll().execute();
}

async function sessionsOf(rt: TestRuntime, email: string) {
  const user = await rt.db.kysely
    .selectFrom('users')
    .select('id')
    .where('email_normalized', '=', email.toLowerCase())
    .executeTakeFirstOrThrow();
  return rt.db.kysely.selectFrom('sessions').selectAll().where('user_id', '=', user.id).execute();
}

describe('sessions', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime();
  });
  afterAll(async () => {
    await rt.close();
  });
  beforeEach(() => {
    rt.limits.reset();
  });

  describe('POST /api/login', () => {
    it('answers 200 with the account and sets an HttpOnly, SameSite=Lax session cookie', async () => {
      const email = address('login');
      await signUp(rt, email, true);
      const res = await apiLogin(rt, email);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ email, emailVerified: true });

      const raw = setCookies(res).find((c) => c.startsWith('mp_session='));
      expect(raw).toBeDefined();
      const attributes = (raw ?? '').split(';').map((part) => part.trim());
      expect(attributes[0]).toMatch(/^mp_session=[A-Za-z0-9_-]{43}$/);
      expect(attributes).toContain('HttpOnly');
      expect(attributes).toContain('SameSite=Lax');
      expect(attributes).toContain('Path=/');
      expect(attributes.some((a) => /^secure$/i.test(a))).toBe(false);
      const expires = attributes.find((a) => a.startsWith('Expires='));
      expect(Date.parse(expires?.slice('Expires='.length) ?? '')).toBe(
        Math.floor((rt.clock.now() + 30 * 86_400_000) / 1000) * 1000,
      );
    });

    it('accepts the address in any case and with spaces around it', async () => {
      const email = address('case');
      await signUp(rt, email, true);
      const res = await apiLogin(rt, `  ${email.toUpperCase()} `);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ email, emailVerified: true });
    });

    it('answers a wrong password and an unknown address identically: 401 invalid_credentials', async () => {
      const email = address('wrong');
      await signUp(rt, email, true);
      const wrongPassword = await apiLogin(rt, email, 'not the right password');
      const unknown = await apiLogin(rt, address('unknown'));
      const malformed = await apiLogin(rt, 'not-an-address');
      for (const res of [wrongPassword, unknown, malformed]) {
        expect(res.statusCode).toBe(401);
        expect(res.json()).toEqual({
          error: { code: 'invalid_credentials', message: expect.any(String) },
        });
        expect(setCookies(res).some((c) => c.startsWith('mp_session='))).toBe(false);
      }
      expect(unknown.body).toBe(wrongPassword.body);
      expect(malformed.body).toBe(wrongPassword.body);
      expect(await sessionsOf(rt, email)).toHaveLength(0);
    });

    it('starts a new session id at every login', async () => {
      const email = address('twice');
      await signUp(rt, email, true);
      const first = sessionCookieOf(await apiLogin(rt, email));
      const second = sessionCookieOf(await apiLogin(rt, email));
      expect(first).not.toBe(second);
      const rows = await sessionsOf(rt, email);
      expect(rows.map((r) => r.id_hash).sort()).toEqual([sha256(first), sha256(second)].sort());
      expect((await me(rt, first)).statusCode).toBe(200);
      expect((await me(rt, second)).statusCode).toBe(200);
    });
  });

  describe('the sessions table', () => {
    it('holds only the SHA-256 of the cookie value', async () => {
      const email = address('hashed');
      await signUp(rt, email, true);
      const cookie = sessionCookieOf(await apiLogin(rt, email));
      const rows = await sessionsOf(rt, email);
      expect(rows).toHaveLength(1);
      expect(rows[0]?.id_hash).toBe(sha256(cookie));
      expect(rows[0]?.id_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(Number(rows[0]?.created_at)).toBe(rt.clock.now());
      expect(Number(rows[0]?.expires_at)).toBe(rt.clock.now() + 30 * 86_400_000);
      const everything = JSON.stringify(await sessionRows(rt));
      expect(everything).not.toContain(cookie);
    });
  });

  describe('GET /api/me', () => {
    it('answers the account with the cookie and 401 without', async () => {
      const email = address('me');
      await signUp(rt, email, true);
      const cookie = sessionCookieOf(await apiLogin(rt, email));
      const res = await me(rt, cookie);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ email, emailVerified: true });
      expect(res.headers['cache-control']).toBe('no-store');

      for (const anonymous of [await me(rt), await me(rt, 'A'.repeat(43)), await me(rt, 'junk')]) {
        expect(anonymous.statusCode).toBe(401);
        expect(anonymous.json()).toMatchObject({ error: { code: 'unauthenticated' } });
      }
    });

    it('ends a session past its lifetime and deletes its row', async () => {
      const email = address('expired');
      await signUp(rt, email, true);
      const cookie = sessionCookieOf(await apiLogin(rt, email));
      rt.clock.advance(30 * 86_400_000);
      expect((await me(rt, cookie)).statusCode).toBe(401);
      expect(await sessionsOf(rt, email)).toHaveLength(0);
    });
  });

  describe('logging out', () => {
    it('through the API deletes the row and clears the cookie', async () => {
      const email = address('logout');
      await signUp(rt, email, true);
      const cookie = sessionCookieOf(await apiLogin(rt, email));
      const other = sessionCookieOf(await apiLogin(rt, email));
      const res = await rt.app.inject({
        method: 'POST',
        url: '/api/logout',
        headers: { cookie: `mp_session=${cookie}` },
      });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ status: 'logged_out' });
      const cleared = setCookies(res).find((c) => c.startsWith('mp_session='));
      expect(cleared).toMatch(/^mp_session=;/);
      expect(cleared).toMatch(/Expires=Thu, 01 Jan 1970 00:00:00 GMT/);

      const rows = await sessionsOf(rt, email);
      expect(rows.map((r) => r.id_hash)).toEqual([sha256(other)]);
      expect((await me(rt, cookie)).statusCode).toBe(401);
      // Only this session ended.
      expect((await me(rt, other)).statusCode).toBe(200);
    });

    it('through the page deletes the row and redirects home', async () => {
      const email = address('pagelogout');
      await signUp(rt, email, true);
      const jar = remember(await apiLogin(rt, email));
      const account = await rt.app.inject({
        method: 'GET',
        url: '/account',
        headers: { cookie: cookieHeader(jar) },
      });
      remember(account, jar);
      const res = await rt.app.inject({
        method: 'POST',
        url: '/logout',
        headers: {
          cookie: cookieHeader(jar),
          'content-type': 'application/x-www-form-urlencoded',
        },
        payload: new URLSearchParams({ _csrf: csrfOf(account.body) }).toString(),
      });
      expect(res.statusCode).toBe(303);
      expect(res.headers.location).toBe('/');
      expect(await sessionsOf(rt, email)).toHaveLength(0);
      expect((await me(rt, jar.mp_session)).statusCode).toBe(401);
    });

    it('through the page needs the CSRF token', async () => {
      const email = address('logoutcsrf');
      await signUp(rt, email, true);
      const jar = remember(await apiLogin(rt, email));
      const res = await rt.app.inject({
        method: 'POST',
        url: '/logout',
        headers: {
          cookie: cookieHeader(jar),
          'content-type': 'application/x-www-form-urlencoded',
        },
        payload: '',
      });
      expect(res.statusCode).toBe(403);
      expect(await sessionsOf(rt, email)).toHaveLength(1);
    });
  });

  describe('the login page', () => {
    it('replaces an existing session cookie with a new one and deletes the old row', async () => {
      const email = address('pagelogin');
      await signUp(rt, email, true);
      const jar = remember(await apiLogin(rt, email));
      const old = jar.mp_session ?? '';
      const form = await rt.app.inject({
        method: 'GET',
        url: '/login',
        headers: { cookie: cookieHeader(jar) },
      });
      remember(form, jar);
      const res = await rt.app.inject({
        method: 'POST',
        url: '/login',
        headers: {
          cookie: cookieHeader(jar),
          'content-type': 'application/x-www-form-urlencoded',
        },
        payload: new URLSearchParams({
          _csrf: csrfOf(form.body),
          email,
          password: PASSWORD,
        }).toString(),
      });
      expect(res.statusCode).toBe(303);
      expect(res.headers.location).toBe('/account');
      const fresh = sessionCookieOf(res);
      expect(fresh).not.toBe(old);
      const rows = await sessionsOf(rt, email);
      expect(rows.map((r) => r.id_hash)).toEqual([sha256(fresh)]);
      expect((await me(rt, old)).statusCode).toBe(401);
      expect((await me(rt, fresh)).statusCode).toBe(200);
    });

    it('does not promote a planted, unknown session cookie', async () => {
      const email = address('planted');
      await signUp(rt, email, true);
      const planted = 'P'.repeat(43);
      const jar: Jar = { mp_session: planted };
      const form = await rt.app.inject({
        method: 'GET',
        url: '/login',
        headers: { cookie: cookieHeader(jar) },
      });
      remember(form, jar);
      const res = await rt.app.inject({
        method: 'POST',
        url: '/login',
        headers: {
          cookie: cookieHeader(jar),
          'content-type': 'application/x-www-form-urlencoded',
        },
        payload: new URLSearchParams({
          _csrf: csrfOf(form.body),
          email,
          password: PASSWORD,
        }).toString(),
      });
      expect(res.statusCode).toBe(303);
      expect(sessionCookieOf(res)).not.toBe(planted);
      expect((await me(rt, planted)).statusCode).toBe(401);
    });

    it('shows an error for wrong credentials and sets no session', async () => {
      const email = address('pagewrong');
      await signUp(rt, email, true);
      const jar: Jar = {};
      const form = await rt.app.inject({ method: 'GET', url: '/login' });
      remember(form, jar);
      const res = await rt.app.inject({
        method: 'POST',
        url: '/login',
        headers: {
          cookie: cookieHeader(jar),
          'content-type': 'application/x-www-form-urlencoded',
        },
        payload: new URLSearchParams({
          _csrf: csrfOf(form.body),
          email,
          password: 'not the right password',
        }).toString(),
      });
      expect(res.statusCode).toBe(401);
      expect(res.body).toContain('Wrong email address or password.');
      expect(res.body).not.toContain('not the right password');
      expect(res.cookies.some((c) => c.name === 'mp_session')).toBe(false);
      expect(await sessionsOf(rt, email)).toHaveLength(0);
    });
  });

  describe('an unverified account (default settings)', () => {
    it('may log in, and /account asks to confirm and offers a resend', async () => {
      const email = address('unverified');
      const first = await signUp(rt, email, false);
      const login = await apiLogin(rt, email);
      expect(login.statusCode).toBe(200);
      expect(login.json()).toEqual({ email, emailVerified: false });
      const jar = remember(login);

      const account = await rt.app.inject({
        method: 'GET',
        url: '/account',
        headers: { cookie: cookieHeader(jar) },
      });
      remember(account, jar);
      expect(account.statusCode).toBe(200);
      expect(account.body).toContain('Please confirm your email address');
      expect(account.body).toContain('Waiting for confirmation');
      const resendForm = /<form method="post" action="\/verify\/resend"[^>]*>(.*?)<\/form>/.exec(
        account.body,
      );
      expect(resendForm?.[1]).toContain(`<input type="hidden" name="email" value="${email}"/>`);
      expect(resendForm?.[1]).toContain('Send a new link');

      const sent = await rt.app.inject({
        method: 'POST',
        url: '/verify/resend',
        headers: {
          cookie: cookieHeader(jar),
          'content-type': 'application/x-www-form-urlencoded',
        },
        payload: new URLSearchParams({ _csrf: csrfOf(account.body), email }).toString(),
      });
      expect(sent.statusCode).toBe(200);
      const second = await rt.mailTo(email, { since: first.id });
      expect(second.verification.url).not.toBe(first.verification.url);
    });

    it('a verified account has no banner on /account', async () => {
      const email = address('verifiedaccount');
      await signUp(rt, email, true);
      const jar = remember(await apiLogin(rt, email));
      const account = await rt.app.inject({
        method: 'GET',
        url: '/account',
        headers: { cookie: cookieHeader(jar) },
      });
      expect(account.statusCode).toBe(200);
      expect(account.body).toContain(email);
      expect(account.body).toContain('Confirmed');
      expect(account.body).not.toContain('Please confirm your email address');
    });
  });

  describe('/account without a session', () => {
    it('redirects to /login', async () => {
      for (const headers of [{}, { cookie: `mp_session=${'Z'.repeat(43)}` }]) {
        const res = await rt.app.inject({ method: 'GET', url: '/account', headers });
        expect(res.statusCode).toBe(303);
        expect(res.headers.location).toBe('/login');
      }
    });
  });
});

describe('with REQUIRE_VERIFIED_LOGIN=true', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime({ env: { REQUIRE_VERIFIED_LOGIN: 'true' } });
  });
  afterAll(async () => {
    await rt.close();
  });

  it('refuses an unverified account with 403 email_not_verified and no cookie', async () => {
    const email = address('required');
    await signUp(rt, email, false);
    const res = await apiLogin(rt, email);
    expect(res.statusCode).toBe(403);
    expect(res.json()).toEqual({
      error: { code: 'email_not_verified', message: expect.any(String) },
    });
    expect(setCookies(res).some((c) => c.startsWith('mp_session='))).toBe(false);
    expect(await sessionsOf(rt, email)).toHaveLength(0);
  });

  it('tells only someone with the right password that the address is unverified', async () => {
    const email = address('requiredwrong');
    await signUp(rt, email, false);
    const res = await apiLogin(rt, email, 'not the right password');
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ error: { code: 'invalid_credentials' } });
  });

  it('lets the account in once verified', async () => {
    const email = address('requiredok');
    await signUp(rt, email, true);
    const res = await apiLogin(rt, email);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ email, emailVerified: true });
    expect(await sessionsOf(rt, email)).toHaveLength(1);
  });

  it('refuses on the login page too, with a message and no session', async () => {
    const email = address('requiredpage');
    await signUp(rt, email, false);
    const jar: Jar = {};
    const form = await rt.app.inject({ method: 'GET', url: '/login' });
    remember(form, jar);
    const res = await rt.app.inject({
      method: 'POST',
      url: '/login',
      headers: {
        cookie: cookieHeader(jar),
        'content-type': 'application/x-www-form-urlencoded',
      },
      payload: new URLSearchParams({
        _csrf: csrfOf(form.body),
        email,
        password: PASSWORD,
      }).toString(),
    });
    expect(res.statusCode).toBe(403);
    expect(res.body).toContain('Confirm your email address before logging in');
    expect(res.cookies.some((c) => c.name === 'mp_session')).toBe(false);
    expect(await sessionsOf(rt, email)).toHaveLength(0);
  });
});
