// §2 Change of email: the current password is needed; a link and a code go to the new address,
// which replaces the old one only once confirmed; the old address is told at once (with a way to
// secure the account); older secrets for the old address stop working; an address that belongs
// to another account is never revealed to the requester.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { address, csrfOf, getPage, type Jar, pathOf, postForm, tokenOf } from '../support/forms.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';
import {
  api,
  expectNoStackTrace,
  lastMailId,
  logIn,
  mailAfter,
  me,
  outboxDrained,
  PASSWORD,
  postAccount,
  signUp,
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

function askChange(jar: Jar, newEmail: unknown, password: unknown = PASSWORD) {
  return api(rt, 'POST', '/api/email/change', jar, { newEmail, password });
}

function confirmToken(token: string, jar: Jar = {}) {
  return api(rt, 'POST', '/api/email/confirm', jar, { token });
}

/** A verified account, logged in. */
async function account(label: string): Promise<{ email: string; jar: Jar }> {
  const email = address(label);
  await signUp(rt, email);
  return { email, jar: await logIn(rt, email) };
}

describe('asking for the change', () => {
  it('sends a link and a code to the new address and a notice to the old one', async () => {
    const { email, jar } = await account('old');
    const next = address('new');
    const since = await lastMailId(rt, email);
    const res = await askChange(jar, next);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ status: 'pending' });

    const verify = await rt.mailTo(next);
    expect(templateOf(verify)).toBe('email-change-verify');
    expect(verify.verification.url).toMatch(
      /^http:\/\/mailproof\.test\/account\/email\/confirm\/[A-Za-z0-9_-]{43}$/,
    );
    expect(verify.verification.code).toMatch(/^\d{8}$/);

    const notice = await mailAfter(rt, email, since);
    expect(templateOf(notice)).toBe('email-change-notice');
    expect(notice.text).toContain(next);
    expect(notice.links).toContain('http://mailproof.test/forgot');
    // Nothing changes before the new address is confirmed.
    expect((await userRow(rt, email))?.email).toBe(email);
  });

  it('renews the session id once the password is typed again (ASVS 7.2.4)', async () => {
    const { jar } = await account('rotate');
    const before = { ...jar };
    expect((await askChange(jar, address('rotated'))).statusCode).toBe(202);
    expect(jar.mp_session).not.toBe(before.mp_session);
    expect((await me(rt, before)).statusCode).toBe(401);
    expect((await me(rt, jar)).statusCode).toBe(200);
  });

  it('needs the current password, and says which field is wrong', async () => {
    const { jar } = await account('wrongpw');
    const res = await askChange(jar, address('never'), 'not my password at all');
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({
      error: { code: 'current_password_invalid', field: 'password' },
    });
  });

  it('refuses a malformed address and the current one', async () => {
    const { email, jar } = await account('same');
    const bad = await askChange(jar, 'not an address');
    expect(bad.json()).toMatchObject({ error: { code: 'email_invalid', field: 'newEmail' } });
    const same = await askChange(jar, `  ${email.toUpperCase()} `);
    expect(same.statusCode).toBe(400);
    expect(same.json()).toMatchObject({ error: { code: 'email_unchanged' } });
  });

  it('needs a session: 401 without one', async () => {
    const res = await askChange({}, address('anon'));
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ error: { code: 'unauthenticated' } });
  });

  it('answers alike when the new address already has an account, which gets a note instead', async () => {
    const { email: takenEmail } = await account('taken');
    const { email, jar } = await account('asker');
    const free = address('free');

    const takenSince = await lastMailId(rt, takenEmail);
    const toTaken = await askChange(jar, takenEmail);
    const pageTaken = await getPage(rt, '/account', jar);
    rt.limits.reset();
    const toFree = await askChange(jar, free);
    const pageFree = await getPage(rt, '/account', jar);

    expect(toTaken.statusCode).toBe(toFree.statusCode);
    expect(toTaken.body).toBe(toFree.body);
    // The account page shows a pending change either way.
    expect(pageTaken.body).toContain(`We sent a link and a code to <strong>${takenEmail}</strong>`);
    expect(pageFree.body).toContain(`We sent a link and a code to <strong>${free}</strong>`);

    const note = await mailAfter(rt, takenEmail, takenSince);
    expect(templateOf(note)).toBe('email-change-taken');
    expect(note.verification.code).toBeNull();
    expect(note.text).not.toContain(email);
    // The old address is told in both cases.
    await outboxDrained(rt);
    const notices = (rt.inbox?.list({ to: email, limit: 50 }) ?? []).filter((m) =>
      m.subject.includes('change the email address'),
    );
    expect(notices).toHaveLength(2);
  });

  it('replaces an earlier pending change: only the newest link works', async () => {
    const { email, jar } = await account('twice');
    const first = address('first');
    const second = address('second');
    await askChange(jar, first);
    const firstMail = await rt.mailTo(first);
    await askChange(jar, second);
    const secondMail = await rt.mailTo(second);
    expect((await confirmToken(tokenOf(firstMail.verification.url))).statusCode).toBe(400);
    const done = await confirmToken(tokenOf(secondMail.verification.url));
    expect(done.json()).toEqual({ status: 'changed', email: second });
    expect(await userRow(rt, email)).toBeUndefined();
  });
});

describe('confirming', () => {
  it('by link: GET shows a button and changes nothing; POST changes the address', async () => {
    const { email, jar } = await account('link');
    const next = address('linked');
    await askChange(jar, next);
    const mail = await rt.mailTo(next);
    const path = pathOf(mail.verification.url ?? '');

    const browser: Jar = {};
    for (let i = 0; i < 2; i += 1) {
      const page = await getPage(rt, path, browser);
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('Confirm your new email address');
      expect(page.body).toContain(`action="${path}"`);
    }
    expect((await userRow(rt, email))?.email).toBe(email);

    const form = await getPage(rt, path, browser);
    const res = await postForm(rt, path, { _csrf: csrfOf(form.body) }, browser);
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('Your email address has changed');
    const user = await userRow(rt, next);
    expect(user?.email).toBe(next);
    expect(user?.email_verified_at).toBe(rt.clock.now());
    expect(await userRow(rt, email)).toBeUndefined();

    // The session stays; /api/me shows the new address. Logging in uses the new address.
    expect((await me(rt, jar)).json()).toEqual({ email: next, emailVerified: true });
    await logIn(rt, next);
    const old = await api(rt, 'POST', '/api/login', {}, { email, password: PASSWORD });
    expect(old.statusCode).toBe(401);

    // A second click says it is done.
    const again = await postForm(rt, path, { _csrf: csrfOf(form.body) }, browser);
    expect(again.body).toContain('This change is already done');
    expect((await confirmToken(tokenOf(mail.verification.url))).json()).toEqual({
      status: 'already_changed',
      email: next,
    });
  });

  it('by code on the account page', async () => {
    const { email, jar } = await account('code');
    const next = address('coded');
    const asked = await postAccount(rt, jar, {
      intent: 'change_email',
      newEmail: next,
      password: PASSWORD,
    });
    expect(asked.statusCode).toBe(303);
    expect(asked.headers.location).toBe('/account');
    const { code } = (await rt.mailTo(next)).verification;

    const wrong = await postAccount(rt, jar, { intent: 'confirm_email_code', code: '0000 0000' });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.body).toContain('That code is not right');
    expect(wrong.body).toContain('id="field-email-code-error"');

    const res = await postAccount(rt, jar, { intent: 'confirm_email_code', code: code ?? '' });
    expect(res.statusCode).toBe(303);
    const page = await getPage(rt, '/account', jar);
    expect(page.body).toContain(`Your email address is now ${next}.`);
    expect(page.body).toContain(`<dd>${next}</dd>`);
    expect(await userRow(rt, email)).toBeUndefined();
  });

  it('by code through the API, which needs the session; five wrong codes kill it', async () => {
    const { jar } = await account('apicode');
    const next = address('apicoded');
    await askChange(jar, next);
    const { code } = (await rt.mailTo(next)).verification;
    expect((await api(rt, 'POST', '/api/email/confirm', {}, { code })).statusCode).toBe(401);
    for (let i = 0; i < 4; i += 1) {
      const res = await api(rt, 'POST', '/api/email/confirm', jar, { code: '99999999' });
      expect(res.json()).toMatchObject({ error: { code: 'code_invalid' } });
    }
    // A wrong code is only ever code_invalid; the right one, once five were wrong, says why it fails.
    const fifth = await api(rt, 'POST', '/api/email/confirm', jar, { code: '99999999' });
    expect(fifth.json()).toMatchObject({ error: { code: 'code_invalid' } });
    const right = await api(rt, 'POST', '/api/email/confirm', jar, { code });
    expect(right.json()).toMatchObject({ error: { code: 'too_many_attempts' } });
  });

  it('kills older sign-up and reset secrets of the old address', async () => {
    const email = address('oldsecrets');
    const signup = await signUp(rt, email, { verify: false });
    const jar = await logIn(rt, email);
    await api(rt, 'POST', '/api/password/forgot', {}, { email });
    const next = address('newsecrets');
    await askChange(jar, next);
    const mail = await rt.mailTo(next);
    expect((await confirmToken(tokenOf(mail.verification.url))).statusCode).toBe(200);
    const rows = await rt.db.kysely
      .selectFrom('verifications')
      .select('purpose')
      .where('user_id', '=', (await userRow(rt, next))?.id ?? '')
      .execute();
    expect(rows.map((r) => r.purpose)).toEqual(['email_change']);
    const verify = await api(
      rt,
      'POST',
      '/api/verify',
      {},
      {
        token: tokenOf(signup.verification.url),
      },
    );
    expect(verify.statusCode).toBe(400);
  });

  it('says "taken" only to whoever proves the new mailbox, if another account got it first', async () => {
    const { email, jar } = await account('race');
    const contested = address('contested');
    await askChange(jar, contested);
    const mail = await rt.mailTo(contested);
    // Meanwhile someone signs up with the address and confirms it.
    await signUp(rt, contested);
    const res = await confirmToken(tokenOf(mail.verification.url));
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ error: { code: 'email_taken' } });
    expect((await userRow(rt, email))?.email).toBe(email);
  });

  it('expires after EMAIL_CHANGE_LINK_TTL (1 hour by default); the code after 10 minutes', async () => {
    const { jar } = await account('late');
    const next = address('late-new');
    await askChange(jar, next);
    const mail = await rt.mailTo(next);
    rt.clock.advance(10 * 60_000 + 1);
    const late = await api(rt, 'POST', '/api/email/confirm', jar, {
      code: mail.verification.code,
    });
    expect(late.json()).toMatchObject({ error: { code: 'token_expired' } });
    rt.clock.advance(50 * 60_000);
    const page = await getPage(rt, pathOf(mail.verification.url ?? ''));
    expect(page.statusCode).toBe(410);
    expect((await confirmToken(tokenOf(mail.verification.url))).statusCode).toBe(410);
  });

  it('dies when the password changes (the notice says a new password cancels it)', async () => {
    const { email, jar } = await account('cancelled');
    const next = address('cancelled-new');
    await askChange(jar, next);
    const mail = await rt.mailTo(next);
    const since = await lastMailId(rt, email);
    await api(rt, 'POST', '/api/password/forgot', {}, { email });
    const reset = await mailAfter(rt, email, since);
    const done = await api(
      rt,
      'POST',
      '/api/password/reset',
      {},
      {
        token: tokenOf(reset.verification.url),
        password: 'a completely new passphrase',
      },
    );
    expect(done.statusCode).toBe(200);
    expect((await confirmToken(tokenOf(mail.verification.url))).statusCode).toBe(400);
    expect((await userRow(rt, email))?.email).toBe(email);
  });

  it('can be cancelled from the account page', async () => {
    const { jar } = await account('cancel');
    const next = address('cancel-new');
    await askChange(jar, next);
    const mail = await rt.mailTo(next);
    const res = await postAccount(rt, jar, { intent: 'cancel_email_change' });
    expect(res.statusCode).toBe(303);
    const page = await getPage(rt, '/account', jar);
    expect(page.body).toContain('The change of address was cancelled.');
    expect(page.body).not.toContain('We sent a link and a code to');
    expect((await confirmToken(tokenOf(mail.verification.url))).statusCode).toBe(400);
  });

  it('answers bad tokens with 400 and never a stack trace', async () => {
    for (const token of ['A'.repeat(43), 'x', '../../etc/passwd']) {
      const res = await confirmToken(token);
      expect(res.statusCode).toBe(400);
      expectNoStackTrace(res.body);
    }
    const page = await getPage(rt, `/account/email/confirm/${'C'.repeat(43)}`);
    expect(page.statusCode).toBe(400);
    expect(page.body).toContain('This link is not valid');
  });
});

describe('the account page form', () => {
  it('shows errors next to the fields and keeps the typed address', async () => {
    const { jar } = await account('formerr');
    const typed = address('typed');
    const res = await postAccount(rt, jar, {
      intent: 'change_email',
      newEmail: typed,
      password: 'wrong password here',
    });
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain('id="field-email-password-error"');
    expect(res.body).toContain(`value="${typed}"`);
    const bad = await postAccount(rt, jar, {
      intent: 'change_email',
      newEmail: '<script>alert(1)</script>',
      password: PASSWORD,
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('id="field-email-new-error"');
    expect(bad.body).not.toContain('<script>alert(1)</script>');
    expect(bad.body).toContain('&lt;script>alert(1)&lt;/script>');
  });
});
