// §8 Bad input and safety: headers, body limits, clear 4xx errors, BASE_URL links, escaping,
// and logs that never carry a password, token, code or full email address.
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.ts';
import type { MailTransport, OutgoingEmail } from '../../src/mail/transport.ts';
import {
  address,
  BASE_URL,
  cookieHeader,
  csrfOf,
  type Jar,
  postForm,
  remember,
  tokenOf,
} from '../support/forms.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

const PASSWORD = 'lantern orchard pebble';

function cspOf(res: LightMyRequestResponse): Map<string, string[]> {
  const header = String(res.headers['content-security-policy'] ?? '');
  const directives = new Map<string, string[]>();
  for (const part of header.split(';')) {
    const [name, ...values] = part.trim().split(/\s+/);
    if (name) directives.set(name.toLowerCase(), values);
  }
  return directives;
}

async function pageSignup(rt: TestRuntime, email: string, password: string, jar: Jar = {}) {
  const form = await rt.app.inject({ method: 'GET', url: '/signup' });
  remember(form, jar);
  return postForm(rt, '/signup', { _csrf: csrfOf(form.body), email, password }, jar);
}

function expectApiError(res: LightMyRequestResponse, status: number, code: string) {
  expect(res.statusCode).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json() as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(body.error.message.length).toBeGreaterThan(0);
  expect(res.body).not.toMatch(/\n\s+at |node_modules|\.ts:\d+/);
  return body.error;
}

describe('safety', () => {
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

  describe('security headers', () => {
    const pages = [
      '/',
      '/signup',
      '/login',
      '/verify',
      '/verify/resend',
      `/verify/${'A'.repeat(43)}`,
      '/no-such-page',
    ];
    for (const url of pages) {
      it(`are set on ${url}`, async () => {
        const res = await rt.app.inject({ method: 'GET', url });
        expect(res.headers['content-type']).toMatch(/^text\/html/);
        const csp = cspOf(res);
        expect(csp.get('default-src')).toEqual(["'self'"]);
        expect(csp.get('script-src')).toEqual(["'self'"]);
        expect(csp.get('frame-ancestors')).toEqual(["'none'"]);
        expect(csp.get('object-src')).toEqual(["'none'"]);
        expect(String(res.headers['content-security-policy'])).not.toContain('unsafe-inline');
        expect(String(res.headers['content-security-policy'])).not.toContain('unsafe-eval');
        expect(res.headers['x-content-type-options']).toBe('nosniff');
        expect(res.headers['referrer-policy']).toBe('no-referrer');
        expect(res.headers['cache-control']).toBe('no-store');
        expect(res.headers['x-powered-by']).toBeUndefined();
        // No inline script or style attribute that the policy would block.
        expect(res.body).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/i);
        expect(res.body).not.toMatch(/\sstyle="/i);
        expect(res.body).not.toMatch(/\son[a-z]+="/i);
      });
    }

    it('are set on API answers too, which are never cached', async () => {
      const res = await rt.app.inject({ method: 'GET', url: '/api/me' });
      expect(res.statusCode).toBe(401);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['cache-control']).toBe('no-store');
      const signup = await rt.app.inject({
        method: 'POST',
        url: '/api/signup',
        payload: { email: address('headers'), password: PASSWORD },
      });
      expect(signup.headers['cache-control']).toBe('no-store');
    });
  });

  describe('malformed requests get a clear 4xx', () => {
    it('refuses a NUL character (U+0000) in any field with 400, on every database', async () => {
      // PostgreSQL cannot hold U+0000 in text: this body once made POST /api/verify answer 500.
      const bodies: Array<[string, object]> = [
        ['/api/verify', { email: '\u0000a@a.aa', code: ' ' }],
        ['/api/verify', { token: 'abc\u0000' }],
        ['/api/login', { email: 'a\u0000@example.com', password: PASSWORD }],
        ['/api/verify/resend', { email: '\u0000@example.com' }],
        ['/api/contact', { name: 'N\u0000', email: 'x@example.com', message: 'hello' }],
        ['/api/signup', { email: address('nul'), password: `${PASSWORD}\u0000` }],
      ];
      for (const [url, payload] of bodies) {
        const res = await rt.app.inject({ method: 'POST', url, payload });
        expect(res.json(), url).toEqual({
          error: {
            code: 'invalid_request',
            message: 'Invalid request: no field may hold the NUL character (U+0000).',
          },
        });
        expect(res.statusCode, url).toBe(400);
      }
      // A form on a page: the same refusal, as a page.
      const jar: Jar = {};
      const form = await rt.app.inject({ method: 'GET', url: '/verify' });
      remember(form, jar);
      const page = await postForm(
        rt,
        '/verify',
        { _csrf: csrfOf(form.body), email: 'a\u0000@example.com', code: '12345678' },
        jar,
      );
      expect(page.statusCode).toBe(400);
      expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(page.body).toContain('NUL character');
    });

    it('refuses a body over 64 KB with 413', async () => {
      const email = address('big');
      const res = await rt.app.inject({
        method: 'POST',
        url: '/api/signup',
        payload: { email, password: 'x'.repeat(70 * 1024) },
      });
      expectApiError(res, 413, 'body_too_large');
      const users = await rt.db.kysely
        .selectFrom('users')
        .select('id')
        .where('email_normalized', '=', email)
        .execute();
      expect(users).toHaveLength(0);
    });

    it('accepts a body just under the limit as far as size goes', async () => {
      const res = await rt.app.inject({
        method: 'POST',
        url: '/api/signup',
        payload: { email: address('notbig'), password: 'x'.repeat(60 * 1024) },
      });
      // Too long for a password, but that is the password rules' answer, not a size refusal.
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: { code: 'password_too_long' } });
    });

    it('refuses an oversized form on a page with 413', async () => {
      const jar: Jar = {};
      const form = await rt.app.inject({ method: 'GET', url: '/signup' });
      remember(form, jar);
      const res = await postForm(
        rt,
        '/signup',
        { _csrf: csrfOf(form.body), email: address('bigform'), password: 'y'.repeat(70 * 1024) },
        jar,
      );
      expect(res.statusCode).toBe(413);
    });

    it('answers invalid JSON with 400 invalid_json', async () => {
      for (const payload of ['{"email": ', '{email: "a@example.com"}', '']) {
        const res = await rt.app.inject({
          method: 'POST',
          url: '/api/signup',
          headers: { 'content-type': 'application/json' },
          payload,
        });
        expectApiError(res, 400, 'invalid_json');
      }
    });

    it('names a __proto__ key as the problem, not the JSON, which is valid', async () => {
      for (const payload of [
        '{"__proto__":{"admin":true},"email":"a@example.com","password":"x"}',
        '{"constructor":{"prototype":{"admin":true}},"email":"a@example.com"}',
      ]) {
        const res = await rt.app.inject({
          method: 'POST',
          url: '/api/signup',
          headers: { 'content-type': 'application/json' },
          payload,
        });
        const error = expectApiError(res, 400, 'invalid_request');
        expect(error.message).toBe(
          'Invalid request: no key may be "__proto__" or "constructor" with a "prototype".',
        );
      }
    });

    it('takes an empty JSON body on a route that reads no body (logout, inbox deletes)', async () => {
      const json = { 'content-type': 'application/json' };
      const logout = await rt.app.inject({ method: 'POST', url: '/api/logout', headers: json });
      expect(logout.statusCode).toBe(200);
      const del = await rt.app.inject({
        method: 'DELETE',
        url: '/_inbox/api/messages?scope=nobody-here',
        headers: json,
      });
      expect(del.json()).toEqual({ deleted: 0 });
      // A route that reads a body still wants one.
      const signup = await rt.app.inject({
        method: 'POST',
        url: '/api/signup',
        headers: json,
        payload: '',
      });
      expectApiError(signup, 400, 'invalid_json');
    });

    it('answers a new password of any length over the maximum with password_too_long', async () => {
      for (const length of [300, 5000, 60_000]) {
        const res = await rt.app.inject({
          method: 'POST',
          url: '/api/signup',
          payload: { email: address(`long${length}`), password: 'a lantern '.repeat(length / 10) },
        });
        expectApiError(res, 400, 'password_too_long');
      }
    });

    it('answers wrong types and missing fields with 400 invalid_request naming the field', async () => {
      const cases: Array<[string, unknown, string]> = [
        ['/api/signup', { email: 123, password: PASSWORD }, 'email'],
        ['/api/signup', { email: 'a@example.com' }, 'password'],
        ['/api/signup', { email: 'a@example.com', password: ['x'] }, 'password'],
        ['/api/login', { password: PASSWORD }, 'email'],
        ['/api/login', { email: 'a@example.com', password: null }, 'password'],
        ['/api/verify/resend', { email: { $ne: '' } }, 'email'],
      ];
      for (const [url, payload, field] of cases) {
        const res = await rt.app.inject({ method: 'POST', url, payload: payload as object });
        const error = expectApiError(res, 400, 'invalid_request');
        expect(error.message, `${url} ${JSON.stringify(payload)}`).toContain(field);
      }
    });

    it('answers bodies of the wrong shape with 400 invalid_request', async () => {
      for (const url of ['/api/signup', '/api/login', '/api/verify', '/api/verify/resend']) {
        for (const payload of ['[]', '"text"', '42', 'null', '{}']) {
          const res = await rt.app.inject({
            method: 'POST',
            url,
            headers: { 'content-type': 'application/json' },
            payload,
          });
          expectApiError(res, 400, 'invalid_request');
        }
      }
      const res = await rt.app.inject({
        method: 'POST',
        url: '/api/verify',
        payload: { code: '12345678' },
      });
      expectApiError(res, 400, 'invalid_request');
    });

    it('answers a form-encoded body to the API with 415', async () => {
      const email = address('form');
      const res = await rt.app.inject({
        method: 'POST',
        url: '/api/signup',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ email, password: PASSWORD }).toString(),
      });
      expectApiError(res, 415, 'unsupported_media_type');
      const multipart = await rt.app.inject({
        method: 'POST',
        url: '/api/signup',
        headers: { 'content-type': 'multipart/form-data; boundary=x' },
        payload: `--x\r\nContent-Disposition: form-data; name="email"\r\n\r\n${email}\r\n--x--\r\n`,
      });
      expectApiError(multipart, 415, 'unsupported_media_type');
      const users = await rt.db.kysely
        .selectFrom('users')
        .select('id')
        .where('email_normalized', '=', email)
        .execute();
      expect(users).toHaveLength(0);
    });

    it('answers a multipart form posted to a page with a 415 page that says what it takes', async () => {
      const email = address('multipart-page');
      const res = await rt.app.inject({
        method: 'POST',
        url: '/signup',
        headers: { 'content-type': 'multipart/form-data; boundary=x' },
        payload: `--x\r\nContent-Disposition: form-data; name="email"\r\n\r\n${email}\r\n--x--\r\n`,
      });
      expect(res.statusCode).toBe(415);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.body).toContain('application/x-www-form-urlencoded');
      expect(res.body).toContain('/api/');
    });

    it('never takes a text/plain body (which a cross-site form can send) as JSON', async () => {
      const email = address('textplain');
      const res = await rt.app.inject({
        method: 'POST',
        url: '/api/signup',
        headers: { 'content-type': 'text/plain' },
        payload: JSON.stringify({ email, password: PASSWORD }),
      });
      expect(res.statusCode).toBe(415);
      expect(res.json()).toMatchObject({ error: { code: 'unsupported_media_type' } });
      const users = await rt.db.kysely
        .selectFrom('users')
        .select('id')
        .where('email_normalized', '=', email)
        .execute();
      expect(users).toHaveLength(0);
    });

    it('answers an unknown API route with a 404 JSON error, and an unknown page with HTML', async () => {
      expectApiError(await rt.app.inject({ method: 'GET', url: '/api/nope' }), 404, 'not_found');
      expectApiError(
        await rt.app.inject({ method: 'POST', url: '/api/nope', payload: {} }),
        404,
        'not_found',
      );
      expectApiError(await rt.app.inject({ method: 'GET', url: '/api/signup' }), 404, 'not_found');
      const page = await rt.app.inject({ method: 'GET', url: '/nope' });
      expect(page.statusCode).toBe(404);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      expect(page.body).toContain('Page not found');
    });
  });

  describe('links in emails', () => {
    it('use BASE_URL whatever Host header the request carried', async () => {
      const hostile = {
        host: 'evil.example',
        'x-forwarded-host': 'evil.example',
        'x-forwarded-proto': 'https',
        forwarded: 'host=evil.example;proto=https',
      };
      const email = address('host');
      const signup = await rt.app.inject({
        method: 'POST',
        url: '/api/signup',
        headers: hostile,
        payload: { email, password: PASSWORD },
      });
      expect(signup.statusCode).toBe(202);
      const first = await rt.mailTo(email);

      const jar: Jar = {};
      const form = await rt.app.inject({ method: 'GET', url: '/verify/resend', headers: hostile });
      remember(form, jar);
      const resend = await rt.app.inject({
        method: 'POST',
        url: '/verify/resend',
        headers: {
          ...hostile,
          cookie: cookieHeader(jar),
          'content-type': 'application/x-www-form-urlencoded',
        },
        payload: new URLSearchParams({ _csrf: csrfOf(form.body), email }).toString(),
      });
      expect(resend.statusCode).toBe(200);
      const second = await rt.mailTo(email, { since: first.id });

      await rt.app.inject({
        method: 'POST',
        url: '/api/verify',
        payload: { token: tokenOf(second.verification.url) },
      });
      await rt.app.inject({
        method: 'POST',
        url: '/api/signup',
        headers: hostile,
        payload: { email, password: PASSWORD },
      });
      const third = await rt.mailTo(email, { since: second.id });
      expect(third.subject).toMatch(/Someone tried to sign up/);

      for (const mail of [first, second, third]) {
        expect(mail.links.length).toBeGreaterThan(0);
        for (const link of mail.links) expect(link.startsWith(`${BASE_URL}/`), link).toBe(true);
        expect(mail.html).not.toContain('evil.example');
        expect(mail.text).not.toContain('evil.example');
        expect(JSON.stringify(mail.headers)).not.toContain('evil.example');
      }
    });
  });

  describe('HTML escaping', () => {
    const script = '<script>alert(1)</script>';

    it('rejects an address containing markup, and never echoes it raw', async () => {
      const email = `${script}@example.com`;
      const api = await rt.app.inject({
        method: 'POST',
        url: '/api/signup',
        payload: { email, password: PASSWORD },
      });
      expectApiError(api, 400, 'email_invalid');
      expect(api.body).not.toContain(script);

      const page = await pageSignup(rt, email, PASSWORD);
      expect(page.statusCode).toBe(400);
      expect(page.body).not.toContain(script);
      expect(page.body).toContain('&lt;script>alert(1)&lt;/script>@example.com');
      const users = await rt.db.kysely
        .selectFrom('users')
        .select('id')
        .where('email', 'like', '%<script>%')
        .execute();
      expect(users).toHaveLength(0);
    });

    it('escapes values reflected from the query string', async () => {
      const breakout = `"><script>alert(1)</script><x y="`;
      for (const url of ['/verify', '/verify/resend']) {
        const res = await rt.app.inject({
          method: 'GET',
          url: `${url}?email=${encodeURIComponent(breakout)}`,
        });
        expect(res.statusCode).toBe(200);
        expect(res.body).not.toContain('<script>');
        expect(res.body).not.toContain('<x y=');
        expect(res.body).toContain('value="&quot;>&lt;script>alert(1)&lt;/script>&lt;x y=&quot;"');
      }
    });

    it('refuses CR/LF in an address, so nothing reaches a mail header', async () => {
      const victim = address('victim');
      const email = `${victim}\r\nBcc: someone@example.net`;
      const res = await rt.app.inject({
        method: 'POST',
        url: '/api/signup',
        payload: { email, password: PASSWORD },
      });
      expectApiError(res, 400, 'email_invalid');
      const resend = await rt.app.inject({
        method: 'POST',
        url: '/api/verify/resend',
        payload: { email },
      });
      expectApiError(resend, 400, 'email_invalid');
      const queued = await rt.db.kysely
        .selectFrom('outbox')
        .select('id')
        .where('to_address', 'like', `${victim}%`)
        .execute();
      expect(queued).toHaveLength(0);
    });
  });
});

/** The newest message to `email`, moving the manual clock so the worker's retries fall due. */
async function mailThroughRetries(rt: TestRuntime, email: string, since = 0) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const message = rt.inbox?.latestFor(email);
    if (message && message.id > since) return message;
    rt.clock.advance(1000);
    rt.worker?.wake();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no message to ${email} arrived`);
}

describe('logs', () => {
  /** A transport that refuses the first attempt the way an SMTP server does, naming the recipient. */
  function refusingOnce(inner: () => MailTransport | undefined): MailTransport {
    const refused = new Set<string>();
    return {
      name: 'refusing-once',
      async send(email: OutgoingEmail) {
        if (!refused.has(email.messageId)) {
          refused.add(email.messageId);
          throw Object.assign(
            new Error(`Message failed: 451 4.7.1 <${email.to}>: Recipient greylisted, try later`),
            { responseCode: 451, code: 'EMESSAGE' },
          );
        }
        const target = inner();
        if (!target) throw new Error('no inbox transport');
        await target.send(email);
      },
      async close() {},
    };
  }

  it('never contain a password, token, code, session id or full email address', async () => {
    const lines: string[] = [];
    const log = createLogger({ logLevel: 'info' }, { write: (line: string) => lines.push(line) });
    let inboxTransport: MailTransport | undefined;
    const rt = await createTestRuntime({
      log,
      transport: refusingOnce(() => inboxTransport),
    });
    inboxTransport = (await import('../../src/inbox/transport.ts')).createInboxTransport(
      rt.inbox ?? (undefined as never),
    );
    const secrets: string[] = [PASSWORD, rt.config.secretKey];
    const emails: string[] = [];
    try {
      // Sign up on the page and through the API.
      const pageUser = address('Log.Page');
      const apiUser = address('Log.Api');
      emails.push(pageUser, apiUser);
      const jar: Jar = {};
      const page = await pageSignup(rt, pageUser, PASSWORD, jar);
      expect(page.statusCode).toBe(200);
      const signup = await rt.app.inject({
        method: 'POST',
        url: '/api/signup',
        payload: { email: apiUser, password: PASSWORD },
      });
      expect(signup.statusCode).toBe(202);
      const pageMail = await mailThroughRetries(rt, pageUser);
      const apiMail = await mailThroughRetries(rt, apiUser);
      for (const mail of [pageMail, apiMail]) {
        secrets.push(tokenOf(mail.verification.url), mail.verification.code ?? 'missing code');
      }

      // Open the link, confirm by POST; confirm the other by code on the page and the API.
      const confirmPath = new URL(pageMail.verification.url ?? '').pathname;
      const confirm = await rt.app.inject({
        method: 'GET',
        url: confirmPath,
        headers: { cookie: cookieHeader(jar) },
      });
      remember(confirm, jar);
      secrets.push(csrfOf(confirm.body));
      expect(
        (await postForm(rt, confirmPath, { _csrf: csrfOf(confirm.body) }, jar)).body,
      ).toContain('Your email is confirmed');
      let wrongCode = apiMail.verification.code ?? '';
      while (wrongCode === apiMail.verification.code) {
        wrongCode = String(Math.floor(Math.random() * 1e8)).padStart(8, '0');
      }
      secrets.push(wrongCode);
      const codePage = await rt.app.inject({
        method: 'GET',
        url: `/verify?email=${encodeURIComponent(apiUser)}`,
        headers: { cookie: cookieHeader(jar) },
      });
      await postForm(
        rt,
        '/verify',
        { _csrf: csrfOf(codePage.body), email: apiUser, code: wrongCode },
        jar,
      );
      const byCode = await rt.app.inject({
        method: 'POST',
        url: '/api/verify',
        payload: { email: apiUser, code: apiMail.verification.code },
      });
      expect(byCode.json()).toEqual({ status: 'verified' });

      // Log in (API and page), fail a login, resend, look at the account, log out.
      const login = await rt.app.inject({
        method: 'POST',
        url: '/api/login',
        payload: { email: apiUser, password: PASSWORD },
      });
      expect(login.statusCode).toBe(200);
      const session = remember(login).mp_session ?? 'missing session';
      secrets.push(session);
      const wrongPassword = 'definitely the wrong password';
      secrets.push(wrongPassword);
      const failed = await rt.app.inject({
        method: 'POST',
        url: '/api/login',
        payload: { email: pageUser, password: wrongPassword },
      });
      expect(failed.statusCode).toBe(401);
      const loginForm = await rt.app.inject({
        method: 'GET',
        url: '/login',
        headers: { cookie: cookieHeader(jar) },
      });
      const pageLogin = await postForm(
        rt,
        '/login',
        { _csrf: csrfOf(loginForm.body), email: pageUser, password: PASSWORD },
        jar,
      );
      expect(pageLogin.statusCode).toBe(303);
      secrets.push(jar.mp_session ?? 'missing page session');
      const unknown = address('Log.Unknown');
      emails.push(unknown);
      await rt.app.inject({
        method: 'POST',
        url: '/api/verify/resend',
        payload: { email: unknown },
      });
      await rt.app.inject({
        method: 'POST',
        url: '/api/verify/resend',
        payload: { email: unknown },
      });
      await rt.app.inject({
        method: 'GET',
        url: '/account',
        headers: { cookie: cookieHeader(jar) },
      });
      await rt.app.inject({
        method: 'GET',
        url: '/api/me',
        headers: { cookie: `mp_session=${session}` },
      });
      await rt.app.inject({
        method: 'POST',
        url: '/api/logout',
        headers: { cookie: `mp_session=${session}` },
      });
      // Malformed input is logged as an error answer, not echoed.
      await rt.app.inject({
        method: 'POST',
        url: '/api/signup',
        headers: { 'content-type': 'application/json' },
        payload: `{"email": "${apiUser}", "password": "${PASSWORD}"`,
      });
    } finally {
      await rt.close();
    }

    expect(lines.length).toBeGreaterThan(10);
    const all = lines.join('');
    expect(all).toContain('incoming request');
    expect(all).toContain('/verify/:token');
    // The greylisting retry was logged, so the worker's log lines are in the capture too.
    expect(all).toContain('will retry');
    for (const secret of secrets) {
      if (/^\d+$/.test(secret)) {
        // A code is digits: it only counts where it stands alone, not inside a timestamp.
        expect(all, `a code: ${secret}`).not.toMatch(new RegExp(`(?<![\\d.])${secret}(?![\\d.])`));
      } else {
        expect(all, `a secret: ${secret}`).not.toContain(secret);
      }
    }
    const lower = all.toLowerCase();
    for (const email of emails) {
      expect(lower, email).not.toContain(email.toLowerCase());
      expect(lower, email).not.toContain(encodeURIComponent(email).toLowerCase());
      expect(lower, email).not.toContain(email.split('@')[0]?.toLowerCase());
    }
  });
});
