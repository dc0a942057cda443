// Headers and cookies (ASVS 3.3–3.5, 7.2–7.4): the __Host- session cookie in production, a CSP
// without unsafe-inline, no Referer from pages that carry tokens, nothing cached that is
// personal or single-use, cross-site requests refused, and the session's two lifetimes.
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  address,
  cookieHeader,
  csrfOf,
  getPage,
  type Jar,
  postForm,
  tokenOf,
} from '../support/forms.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';
import { api, logIn, me, PASSWORD, postAccount, setCookies, signUp } from './helpers.ts';

function csp(res: LightMyRequestResponse): string {
  return String(res.headers['content-security-policy'] ?? '');
}

function expectStrictPage(res: LightMyRequestResponse) {
  expect(res.headers['content-type']).toMatch(/^text\/html/);
  const policy = csp(res);
  expect(policy).toMatch(/(^|;)\s*script-src 'self'(;|$)/);
  expect(policy).toMatch(/object-src 'none'/);
  expect(policy).toMatch(/base-uri 'none'/);
  expect(policy).toMatch(/frame-ancestors 'none'/);
  expect(policy).not.toContain('unsafe-inline');
  expect(policy).not.toContain('unsafe-eval');
  expect(res.headers['x-content-type-options']).toBe('nosniff');
  expect(res.headers['referrer-policy']).toBe('no-referrer');
  expect(res.headers['cache-control']).toBe('no-store');
  // Nothing inline that the policy would have to allow.
  expect(res.body).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/i);
  expect(res.body).not.toMatch(/\sstyle="/i);
  expect(res.body).not.toMatch(/\son[a-z]+="/i);
}

describe('in development', () => {
  let rt: TestRuntime;
  let jar: Jar;
  let email: string;
  const links: Record<string, string> = {};

  beforeAll(async () => {
    rt = await createTestRuntime();
    email = address('headers');
    const signup = await signUp(rt, email, { verify: false });
    links.verify = new URL(signup.verification.url ?? '').pathname;
    jar = await logIn(rt, email);
    await api(rt, 'POST', '/api/password/forgot', {}, { email });
    const reset = await rt.mailTo(email, { since: signup.id });
    links.reset = new URL(reset.verification.url ?? '').pathname;
    const next = address('headers-new');
    await api(rt, 'POST', '/api/email/change', jar, { newEmail: next, password: PASSWORD });
    links.emailChange = new URL((await rt.mailTo(next)).verification.url ?? '').pathname;
    const contact = address('headers-contact');
    await api(rt, 'POST', '/api/contact', {}, { name: 'Ada', email: contact, message: 'Hello!' });
    links.contact = new URL((await rt.mailTo(contact)).verification.url ?? '').pathname;
  });
  afterAll(async () => {
    await rt.close();
  });

  it('pages that carry a token: strict CSP, Referrer-Policy no-referrer, Cache-Control no-store', async () => {
    for (const path of Object.values(links)) {
      const res = await getPage(rt, path, {});
      expect(res.statusCode, path).toBe(200);
      expectStrictPage(res);
    }
  });

  it('the answers to their POSTs too', async () => {
    const page: Jar = {};
    const form = await getPage(rt, links.reset ?? '', page);
    const res = await postForm(
      rt,
      links.reset ?? '',
      { _csrf: csrfOf(form.body), password: 'x' },
      page,
    );
    expect(res.statusCode).toBe(400);
    expectStrictPage(res);
  });

  it('authenticated pages and the new account pages', async () => {
    for (const path of ['/account', '/forgot', '/login', '/signup']) {
      const res = await getPage(rt, path, { ...jar });
      expect(res.statusCode, path).toBe(200);
      expectStrictPage(res);
    }
    const failed = await postAccount(rt, { ...jar }, { intent: 'delete_account', password: 'no' });
    expect(failed.statusCode).toBe(400);
    expectStrictPage(failed);
  });

  it('API answers, errors included: no-store, nosniff, no framing', async () => {
    const answers = [
      await api(rt, 'GET', '/api/me', jar),
      await api(rt, 'GET', '/api/sessions', jar),
      await api(rt, 'GET', '/api/sessions'),
      await api(rt, 'POST', '/api/password/forgot', {}, { email: 'bad' }),
      await api(rt, 'POST', '/api/password/reset', {}, { token: 'x', password: 'y' }),
      await api(rt, 'POST', '/api/email/confirm', {}, { token: 'x' }),
    ];
    for (const res of answers) {
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(csp(res)).toContain("frame-ancestors 'none'");
      expect(res.headers['referrer-policy']).toBe('no-referrer');
    }
  });

  it('forms need the CSRF token (ASVS 3.5.1)', async () => {
    for (const url of ['/account', '/forgot', links.reset ?? '', links.emailChange ?? '']) {
      const res = await rt.app.inject({
        method: 'POST',
        url,
        headers: {
          cookie: cookieHeader(jar),
          'content-type': 'application/x-www-form-urlencoded',
        },
        payload: 'intent=delete_account&password=x',
      });
      expect(res.statusCode, url).toBe(403);
    }
  });

  it('the API refuses bodies a cross-site form can send (415) and cross-site browsers (403) (ASVS 3.5.2)', async () => {
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
    ]) {
      const res = await rt.app.inject({
        method: 'POST',
        url: '/api/account/delete',
        headers: { cookie: cookieHeader(jar), 'content-type': type },
        payload: 'password=x',
      });
      expect(res.statusCode, type).toBe(415);
    }
    for (const headers of [
      { origin: 'https://evil.example' },
      { origin: 'null' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
    ]) {
      // No body at all needs no preflight: the origin check is what stops it.
      const res = await rt.app.inject({
        method: 'POST',
        url: '/api/logout',
        headers: { cookie: cookieHeader(jar), ...headers },
      });
      expect(res.statusCode, JSON.stringify(headers)).toBe(403);
      expect(res.json()).toMatchObject({ error: { code: 'cross_origin' } });
    }
    expect((await me(rt, jar)).statusCode).toBe(200);
    const same = await rt.app.inject({
      method: 'POST',
      url: '/api/password/forgot',
      headers: { origin: 'http://mailproof.test', 'sec-fetch-site': 'same-origin' },
      payload: { email: address('same-origin') },
    });
    expect(same.statusCode).toBe(202);
  });

  it('opening token links (GET) changes nothing (ASVS 3.5.3)', async () => {
    const before = await rt.db.kysely.selectFrom('verifications').selectAll().execute();
    const users = await rt.db.kysely.selectFrom('users').selectAll().execute();
    for (const path of Object.values(links)) await getPage(rt, path, {});
    expect(await rt.db.kysely.selectFrom('verifications').selectAll().execute()).toEqual(before);
    expect(await rt.db.kysely.selectFrom('users').selectAll().execute()).toEqual(users);
    expect(tokenOf(`http://mailproof.test${links.reset}`)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe('in production', () => {
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

  function hostCookie(res: LightMyRequestResponse): string {
    const cookie = setCookies(res).find((c) => c.startsWith('__Host-mp_session='));
    if (!cookie) throw new Error('no __Host-mp_session cookie');
    return cookie;
  }

  it('the session cookie is __Host-, Secure, HttpOnly, SameSite=Lax, Path=/ and has no Domain; also when rotated', async () => {
    const email = address('prod');
    await rt.app.inject({
      method: 'POST',
      url: '/api/signup',
      payload: { email, password: PASSWORD },
    });
    const login = await rt.app.inject({
      method: 'POST',
      url: '/api/login',
      payload: { email, password: PASSWORD },
    });
    expect(login.statusCode).toBe(200);
    for (const res of [login]) {
      const cookie = hostCookie(res);
      expect(cookie).toMatch(/; Secure/);
      expect(cookie).toMatch(/; HttpOnly/);
      expect(cookie).toMatch(/; SameSite=Lax/);
      expect(cookie).toMatch(/; Path=\//);
      expect(cookie).not.toMatch(/Domain=/i);
    }
    const value = login.cookies.find((c) => c.name === '__Host-mp_session')?.value ?? '';
    const changed = await rt.app.inject({
      method: 'POST',
      url: '/api/password/change',
      headers: { cookie: `__Host-mp_session=${value}`, origin: 'https://accounts.example.com' },
      payload: { currentPassword: PASSWORD, newPassword: 'a brand new production passphrase' },
    });
    expect(changed.statusCode).toBe(200);
    const rotated = hostCookie(changed);
    expect(rotated).toMatch(/; Secure/);
    expect(rotated).toMatch(/; HttpOnly/);
    // The plain name is never used in production.
    expect(setCookies(changed).some((c) => c.startsWith('mp_session='))).toBe(false);
    // HSTS on API answers too (ASVS 3.4.1).
    expect(changed.headers['strict-transport-security']).toMatch(
      /max-age=31536000; includeSubDomains/,
    );
  });

  it('the flash cookie is __Host- and Secure too, and is read back and cleared under that name', async () => {
    const redirect = await rt.app.inject({ url: '/account' });
    expect(redirect.statusCode).toBe(303);
    const flash = setCookies(redirect).find((c) => c.startsWith('__Host-mp_flash='));
    expect(flash).toMatch(/; Secure/);
    expect(flash).toMatch(/; HttpOnly/);
    expect(flash).toMatch(/; Path=\//);
    expect(setCookies(redirect).some((c) => c.startsWith('mp_flash='))).toBe(false);
    const value = redirect.cookies.find((c) => c.name === '__Host-mp_flash')?.value ?? '';
    const login = await rt.app.inject({
      url: '/login',
      headers: { cookie: `__Host-mp_flash=${value}` },
    });
    expect(login.body).toContain('Log in to see your account.');
    const cleared = setCookies(login).find((c) => c.startsWith('__Host-mp_flash=;'));
    expect(cleared).toMatch(/; Secure/);
  });

  it('the API takes same-origin browsers and refuses others by Origin', async () => {
    const ok = await rt.app.inject({
      method: 'POST',
      url: '/api/password/forgot',
      headers: { origin: 'https://accounts.example.com' },
      payload: { email: address('prod-origin') },
    });
    expect(ok.statusCode).toBe(202);
    const evil = await rt.app.inject({
      method: 'POST',
      url: '/api/password/forgot',
      headers: { origin: 'https://accounts.example.com.evil.example' },
      payload: { email: address('prod-evil') },
    });
    expect(evil.statusCode).toBe(403);
  });
});

describe('session lifetimes (ASVS 7.3.1, 7.3.2)', () => {
  let rt: TestRuntime;

  beforeAll(async () => {
    rt = await createTestRuntime({ env: { SESSION_TTL: '1h', SESSION_MAX_AGE: '3h' } });
  });
  afterAll(async () => {
    await rt.close();
  });

  it('ends an idle session after SESSION_TTL', async () => {
    const email = address('idle');
    await signUp(rt, email);
    const jar = await logIn(rt, email);
    rt.clock.advance(60 * 60_000);
    expect((await me(rt, jar)).statusCode).toBe(401);
  });

  it('ends a busy session at SESSION_MAX_AGE after login, however active; the cookie says so', async () => {
    const email = address('busy');
    await signUp(rt, email);
    const login = await rt.app.inject({
      method: 'POST',
      url: '/api/login',
      payload: { email, password: PASSWORD },
    });
    const cookie = setCookies(login).find((c) => c.startsWith('mp_session=')) ?? '';
    const expires = Date.parse(/Expires=([^;]+)/.exec(cookie)?.[1] ?? '');
    expect(expires).toBe(Math.floor((rt.clock.now() + 3 * 3_600_000) / 1000) * 1000);
    const jar = { mp_session: login.cookies.find((c) => c.name === 'mp_session')?.value ?? '' };
    for (let i = 0; i < 5; i += 1) {
      rt.clock.advance(35 * 60_000);
      expect((await me(rt, jar)).statusCode, `after ${(i + 1) * 35} minutes`).toBe(200);
    }
    rt.clock.advance(10 * 60_000 + 1);
    expect((await me(rt, jar)).statusCode).toBe(401);
    const rows = await rt.db.kysely.selectFrom('sessions').select('id_hash').execute();
    expect(rows.length).toBeLessThanOrEqual(1);
  });

  it('after logout the account page asks to log in again (ASVS 7.4.1)', async () => {
    const email = address('back');
    await signUp(rt, email);
    const jar = await logIn(rt, email);
    const page = await getPage(rt, '/account', jar);
    expect(page.headers['cache-control']).toBe('no-store');
    await postForm(rt, '/logout', { _csrf: csrfOf(page.body) }, jar);
    const again = await getPage(rt, '/account', jar);
    expect(again.statusCode).toBe(303);
    expect(again.headers.location).toBe('/login');
  });
});
