// §2 Password reset: /forgot and POST /api/password/forgot answer alike for any address; the
// link (GET changes nothing) sets a new password once, within RESET_LINK_TTL, for the address the
// account has; every session ends, the owner is told, nobody is logged in.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { verifyPassword } from '../../src/accounts/password.ts';
import { address, csrfOf, getPage, type Jar, pathOf, postForm, tokenOf } from '../support/forms.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';
import {
  api,
  expectNoStackTrace,
  lastMailId,
  logIn,
  mailAfter,
  me,
  NEW_PASSWORD,
  outboxDrained,
  PASSWORD,
  postAccount,
  sessionCount,
  signUp,
  submitForm,
  templateOf,
  userRow,
} from './helpers.ts';

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

function forgot(email: unknown) {
  return rt.app.inject({ method: 'POST', url: '/api/password/forgot', payload: { email } });
}

function reset(token: string, password = NEW_PASSWORD) {
  return rt.app.inject({
    method: 'POST',
    url: '/api/password/reset',
    payload: { token, password },
  });
}

/** Asks for a reset of `email` and returns the emailed link. */
async function resetLinkFor(email: string): Promise<string> {
  const since = await lastMailId(rt, email);
  expect((await forgot(email)).statusCode).toBe(202);
  const mail = await mailAfter(rt, email, since);
  expect(templateOf(mail)).toBe('password-reset');
  expect(mail.verification.url).toMatch(/^http:\/\/mailproof\.test\/reset\/[A-Za-z0-9_-]{43}$/);
  return mail.verification.url ?? '';
}

describe('asking for a reset', () => {
  it('answers 202 pending alike for a known, an unverified and an unknown address', async () => {
    const known = address('known');
    const unverified = address('unverified');
    await signUp(rt, known);
    await signUp(rt, unverified, { verify: false });
    const answers = [];
    for (const email of [known, unverified, address('unknown'), known.toUpperCase()]) {
      const res = await forgot(email);
      answers.push({ status: res.statusCode, body: res.body, type: res.headers['content-type'] });
    }
    expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBe(1);
    expect(answers[0]).toMatchObject({ status: 202, body: '{"status":"pending"}' });
  });

  it('mails a link to an existing account only; an unknown address gets nothing', async () => {
    const known = address('mailed');
    await signUp(rt, known);
    await resetLinkFor(known);
    const unknown = address('nobody');
    await forgot(unknown);
    await outboxDrained(rt);
    expect(await rt.inbox?.waitForLatest(unknown, 200)).toBeNull();
    const rows = await rt.db.kysely
      .selectFrom('outbox')
      .select('id')
      .where('to_address', '=', unknown)
      .execute();
    expect(rows).toHaveLength(0);
  });

  it('stores nothing of an unknown address but a hash', async () => {
    const unknown = address('hashed');
    await forgot(unknown);
    const rows = await rt.db.kysely
      .selectFrom('verifications')
      .select(['target', 'user_id'])
      .where('purpose', '=', 'reset')
      .where('user_id', 'is', null)
      .execute();
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(row.target).toMatch(/^none:[0-9a-f]{64}$/);
  });

  it('refuses a malformed address with 400 email_invalid, and wrong types with 400', async () => {
    const bad = await forgot('not an address');
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: { code: 'email_invalid', field: 'email' } });
    for (const payload of [{}, { email: 42 }, { email: null }, { email: ['a@b.c'] }]) {
      const res = await rt.app.inject({ method: 'POST', url: '/api/password/forgot', payload });
      expect(res.statusCode).toBe(400);
      expectNoStackTrace(res.body);
    }
  });

  it('works from the /forgot page with the same page for any address', async () => {
    const known = address('pageknown');
    await signUp(rt, known);
    const since = await lastMailId(rt, known);
    const pages = [];
    for (const email of [known, address('pageunknown')]) {
      const res = await submitForm(rt, '/forgot', '/forgot', { email });
      expect(res.statusCode).toBe(200);
      // The CSRF token differs per page; everything else is the same.
      pages.push(res.body.replace(/name="_csrf" value="[^"]+"/g, ''));
    }
    expect(pages[0]).toBe(pages[1]);
    expect(pages[0]).toContain('If an account uses that address');
    expect(templateOf(await mailAfter(rt, known, since))).toBe('password-reset');
  });

  it('shows the error next to the field for a malformed address on the page', async () => {
    const res = await submitForm(rt, '/forgot', '/forgot', { email: 'nope' });
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain('id="field-email-error"');
    expect(res.body).toContain('aria-invalid="true"');
  });

  it('needs the CSRF token on the page', async () => {
    const res = await postForm(rt, '/forgot', { email: address('csrf') }, {});
    expect(res.statusCode).toBe(403);
  });
});

describe('the reset link', () => {
  it('opens a form on GET and changes nothing, however often it is opened', async () => {
    const email = address('get');
    await signUp(rt, email);
    const link = await resetLinkFor(email);
    const before = await rt.db.kysely.selectFrom('verifications').selectAll().execute();
    for (let i = 0; i < 3; i += 1) {
      const page = await getPage(rt, pathOf(link));
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('Choose a new password');
      expect(page.body).toContain('autocomplete="new-password"');
      expect(page.body).toContain(`action="${pathOf(link)}"`);
    }
    const after = await rt.db.kysely.selectFrom('verifications').selectAll().execute();
    expect(after).toEqual(before);
    expect((await reset(tokenOf(link))).statusCode).toBe(200);
  });

  it('sets the new password through the API, once; logs nobody in; ends every session', async () => {
    const email = address('api');
    await signUp(rt, email);
    const first = await logIn(rt, email);
    const second = await logIn(rt, email);
    const link = await resetLinkFor(email);

    const res = await reset(tokenOf(link));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'password_reset' });
    expect(res.cookies.find((c) => c.name === 'mp_session')).toBeUndefined();

    const user = await userRow(rt, email);
    expect(await verifyPassword(user?.password_hash ?? '', NEW_PASSWORD)).toBe(true);
    expect(await sessionCount(rt, user?.id ?? '')).toBe(0);
    expect((await me(rt, first)).statusCode).toBe(401);
    expect((await me(rt, second)).statusCode).toBe(401);
    // The old password no longer works; the new one does.
    const old = await api(rt, 'POST', '/api/login', {}, { email, password: PASSWORD });
    expect(old.statusCode).toBe(401);
    await logIn(rt, email, NEW_PASSWORD);

    // Single-use: the same link again is refused, and its page says so.
    const again = await reset(tokenOf(link), 'another fine long passphrase');
    expect(again.statusCode).toBe(410);
    expect(again.json()).toMatchObject({ error: { code: 'token_used' } });
    const page = await getPage(rt, pathOf(link));
    expect(page.statusCode).toBe(410);
    expect(page.body).toContain('This link was already used');
  });

  it('tells the owner by email that the password was changed', async () => {
    const email = address('notice');
    await signUp(rt, email);
    const link = await resetLinkFor(email);
    const since = await lastMailId(rt, email);
    await reset(tokenOf(link));
    const notice = await mailAfter(rt, email, since);
    expect(templateOf(notice)).toBe('password-changed');
    expect(notice.subject).toMatch(/password was changed/);
    expect(notice.links).toContain('http://mailproof.test/forgot');
  });

  it('works from the page: the form posts back to the link and shows the outcome', async () => {
    const email = address('page');
    await signUp(rt, email);
    const jar: Jar = {};
    await logIn(rt, email, PASSWORD, jar);
    const link = await resetLinkFor(email);
    const form = await getPage(rt, pathOf(link), jar);
    const res = await postForm(
      rt,
      pathOf(link),
      { _csrf: csrfOf(form.body), password: NEW_PASSWORD },
      jar,
    );
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('Your password has been changed');
    // This browser's session belonged to the account: its cookie is cleared too.
    expect(jar.mp_session).toBe('');
    expect(res.body).toContain('href="/login"');
  });

  it('refuses a weak password and keeps the link working', async () => {
    const email = address('weak');
    await signUp(rt, email);
    const link = await resetLinkFor(email);
    for (const password of ['short', '1qaz2wsx3edc4rfv', email, 'Mailproof-2024-!!!']) {
      const res = await reset(tokenOf(link), password);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toMatch(/^password_/);
      expect(res.json().error.field).toBe('password');
    }
    const jar: Jar = {};
    const form = await getPage(rt, pathOf(link), jar);
    const page = await postForm(rt, pathOf(link), { _csrf: csrfOf(form.body), password: 'x' }, jar);
    expect(page.statusCode).toBe(400);
    expect(page.body).toContain('id="field-password-error"');
    expect((await reset(tokenOf(link))).statusCode).toBe(200);
  });

  it('expires after RESET_LINK_TTL (30 minutes by default)', async () => {
    const email = address('expired');
    await signUp(rt, email);
    const link = await resetLinkFor(email);
    rt.clock.advance(30 * 60_000 + 1);
    const page = await getPage(rt, pathOf(link));
    expect(page.statusCode).toBe(410);
    expect(page.body).toContain('This link has expired');
    expect(page.body).toContain('href="/forgot"');
    const res = await reset(tokenOf(link));
    expect(res.statusCode).toBe(410);
    expect(res.json()).toMatchObject({ error: { code: 'token_expired' } });
  });

  it('still works just before it expires', async () => {
    const email = address('justintime');
    await signUp(rt, email);
    const link = await resetLinkFor(email);
    rt.clock.advance(30 * 60_000 - 1000);
    expect((await reset(tokenOf(link))).statusCode).toBe(200);
  });

  it('is replaced by a newer link', async () => {
    const email = address('newer');
    await signUp(rt, email);
    const older = await resetLinkFor(email);
    rt.limits.reset();
    const newer = await resetLinkFor(email);
    expect((await reset(tokenOf(older))).statusCode).toBe(400);
    expect((await reset(tokenOf(newer))).statusCode).toBe(200);
  });

  it('dies when the password is changed on the account page', async () => {
    const email = address('changed');
    await signUp(rt, email);
    const link = await resetLinkFor(email);
    const jar = await logIn(rt, email);
    const changed = await postAccount(rt, jar, {
      intent: 'change_password',
      currentPassword: PASSWORD,
      newPassword: NEW_PASSWORD,
    });
    expect(changed.statusCode).toBe(303);
    const res = await reset(tokenOf(link), 'another fine long passphrase');
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: { code: 'token_invalid' } });
  });

  it('dies when the address changes', async () => {
    const email = address('moved');
    const next = address('moved-to');
    await signUp(rt, email);
    const link = await resetLinkFor(email);
    const jar = await logIn(rt, email);
    const asked = await api(rt, 'POST', '/api/email/change', jar, {
      newEmail: next,
      password: PASSWORD,
    });
    expect(asked.statusCode).toBe(202);
    const confirm = await rt.mailTo(next);
    const done = await api(
      rt,
      'POST',
      '/api/email/confirm',
      {},
      {
        token: tokenOf(confirm.verification.url),
      },
    );
    expect(done.json()).toMatchObject({ status: 'changed' });
    expect((await reset(tokenOf(link))).statusCode).toBe(400);
    expect((await getPage(rt, pathOf(link))).statusCode).toBe(400);
  });

  it('dies when a new sign-up replaces the password of an unconfirmed account', async () => {
    const email = address('resignup');
    await signUp(rt, email, { verify: false });
    const link = await resetLinkFor(email);
    const again = await api(
      rt,
      'POST',
      '/api/signup',
      {},
      {
        email,
        password: 'a stranger signs up again',
      },
    );
    expect(again.statusCode).toBe(202);
    expect((await reset(tokenOf(link))).statusCode).toBe(400);
  });

  it('proves the address of an unverified account', async () => {
    const email = address('unverified-reset');
    await signUp(rt, email, { verify: false });
    const link = await resetLinkFor(email);
    expect((await reset(tokenOf(link))).statusCode).toBe(200);
    expect((await userRow(rt, email))?.email_verified_at).toBe(rt.clock.now());
  });

  it('answers unknown, malformed and cross-purpose tokens with 400 token_invalid', async () => {
    const email = address('crossed');
    const signup = await signUp(rt, email, { verify: false });
    // A sign-up token is no reset token: hashes are bound to their purpose.
    for (const token of [tokenOf(signup.verification.url), 'A'.repeat(43), 'short', '']) {
      const res = await reset(token);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({
        error: { code: expect.stringMatching(/token_invalid|invalid_request/) },
      });
    }
    const page = await getPage(rt, `/reset/${'B'.repeat(43)}`);
    expect(page.statusCode).toBe(400);
    expect(page.body).toContain('This link is not valid');
  });
});
