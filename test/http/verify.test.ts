import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  address,
  BASE_URL,
  cookieHeader,
  csrfOf,
  getPage,
  type Jar,
  pathOf,
  postForm,
  remember,
  tokenOf,
} from '../support/forms.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

const PASSWORD = 'lantern orchard pebble';
const HOUR = 3_600_000;
const MINUTE = 60_000;

async function signUp(rt: TestRuntime, email: string) {
  const res = await rt.app.inject({
    method: 'POST',
    url: '/api/signup',
    payload: { email, password: PASSWORD },
  });
  expect(res.statusCode).toBe(202);
  return rt.mailTo(email);
}

function apiVerify(rt: TestRuntime, payload: Record<string, unknown>) {
  return rt.app.inject({ method: 'POST', url: '/api/verify', payload });
}

function apiResend(rt: TestRuntime, email: string) {
  return rt.app.inject({ method: 'POST', url: '/api/verify/resend', payload: { email } });
}

async function userOf(rt: TestRuntime, email: string) {
  return rt.db.kysely
    .selectFrom('users')
    .selectAll()
    .where('email_normalized', '=', email.toLowerCase())
    .executeTakeFirstOrThrow();
}

async function isVerified(rt: TestRuntime, email: string): Promise<boolean> {
  return (await userOf(rt, email)).email_verified_at !== null;
}

async function snapshot(rt: TestRuntime) {
  const db = rt.db.kysely;
  return {
    users: await db.selectFrom('users').selectAll().orderBy('id').execute(),
    verifications: await db.selectFrom('verifications').selectAll().orderBy('id').execute(),
    sessions: await db.selectFrom('sessions').selectAll().orderBy('id_hash').execute(),
    outbox: await db.selectFrom('outbox').selectAll().orderBy('id').execute(),
  };
}

/** Waits until the worker has sent everything queued, so the tables hold still. */
async function outboxIdle(rt: TestRuntime) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const pending = await rt.db.kysely
      .selectFrom('outbox')
      .select('id')
      .where('status', '=', 'pending')
      .execute();
    if (pending.length === 0) return;
    if (Date.now() > deadline) throw new Error('the outbox did not drain');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function latestId(rt: TestRuntime, email: string): number {
  return rt.inbox?.latestFor(email)?.id ?? 0;
}

function wrongCode(code: string | null): string {
  return code === '00000000' ? '11111111' : '00000000';
}

describe('verification', () => {
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

  describe('a body of the wrong shape', () => {
    it('is a 400 invalid_request that says what to send, on both confirmations', async () => {
      for (const url of ['/api/verify', '/api/contact/confirm']) {
        for (const payload of ['{}', 'null', '[]', '{"token": 5}', '{"email": "a@example.com"}']) {
          const res = await rt.app.inject({
            method: 'POST',
            url,
            headers: { 'content-type': 'application/json' },
            payload,
          });
          expect(res.statusCode, `${url} ${payload}`).toBe(400);
          expect(res.json(), `${url} ${payload}`).toEqual({
            error: {
              code: 'invalid_request',
              message:
                'Invalid request: body: send {"token"} from the link, or {"email", "code"} from the message',
            },
          });
        }
      }
    });

    it('names the field at fault elsewhere', async () => {
      const res = await rt.app.inject({
        method: 'POST',
        url: '/api/verify/resend',
        payload: { email: 5 },
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.message).toMatch(/^Invalid request: email: /);
    });
  });

  describe('the message', () => {
    it('carries a link and an 8-digit code, in both the HTML and the text part', async () => {
      const email = address('message');
      const mail = await signUp(rt, email);
      const { url, code } = mail.verification;
      expect(url).toMatch(/^http:\/\/mailproof\.test\/verify\/[A-Za-z0-9_-]{43}$/);
      expect(code).toMatch(/^\d{8}$/);
      const spaced = `${code?.slice(0, 4)} ${code?.slice(4)}`;
      expect(mail.text).toContain(url);
      expect(mail.text).toContain(spaced);
      expect(mail.html).toContain(`href="${url}"`);
      expect(mail.html).toContain(spaced);
      expect(mail.text).toMatch(/1 hour/);
      expect(mail.text).toMatch(/10 minutes/);
    });
  });

  describe('opening the link (GET)', () => {
    it('shows a confirm page whose form posts back to the same path', async () => {
      const mail = await signUp(rt, address('confirmpage'));
      const path = pathOf(mail.verification.url ?? '');
      const res = await getPage(rt, path);
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.body).toContain('Confirm your email address');
      expect(res.body).toContain(`<form method="post" action="${path}">`);
      expect(res.body).toMatch(/<input type="hidden" name="_csrf" value="[^"]+"\/>/);
      expect(res.body).toMatch(/<button type="submit"[^>]*>Confirm<\/button>/);
    });

    it('answers a link that is not valid with its own page', async () => {
      const res = await getPage(rt, `/verify/${'A'.repeat(43)}`);
      expect(res.statusCode).toBe(400);
      expect(res.body).toContain('This link is not valid');
      const short = await getPage(rt, '/verify/abc');
      expect(short.statusCode).toBe(400);
      expect(short.body).toContain('This link is not valid');
    });
  });

  describe('confirming on the page (POST)', () => {
    it('confirms with the CSRF token, then says already confirmed', async () => {
      const email = address('pageconfirm');
      const mail = await signUp(rt, email);
      const path = pathOf(mail.verification.url ?? '');
      const jar: Jar = {};
      const page = await getPage(rt, path, jar);
      expect(jar.mp_csrf).toBeTruthy();

      const first = await postForm(rt, path, { _csrf: csrfOf(page.body) }, jar);
      expect(first.statusCode).toBe(200);
      expect(first.body).toContain('Your email is confirmed');
      const user = await userOf(rt, email);
      expect(Number(user.email_verified_at)).toBe(rt.clock.now());

      // The outcome page has no form of its own; the confirm page's token is still good.
      const second = await postForm(rt, path, { _csrf: csrfOf(page.body) }, jar);
      expect(second.statusCode).toBe(200);
      expect(second.body).toContain('This address is already confirmed');
      expect(second.body).not.toContain('Your email is confirmed');
      expect(Number((await userOf(rt, email)).email_verified_at)).toBe(
        Number(user.email_verified_at),
      );

      const reopened = await getPage(rt, path, jar);
      expect(reopened.statusCode).toBe(200);
      expect(reopened.body).toContain('This address is already confirmed');
    });

    it('refuses a POST without a valid CSRF token (403) and changes nothing', async () => {
      const email = address('csrf');
      const mail = await signUp(rt, email);
      await outboxIdle(rt);
      const path = pathOf(mail.verification.url ?? '');
      const jar: Jar = {};
      const page = await getPage(rt, path, jar);
      const csrf = csrfOf(page.body);
      const other: Jar = {};
      const otherPage = await getPage(rt, '/signup', other);
      const before = await snapshot(rt);

      const attempts: Array<{ fields: Record<string, string>; jar: Jar }> = [
        { fields: {}, jar }, // cookie, no token
        { fields: { _csrf: csrf }, jar: {} }, // token, no cookie
        { fields: { _csrf: 'forged-token-value' }, jar }, // wrong token
        { fields: { _csrf: csrfOf(otherPage.body) }, jar: { mp_csrf: jar.mp_csrf ?? '' } }, // another visitor's token
        { fields: { _csrf: csrf }, jar: { mp_csrf: other.mp_csrf ?? '' } }, // another visitor's cookie
        { fields: { _csrf: csrf }, jar: { mp_csrf: `${jar.mp_csrf}x` } }, // tampered cookie
      ];
      for (const [i, attempt] of attempts.entries()) {
        const res = await rt.app.inject({
          method: 'POST',
          url: path,
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            cookie: cookieHeader(attempt.jar),
          },
          payload: new URLSearchParams(attempt.fields).toString(),
        });
        expect(res.statusCode, `attempt ${i}`).toBe(403);
        expect(res.body).not.toContain('Your email is confirmed');
      }
      expect(await snapshot(rt)).toEqual(before);
      expect(await isVerified(rt, email)).toBe(false);

      // The genuine form still works afterwards.
      const ok = await postForm(rt, path, { _csrf: csrf }, jar);
      expect(ok.body).toContain('Your email is confirmed');
    });

    it('refuses a cross-site sign-up form post without a token', async () => {
      const email = address('csrfsignup');
      const res = await rt.app.inject({
        method: 'POST',
        url: '/signup',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ email, password: PASSWORD }).toString(),
      });
      expect(res.statusCode).toBe(403);
      const users = await rt.db.kysely
        .selectFrom('users')
        .select('id')
        .where('email_normalized', '=', email)
        .execute();
      expect(users).toHaveLength(0);
    });
  });

  describe('confirming through the API with the token', () => {
    it('answers verified, then already_verified', async () => {
      const email = address('apitoken');
      const mail = await signUp(rt, email);
      const token = tokenOf(mail.verification.url);
      const first = await apiVerify(rt, { token });
      expect(first.statusCode).toBe(200);
      expect(first.json()).toEqual({ status: 'verified' });
      expect(await isVerified(rt, email)).toBe(true);
      const second = await apiVerify(rt, { token });
      expect(second.statusCode).toBe(200);
      expect(second.json()).toEqual({ status: 'already_verified' });
    });

    it('answers 400 token_invalid for a bad token', async () => {
      for (const token of ['A'.repeat(43), 'short', '', `${'B'.repeat(42)}!`]) {
        const res = await apiVerify(rt, { token });
        expect(res.statusCode, token).toBe(400);
        expect(res.json()).toEqual({
          error: { code: 'token_invalid', message: expect.any(String) },
        });
      }
    });

    it('answers already_verified for the link after the code was used', async () => {
      const email = address('codefirst');
      const mail = await signUp(rt, email);
      expect((await apiVerify(rt, { email, code: mail.verification.code })).json()).toEqual({
        status: 'verified',
      });
      const res = await apiVerify(rt, { token: tokenOf(mail.verification.url) });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ status: 'already_verified' });
    });
  });

  describe('an expired link', () => {
    it('expires after one hour: 410 token_expired', async () => {
      const email = address('expiry');
      const mail = await signUp(rt, email);
      const token = tokenOf(mail.verification.url);
      rt.clock.advance(HOUR - 1);
      expect((await getPage(rt, `/verify/${token}`)).statusCode).toBe(200);
      rt.clock.advance(1);
      const res = await apiVerify(rt, { token });
      expect(res.statusCode).toBe(410);
      expect(res.json()).toEqual({ error: { code: 'token_expired', message: expect.any(String) } });
      expect(await isVerified(rt, email)).toBe(false);
    });

    it('offers a one-click "Send a new link" that mails the same address', async () => {
      const email = address('expiredpage');
      const mail = await signUp(rt, email);
      const token = tokenOf(mail.verification.url);
      rt.clock.advance(HOUR + 1);

      const jar: Jar = {};
      const page = await getPage(rt, `/verify/${token}`, jar);
      expect(page.statusCode).toBe(410);
      expect(page.body).toContain('This link has expired');
      expect(page.body).toContain('<form method="post" action="/verify/resend">');
      expect(page.body).toContain(`<input type="hidden" name="token" value="${token}"/>`);
      expect(page.body).toMatch(/<button type="submit"[^>]*>Send a new link<\/button>/);
      // The page does not reveal whose link it was.
      expect(page.body).not.toContain(email);
      expect(page.body).not.toContain(email.split('@')[0]);

      const since = latestId(rt, email);
      const sent = await postForm(rt, '/verify/resend', { _csrf: csrfOf(page.body), token }, jar);
      expect(sent.statusCode).toBe(200);
      expect(sent.body).toContain('Check your inbox');
      expect(sent.body).not.toContain(email);

      const fresh = await rt.mailTo(email, { since });
      expect(fresh.subject).toBe('Confirm your email address for Mailproof');
      const freshToken = tokenOf(fresh.verification.url);
      expect(freshToken).not.toBe(token);
      expect((await apiVerify(rt, { token: freshToken })).json()).toEqual({ status: 'verified' });
    });

    it('confirming an expired link on the page answers 410 with the same offer', async () => {
      const email = address('expiredpost');
      const mail = await signUp(rt, email);
      const path = pathOf(mail.verification.url ?? '');
      const jar: Jar = {};
      const page = await getPage(rt, path, jar);
      rt.clock.advance(HOUR);
      const res = await postForm(rt, path, { _csrf: csrfOf(page.body) }, jar);
      expect(res.statusCode).toBe(410);
      expect(res.body).toContain('This link has expired');
      expect(res.body).toContain(`name="token" value="${tokenOf(mail.verification.url)}"`);
      expect(await isVerified(rt, email)).toBe(false);
    });
  });

  describe('confirming with the code', () => {
    it('verifies with the right code, whatever the case of the address', async () => {
      const email = address('code');
      const mail = await signUp(rt, email);
      const code = mail.verification.code ?? '';
      const res = await apiVerify(rt, {
        email: ` ${email.toUpperCase()} `,
        code: `${code.slice(0, 4)} ${code.slice(4)}`,
      });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ status: 'verified' });
      expect(await isVerified(rt, email)).toBe(true);
      expect((await apiVerify(rt, { email, code })).json()).toEqual({
        status: 'already_verified',
      });
    });

    it('answers 400 code_invalid for a wrong code, and for an unknown address', async () => {
      const email = address('wrongcode');
      const mail = await signUp(rt, email);
      const wrong = await apiVerify(rt, { email, code: wrongCode(mail.verification.code) });
      expect(wrong.statusCode).toBe(400);
      expect(wrong.json()).toEqual({
        error: { code: 'code_invalid', message: expect.any(String) },
      });
      const unknown = await apiVerify(rt, {
        email: address('nobody'),
        code: mail.verification.code,
      });
      expect(unknown.statusCode).toBe(400);
      expect(unknown.body).toBe(wrong.body);
      expect(await isVerified(rt, email)).toBe(false);
    });

    it('answers too_many_attempts after 5 wrong codes, even for the right code', async () => {
      const email = address('attempts');
      const unknown = address('attempts-nobody');
      const mail = await signUp(rt, email);
      const wrong = wrongCode(mail.verification.code);
      // Wrong codes get the answer an address without any sign-up gets, before the limit and
      // after it: guessing cannot tell that an address has a pending sign-up.
      for (let i = 1; i <= 7; i += 1) {
        const res = await apiVerify(rt, { email, code: wrong });
        const nobody = await apiVerify(rt, { email: unknown, code: wrong });
        expect(res.statusCode).toBe(400);
        expect(res.json()).toEqual(nobody.json());
        expect(res.json()).toMatchObject({ error: { code: 'code_invalid' } });
      }
      // Whoever has the right code learns why it no longer works.
      const right = await apiVerify(rt, { email, code: mail.verification.code });
      expect(right.statusCode).toBe(400);
      expect(right.json()).toMatchObject({ error: { code: 'too_many_attempts' } });
      expect(await isVerified(rt, email)).toBe(false);
      // The link in the same message still works.
      expect((await apiVerify(rt, { token: tokenOf(mail.verification.url) })).json()).toEqual({
        status: 'verified',
      });
    });

    it('answers a wrong code for an expired secret as for an unknown address', async () => {
      const email = address('expiredguess');
      const mail = await signUp(rt, email);
      rt.clock.advance(10 * MINUTE);
      const wrong = wrongCode(mail.verification.code);
      const guess = await apiVerify(rt, { email, code: wrong });
      const nobody = await apiVerify(rt, { email: address('expiredguess-nobody'), code: wrong });
      expect(guess.statusCode).toBe(400);
      expect(guess.json()).toEqual(nobody.json());
      const right = await apiVerify(rt, { email, code: mail.verification.code });
      expect(right.statusCode).toBe(410);
      expect(right.json()).toMatchObject({ error: { code: 'token_expired' } });
    });

    it('expires the code after 10 minutes while the link still works', async () => {
      const early = address('codeearly');
      const late = address('codelate');
      const earlyMail = await signUp(rt, early);
      const lateMail = await signUp(rt, late);
      rt.clock.advance(10 * MINUTE - 1);
      expect(
        (await apiVerify(rt, { email: early, code: earlyMail.verification.code })).json(),
      ).toEqual({ status: 'verified' });
      rt.clock.advance(1);
      const res = await apiVerify(rt, { email: late, code: lateMail.verification.code });
      expect(res.statusCode).toBe(410);
      expect(res.json()).toMatchObject({ error: { code: 'token_expired' } });
      expect(await isVerified(rt, late)).toBe(false);
      expect((await getPage(rt, pathOf(lateMail.verification.url ?? ''))).statusCode).toBe(200);
    });

    it('works on the code page, with errors next to the field', async () => {
      const email = address('codepage');
      const mail = await signUp(rt, email);
      const jar: Jar = {};
      const page = await getPage(rt, `/verify?email=${encodeURIComponent(email)}`, jar);
      expect(page.statusCode).toBe(200);
      expect(page.body).toMatch(new RegExp(`<input id="field-email"[^>]*value="${email}"`));

      const wrong = await postForm(
        rt,
        '/verify',
        { _csrf: csrfOf(page.body), email, code: wrongCode(mail.verification.code) },
        jar,
      );
      expect(wrong.statusCode).toBe(400);
      expect(wrong.body).toMatch(
        /<p class="error" id="field-code-error">That code is not right[^<]*<\/p><input id="field-code"[^>]*aria-invalid="true"/,
      );
      const right = await postForm(
        rt,
        '/verify',
        { _csrf: csrfOf(wrong.body), email, code: mail.verification.code ?? '' },
        jar,
      );
      expect(right.statusCode).toBe(200);
      expect(right.body).toContain('Your email is confirmed');
      expect(await isVerified(rt, email)).toBe(true);
    });
  });

  describe('resending', () => {
    it('answers 202 pending for known and unknown addresses alike', async () => {
      const known = address('resendknown');
      const first = await signUp(rt, known);
      const unknown = address('resendunknown');
      const forKnown = await apiResend(rt, known);
      const forUnknown = await apiResend(rt, unknown);
      expect(forKnown.statusCode).toBe(202);
      expect(forKnown.json()).toEqual({ status: 'pending' });
      expect(forUnknown.statusCode).toBe(202);
      expect(forUnknown.body).toBe(forKnown.body);

      const second = await rt.mailTo(known, { since: first.id });
      expect(tokenOf(second.verification.url)).not.toBe(tokenOf(first.verification.url));
      const queuedForUnknown = await rt.db.kysely
        .selectFrom('outbox')
        .select('id')
        .where('to_address', '=', unknown)
        .execute();
      expect(queuedForUnknown).toHaveLength(0);
    });

    it('sends nothing to an address that is already verified', async () => {
      const email = address('resendverified');
      const mail = await signUp(rt, email);
      await apiVerify(rt, { token: tokenOf(mail.verification.url) });
      const res = await apiResend(rt, email);
      expect(res.statusCode).toBe(202);
      expect(res.json()).toEqual({ status: 'pending' });
      const rows = await rt.db.kysely
        .selectFrom('outbox')
        .select('id')
        .where('to_address', '=', email)
        .execute();
      expect(rows).toHaveLength(1);
    });

    it('makes the older link and code stop working', async () => {
      const email = address('resendnewer');
      const first = await signUp(rt, email);
      expect((await apiResend(rt, email)).statusCode).toBe(202);
      const second = await rt.mailTo(email, { since: first.id });
      const old = await apiVerify(rt, { token: tokenOf(first.verification.url) });
      expect(old.statusCode).toBe(400);
      expect(old.json()).toMatchObject({ error: { code: 'token_invalid' } });
      expect((await getPage(rt, pathOf(first.verification.url ?? ''))).statusCode).toBe(400);
      if (first.verification.code !== second.verification.code) {
        const oldCode = await apiVerify(rt, { email, code: first.verification.code });
        expect(oldCode.json()).toMatchObject({ error: { code: 'code_invalid' } });
      }
      expect(await isVerified(rt, email)).toBe(false);
      expect((await apiVerify(rt, { token: tokenOf(second.verification.url) })).json()).toEqual({
        status: 'verified',
      });
    });

    it('limits a second resend for the same address: 429 with Retry-After', async () => {
      for (const email of [address('limited'), address('limitedunknown')]) {
        expect((await apiResend(rt, email)).statusCode).toBe(202);
        const res = await apiResend(rt, email.toUpperCase());
        expect(res.statusCode).toBe(429);
        const retryAfter = res.headers['retry-after'];
        expect(retryAfter).toMatch(/^\d+$/);
        expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
        expect(Number(retryAfter)).toBeLessThanOrEqual(60);
        expect(res.json()).toMatchObject({
          error: {
            code: 'rate_limited',
            message: expect.stringContaining(String(retryAfter)),
            retryAfterSeconds: Number(retryAfter),
          },
        });
      }
      // Another address is not held back.
      expect((await apiResend(rt, address('limitedother'))).statusCode).toBe(202);
    });

    it('shows the wait on the page when limited', async () => {
      const email = address('limitedpage');
      await signUp(rt, email);
      const jar: Jar = {};
      const page = await getPage(rt, '/verify/resend', jar);
      const first = await postForm(rt, '/verify/resend', { _csrf: csrfOf(page.body), email }, jar);
      expect(first.statusCode).toBe(200);
      const second = await postForm(rt, '/verify/resend', { _csrf: csrfOf(page.body), email }, jar);
      expect(second.statusCode).toBe(429);
      expect(second.headers['retry-after']).toMatch(/^\d+$/);
      expect(second.body).toMatch(/You can try again in \d+ (seconds?|minute)/);
    });

    it('answers 400 for a malformed address', async () => {
      const res = await apiResend(rt, 'not an address');
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: { code: 'email_invalid' } });
    });
  });
});

describe('GET has no side effects', () => {
  it('opening every link of every message changes no table', async () => {
    const rt = await createTestRuntime();
    try {
      const pending = address('scan-pending');
      const verified = address('scan-verified');
      const expired = address('scan-expired');
      await signUp(rt, expired);
      rt.clock.advance(HOUR + 1);
      await signUp(rt, pending);
      const mail = await signUp(rt, verified);
      await apiVerify(rt, { token: tokenOf(mail.verification.url) });
      // A second sign-up of a verified address sends the "someone tried" note with its own link.
      await rt.app.inject({
        method: 'POST',
        url: '/api/signup',
        payload: { email: verified, password: PASSWORD },
      });
      await rt.mailTo(verified, { since: mail.id });
      await outboxIdle(rt);
      // Links are opened both by a stranger (a mail scanner) and by the logged-in owner.
      const login = await rt.app.inject({
        method: 'POST',
        url: '/api/login',
        payload: { email: pending, password: PASSWORD },
      });
      expect(login.statusCode).toBe(200);
      const session = remember(login, {});

      const messages = (rt.inbox?.list({ limit: 500 }) ?? []).map((m) => rt.inbox?.get(m.id));
      expect(messages).toHaveLength(4);
      const links = [...new Set(messages.flatMap((m) => m?.links ?? []))];
      expect(links.length).toBeGreaterThanOrEqual(4);
      expect(links.filter((link) => link.includes('/verify/'))).toHaveLength(3);

      const before = await snapshot(rt);
      for (const link of links) {
        expect(link.startsWith(`${BASE_URL}/`), link).toBe(true);
        for (const jar of [{}, session]) {
          for (const method of ['GET', 'HEAD', 'GET'] as const) {
            const res = await rt.app.inject({
              method,
              url: pathOf(link),
              headers: { cookie: cookieHeader(jar) },
            });
            expect(res.statusCode, `${method} ${link}`).toBeLessThan(500);
          }
        }
      }
      expect(await snapshot(rt)).toEqual(before);
      const states = await rt.db.kysely
        .selectFrom('users')
        .select(['email', 'email_verified_at'])
        .execute();
      expect(states.filter((u) => u.email_verified_at !== null).map((u) => u.email)).toEqual([
        verified,
      ]);
    } finally {
      await rt.close();
    }
  });
});

describe('with RATE_LIMITS=off', () => {
  it('never limits resends or code attempts', async () => {
    const rt = await createTestRuntime({ env: { RATE_LIMITS: 'off' } });
    try {
      const email = address('nolimits');
      const first = await signUp(rt, email);
      let since = first.id;
      for (let i = 0; i < 4; i += 1) {
        const res = await apiResend(rt, email);
        expect(res.statusCode).toBe(202);
        since = (await rt.mailTo(email, { since })).id;
      }
      for (let i = 0; i < 70; i += 1) {
        const res = await apiVerify(rt, { email: address('guess'), code: '12345678' });
        expect(res.statusCode).toBe(400);
      }
    } finally {
      await rt.close();
    }
  });

  it('is needed: with limits on, code guesses from one client are limited', async () => {
    const rt = await createTestRuntime();
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 61; i += 1) {
        statuses.push(
          (await apiVerify(rt, { email: address('guess'), code: '12345678' })).statusCode,
        );
      }
      expect(statuses.slice(0, 60)).toEqual(Array(60).fill(400));
      expect(statuses[60]).toBe(429);
    } finally {
      await rt.close();
    }
  });
});
