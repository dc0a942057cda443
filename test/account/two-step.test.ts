// Two-step sign-in (docs/decisions/014; ASVS 6.3.3, 6.4.3, 6.5.1–6.5.5): set up on the account
// page (a wrong code refused, the right one turns it on and shows ten recovery codes once); login
// makes no session until the code (page and API), the challenge lives five minutes and takes five
// wrong codes, wrong codes are limited per account; a recovery code works once; turning it off
// and new codes need the password and a code; a reset asks for the code too and a wrong one does
// not spend the link; deleting the account removes every row; the owner is emailed.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hashSessionId } from '../../src/accounts/session.ts';
import { turnTwoStepOffByOperator } from '../../src/accounts/two-step.ts';
import { cryptoRandom } from '../../src/clock.ts';
import { createLogger } from '../../src/logger.ts';
import {
  address,
  cookieHeader,
  csrfOf,
  getPage,
  type Jar,
  postForm,
  tokenOf,
} from '../support/forms.ts';
import { createTestRuntime, type TestRuntime, testDb } from '../support/runtime.ts';
import {
  api,
  lastMailId,
  logIn,
  mailAfter,
  me,
  NEW_PASSWORD,
  PASSWORD,
  sessionCount,
  setCookies,
  signUp,
  submitForm,
  templateOf,
  userRow,
} from './helpers.ts';

let rt: TestRuntime;
const logLines: string[] = [];

beforeAll(async () => {
  const log = createLogger({ logLevel: 'warn' }, { write: (line: string) => logLines.push(line) });
  rt = await createTestRuntime({ log });
});
afterAll(async () => {
  await rt.close();
});
beforeEach(() => {
  rt.limits.reset();
});

const STEP_MS = 30_000;
const CODE_PATTERN = /^[2-9a-hjkmnp-z]{5}-[2-9a-hjkmnp-z]{5}$/;

/** What the authenticator app shows now (the server's clock is the test's). */
function codeNow(secret: string): string {
  return TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: rt.clock.now() });
}

/** A code of a step not used yet: each code works once, so time first moves to the next step. */
function freshCode(secret: string): string {
  rt.clock.advance(STEP_MS);
  return codeNow(secret);
}

/** Six digits that are none of the codes accepted now. */
function wrongCode(secret: string): string {
  const accepted = [-1, 0, 1].map((d) =>
    TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: rt.clock.now() + d * STEP_MS }),
  );
  return ['000000', '111111', '222222', '333333'].find((c) => !accepted.includes(c)) ?? '444444';
}

interface TwoStepAccount {
  email: string;
  userId: string;
  jar: Jar;
  secret: string;
  recoveryCodes: string[];
}

/** An account with two-step sign-in on (set up through the API), logged in. */
async function twoStepAccount(label: string): Promise<TwoStepAccount> {
  const email = address(label);
  await signUp(rt, email);
  const jar = await logIn(rt, email);
  const setup = await api(rt, 'POST', '/api/two-step/setup', jar);
  expect(setup.statusCode).toBe(200);
  const { secret } = setup.json() as { secret: string };
  const enabled = await api(rt, 'POST', '/api/two-step/enable', jar, {
    password: PASSWORD,
    code: freshCode(secret),
  });
  expect(enabled.statusCode).toBe(200);
  const user = await userRow(rt, email);
  return {
    email,
    userId: user?.id ?? '',
    jar,
    secret,
    recoveryCodes: (enabled.json() as { recoveryCodes: string[] }).recoveryCodes,
  };
}

function apiLogin(email: string, password = PASSWORD) {
  return rt.app.inject({ method: 'POST', url: '/api/login', payload: { email, password } });
}

async function challengeFor(email: string): Promise<string> {
  const res = await apiLogin(email);
  expect(res.statusCode).toBe(200);
  return (res.json() as { challenge: string }).challenge;
}

function answer(challenge: string, code: string) {
  return rt.app.inject({
    method: 'POST',
    url: '/api/login/two-step',
    payload: { challenge, code },
  });
}

/** Logs in on the login page: the jar then holds the challenge cookie. */
async function pageLogin(email: string, jar: Jar = {}): Promise<LightMyRequestResponse> {
  return submitForm(rt, '/login', '/login', { email, password: PASSWORD }, jar);
}

async function postCode(jar: Jar, code: string): Promise<LightMyRequestResponse> {
  return submitForm(rt, '/login/two-step', '/login/two-step', { code }, jar);
}

/** Posts a form of /account/two-step, with its CSRF token, as the browser would. */
async function postTwoStep(jar: Jar, fields: Record<string, string>) {
  const page = await getPage(rt, '/account/two-step', jar);
  return postForm(rt, '/account/two-step', { _csrf: csrfOf(page.body), ...fields }, jar);
}

async function rowsOf(userId: string) {
  const count = async (
    table:
      | 'two_step_totp'
      | 'two_step_enrolments'
      | 'two_step_recovery_codes'
      | 'two_step_challenges',
  ) =>
    (await rt.db.kysely.selectFrom(table).select('user_id').where('user_id', '=', userId).execute())
      .length;
  return {
    totp: await count('two_step_totp'),
    enrolments: await count('two_step_enrolments'),
    recoveryCodes: await count('two_step_recovery_codes'),
    challenges: await count('two_step_challenges'),
  };
}

function expectPrivatePage(res: LightMyRequestResponse) {
  expect(res.headers['content-type']).toMatch(/^text\/html/);
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers['referrer-policy']).toBe('no-referrer');
  const csp = String(res.headers['content-security-policy']);
  expect(csp).toMatch(/(^|;)\s*script-src 'self'(;|$)/);
  expect(csp).not.toContain('unsafe-inline');
  expect(res.body).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/i);
  expect(res.body).not.toMatch(/\sstyle="/i);
  expect(res.body).not.toMatch(/\son[a-z]+="/i);
  // Every input has its own id and a label for it.
  const ids = [...res.body.matchAll(/<input[^>]* id="([^"]+)"/g)].map((m) => m[1]);
  expect(new Set(ids).size).toBe(ids.length);
  for (const id of ids) expect(res.body).toContain(`for="${id}"`);
  // Every form that posts carries the CSRF token.
  const forms = res.body.match(/<form[^>]*method="post"[\s\S]*?<\/form>/g) ?? [];
  for (const form of forms) expect(form).toContain('name="_csrf"');
}

describe('setting it up on the account page', () => {
  it('shows a QR code and the secret; a wrong code is refused, the right one turns it on and shows ten recovery codes once', async () => {
    const email = address('setup');
    await signUp(rt, email);
    const jar = await logIn(rt, email);
    const userId = (await userRow(rt, email))?.id ?? '';

    const account = await getPage(rt, '/account', jar);
    expect(account.body).toMatch(/<span class="badge warn">Off<\/span>/);
    expect(account.body).toContain('Set up two-step sign-in');
    const start = await postForm(
      rt,
      '/account/two-step',
      { _csrf: csrfOf(account.body), intent: 'start' },
      jar,
    );
    expect(start.statusCode).toBe(303);
    expect(start.headers.location).toBe('/account/two-step');

    const setup = await getPage(rt, '/account/two-step', jar);
    expect(setup.statusCode).toBe(200);
    expectPrivatePage(setup);
    // The QR code is inline SVG, not an image URL the CSP would have to allow.
    expect(setup.body).toMatch(/<svg class="qr" [^>]*viewBox="0 0 \d+ \d+"[^>]*role="img"/);
    expect(setup.body).not.toContain('data:image/png');
    const grouped = /id="two-step-secret">([A-Z2-7 ]+)</.exec(setup.body)?.[1] ?? '';
    expect(grouped).toMatch(/^([A-Z2-7]{4} ){7}[A-Z2-7]{4}$/);
    const secret = grouped.replaceAll(' ', '');
    expect(setup.body).toContain(`href="otpauth://totp/`);
    // Reloading shows the same secret (it is kept for this session until confirmed).
    expect((await getPage(rt, '/account/two-step', jar)).body).toContain(grouped);

    const wrong = await postTwoStep(jar, {
      intent: 'confirm',
      password: PASSWORD,
      code: wrongCode(secret),
    });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.body).toContain('id="field-setup-code-error"');
    expect(wrong.body).toContain(grouped);
    const badPassword = await postTwoStep(jar, {
      intent: 'confirm',
      password: 'not my password at all',
      code: codeNow(secret),
    });
    expect(badPassword.statusCode).toBe(400);
    expect(badPassword.body).toContain('id="field-setup-password-error"');
    expect((await rowsOf(userId)).totp).toBe(0);

    const since = await lastMailId(rt, email);
    const before = jar.mp_session ?? '';
    const on = await postTwoStep(jar, {
      intent: 'confirm',
      password: PASSWORD,
      code: codeNow(secret),
    });
    expect(on.statusCode).toBe(200);
    expectPrivatePage(on);
    expect(on.body).toContain('Save these codes now: this is the only time they are shown.');
    const codes = [...on.body.matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map((m) => m[1] ?? '');
    expect(codes).toHaveLength(10);
    for (const code of codes) expect(code).toMatch(CODE_PATTERN);
    // Typing the password again renews the session id (ASVS 7.2.4).
    expect(jar.mp_session).toBeDefined();
    expect(jar.mp_session).not.toBe(before);
    expect((await me(rt, { mp_session: before })).statusCode).toBe(401);
    expect(await rowsOf(userId)).toEqual({
      totp: 1,
      enrolments: 0,
      recoveryCodes: 10,
      challenges: 0,
    });

    // Shown once: neither the management page nor the account page repeats them.
    const manage = await getPage(rt, '/account/two-step', jar);
    expect(manage.statusCode).toBe(200);
    expect(manage.body).toContain('Two-step sign-in is on');
    const accountAfter = await getPage(rt, '/account', jar);
    expect(accountAfter.body).toMatch(/<span class="badge ok">On<\/span>/);
    expect(accountAfter.body).toContain('10 recovery codes left.');
    for (const code of codes) {
      expect(manage.body).not.toContain(code);
      expect(accountAfter.body).not.toContain(code);
    }

    const notice = await mailAfter(rt, email, since);
    expect(templateOf(notice)).toBe('two-step-changed');
    expect(notice.subject).toMatch(/Two-step sign-in was turned on/);
    expect(notice.text).not.toContain(secret);
  });

  it('through the API: setup, a wrong code refused, the right one answers the recovery codes', async () => {
    const email = address('apisetup');
    await signUp(rt, email);
    const jar = await logIn(rt, email);
    expect((await api(rt, 'GET', '/api/two-step', jar)).json()).toEqual({
      enabled: false,
      recoveryCodesLeft: 0,
    });
    const noSetup = await api(rt, 'POST', '/api/two-step/enable', jar, {
      password: PASSWORD,
      code: '123456',
    });
    expect(noSetup.statusCode).toBe(409);
    expect(noSetup.json()).toMatchObject({ error: { code: 'setup_required' } });

    const setup = await api(rt, 'POST', '/api/two-step/setup', jar);
    const { secret, uri } = setup.json() as { secret: string; uri: string };
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(uri).toContain(`secret=${secret}`);
    // The secret set up in one session is not another session's to confirm.
    const other = await logIn(rt, email);
    const elsewhere = await api(rt, 'POST', '/api/two-step/enable', other, {
      password: PASSWORD,
      code: codeNow(secret),
    });
    expect(elsewhere.statusCode).toBe(409);

    const wrong = await api(rt, 'POST', '/api/two-step/enable', jar, {
      password: PASSWORD,
      code: wrongCode(secret),
    });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json()).toMatchObject({ error: { code: 'code_invalid', field: 'code' } });
    const res = await api(rt, 'POST', '/api/two-step/enable', jar, {
      password: PASSWORD,
      code: codeNow(secret),
    });
    expect(res.statusCode).toBe(200);
    const body = res.json() as { status: string; recoveryCodes: string[] };
    expect(body.status).toBe('enabled');
    expect(body.recoveryCodes).toHaveLength(10);
    expect(res.cookies.find((c) => c.name === 'mp_session')?.value).toBeTruthy();
    expect((await api(rt, 'GET', '/api/two-step', jar)).json()).toEqual({
      enabled: true,
      recoveryCodesLeft: 10,
    });
    expect((await api(rt, 'POST', '/api/two-step/setup', jar)).statusCode).toBe(409);
  });
});

describe('logging in with two-step sign-in on', () => {
  it('on the pages: the right password makes no session, only a challenge cookie; the right code makes it', async () => {
    const { email, userId, secret } = await twoStepAccount('pagelogin');
    const sessionsBefore = await sessionCount(rt, userId);

    const jar: Jar = {};
    const login = await pageLogin(email, jar);
    expect(login.statusCode).toBe(303);
    expect(login.headers.location).toBe('/login/two-step');
    expect(setCookies(login).some((c) => c.startsWith('mp_session='))).toBe(false);
    expect(await sessionCount(rt, userId)).toBe(sessionsBefore);
    const challengeCookie = setCookies(login).find((c) => c.startsWith('mp_two_step=')) ?? '';
    expect(challengeCookie).toMatch(/; HttpOnly/);
    expect(challengeCookie).toMatch(/; SameSite=Lax/);
    expect(challengeCookie).toMatch(/; Path=\//);
    const expires = Date.parse(/Expires=([^;]+)/.exec(challengeCookie)?.[1] ?? '');
    expect(expires).toBe(Math.floor((rt.clock.now() + 5 * 60_000) / 1000) * 1000);
    // Stored hashed only.
    const stored = await rt.db.kysely
      .selectFrom('two_step_challenges')
      .selectAll()
      .where('user_id', '=', userId)
      .execute();
    expect(stored).toHaveLength(1);
    expect(JSON.stringify(stored)).not.toContain(jar.mp_two_step ?? 'no cookie');

    const form = await getPage(rt, '/login/two-step', jar);
    expect(form.statusCode).toBe(200);
    expectPrivatePage(form);
    expect(form.body).toContain('<label for="field-code">Code from your authenticator app</label>');
    expect(form.body).toMatch(/<input[^>]*autocomplete="one-time-code"[^>]*inputmode="numeric"/);
    expect(form.body).toContain('href="/login/two-step?recovery=1"');
    expect((await me(rt, jar)).statusCode).toBe(401);

    const wrong = await postCode(jar, wrongCode(secret));
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain('That code is not right.');
    expect(wrong.body).toContain('4 tries left.');
    expect(wrong.body).toContain('id="field-code-error"');
    expect(await sessionCount(rt, userId)).toBe(sessionsBefore);

    // A session cookie from before (planted, say) is replaced, never promoted.
    const planted = 'planted-session-cookie-value-0000000000000';
    jar.mp_session = planted;
    const right = await postCode(jar, freshCode(secret));
    expect(right.statusCode).toBe(303);
    expect(right.headers.location).toBe('/account');
    expect(jar.mp_session).not.toBe(planted);
    expect(jar.mp_two_step).toBe('');
    expect((await me(rt, jar)).statusCode).toBe(200);
    expect(await sessionCount(rt, userId)).toBe(sessionsBefore + 1);
    expect((await rowsOf(userId)).challenges).toBe(0);
    const account = await getPage(rt, '/account', jar);
    expect(account.body).toContain('You are logged in.');
  });

  it('through the API: 200 two_step_required without a cookie, then the answer of a login', async () => {
    const plain = address('plainlogin');
    await signUp(rt, plain);
    const normal = await apiLogin(plain);
    const { email, userId, secret } = await twoStepAccount('apilogin');
    const sessionsBefore = await sessionCount(rt, userId);

    const first = await apiLogin(email);
    expect(first.statusCode).toBe(200);
    const body = first.json() as { status: string; challenge: string };
    expect(Object.keys(body)).toEqual(['status', 'challenge']);
    expect(body.status).toBe('two_step_required');
    expect(body.challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(first.headers['set-cookie']).toBeUndefined();
    expect(await sessionCount(rt, userId)).toBe(sessionsBefore);
    // The wrong password still answers exactly as before: nothing is said about two-step.
    const badPassword = await apiLogin(email, 'not the right password');
    expect(badPassword.statusCode).toBe(401);
    expect(badPassword.json()).toEqual({
      error: { code: 'invalid_credentials', message: 'Wrong email address or password.' },
    });

    const wrong = await answer(body.challenge, wrongCode(secret));
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json()).toMatchObject({
      error: { code: 'code_invalid', field: 'code', attemptsLeft: 4 },
    });
    const missing = await answer(body.challenge, '  ');
    expect(missing.statusCode).toBe(400);
    expect(missing.json()).toMatchObject({ error: { code: 'code_required' } });

    const code = freshCode(secret);
    const ok = await answer(body.challenge, code);
    expect(ok.statusCode).toBe(200);
    // Exactly what a password-only login answers: the same JSON, the same cookie.
    expect(ok.json()).toEqual({ email, emailVerified: true });
    expect(Object.keys(ok.json())).toEqual(Object.keys(normal.json()));
    const attributes = (res: LightMyRequestResponse) => {
      const cookie = res.cookies.find((c) => c.name === 'mp_session');
      if (!cookie) throw new Error('no session cookie');
      const { value: _value, expires: _expires, ...rest } = cookie;
      return rest;
    };
    expect(attributes(ok)).toEqual(attributes(normal));
    expect(attributes(ok)).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
    const made = ok.cookies.find((c) => c.name === 'mp_session');
    if (!made) throw new Error('no session cookie');
    // The session's absolute end, as for any login (SESSION_MAX_AGE, 30 days).
    expect((made.expires as Date).getTime()).toBe(
      Math.floor((rt.clock.now() + 30 * 86_400_000) / 1000) * 1000,
    );
    const session = made.value;
    expect((await me(rt, { mp_session: session })).statusCode).toBe(200);
    const row = await rt.db.kysely
      .selectFrom('sessions')
      .select('id_hash')
      .where('id_hash', '=', hashSessionId(session))
      .executeTakeFirst();
    expect(row).toBeDefined();

    // The challenge is spent, and the code too (on a new challenge).
    const again = await answer(body.challenge, code);
    expect(again.statusCode).toBe(401);
    expect(again.json()).toMatchObject({ error: { code: 'challenge_invalid' } });
    const replay = await answer(await challengeFor(email), code);
    expect(replay.statusCode).toBe(401);
    expect(replay.json()).toMatchObject({ error: { code: 'code_used' } });
    for (const challenge of ['', 'x'.repeat(43), 'not a token']) {
      const res = await answer(challenge, code);
      expect(res.statusCode, challenge).toBe(401);
      expect(res.json()).toMatchObject({ error: { code: 'challenge_invalid' } });
    }
  });

  it('ends the challenge five minutes after the password, on the API and the pages', async () => {
    const { email, userId, secret } = await twoStepAccount('expiry');
    const inTime = await challengeFor(email);
    rt.clock.advance(5 * 60_000 - 1000);
    expect((await answer(inTime, codeNow(secret))).statusCode).toBe(200);

    const late = await challengeFor(email);
    rt.clock.advance(5 * 60_000);
    const res = await answer(late, freshCode(secret));
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ error: { code: 'challenge_invalid' } });
    expect((await rowsOf(userId)).challenges).toBe(0);

    const jar: Jar = {};
    await pageLogin(email, jar);
    rt.clock.advance(5 * 60_000);
    const page = await getPage(rt, '/login/two-step', jar);
    expect(page.statusCode).toBe(303);
    expect(page.headers.location).toBe('/login');
    expect((await getPage(rt, '/login', jar)).body).toContain('Your login timed out');
  });

  it('five wrong codes kill the challenge: the right code then no longer works', async () => {
    const { email, userId, secret } = await twoStepAccount('fivewrong');
    const challenge = await challengeFor(email);
    for (let i = 1; i <= 4; i += 1) {
      const res = await answer(challenge, wrongCode(secret));
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ error: { code: 'code_invalid', attemptsLeft: 5 - i } });
    }
    const fifth = await answer(challenge, wrongCode(secret));
    expect(fifth.statusCode).toBe(401);
    expect(fifth.json()).toMatchObject({ error: { code: 'too_many_attempts' } });
    expect((await rowsOf(userId)).challenges).toBe(0);
    const right = await answer(challenge, freshCode(secret));
    expect(right.statusCode).toBe(401);
    expect(right.json()).toMatchObject({ error: { code: 'challenge_invalid' } });
    expect(right.headers['set-cookie']).toBeUndefined();
  });

  it('five wrong codes on the page send the person back to log in', async () => {
    const { email, secret } = await twoStepAccount('fivewrongpage');
    const jar: Jar = {};
    await pageLogin(email, jar);
    for (let i = 1; i <= 4; i += 1) {
      expect((await postCode(jar, wrongCode(secret))).statusCode).toBe(401);
    }
    const fifth = await postCode(jar, wrongCode(secret));
    expect(fifth.statusCode).toBe(303);
    expect(fifth.headers.location).toBe('/login');
    expect(jar.mp_two_step).toBe('');
    expect((await getPage(rt, '/login', jar)).body).toContain('Too many wrong codes');
    expect((await me(rt, jar)).statusCode).toBe(401);
  });

  it('counts wrong codes per account in the shared limits (429, Retry-After); right codes do not count', async () => {
    const { email, secret } = await twoStepAccount('limited');
    // Six logins with right codes in a row: none is held back.
    for (let i = 0; i < 6; i += 1) {
      expect((await answer(await challengeFor(email), freshCode(secret))).statusCode).toBe(200);
    }
    const first = await challengeFor(email);
    for (let i = 0; i < 5; i += 1) await answer(first, wrongCode(secret));
    // The sixth wrong code of the window, on a new challenge: limited, and so is a right one.
    const challenge = await challengeFor(email);
    const limited = await answer(challenge, wrongCode(secret));
    expect(limited.statusCode).toBe(429);
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(15 * 60);
    expect(limited.json()).toEqual({
      error: {
        code: 'rate_limited',
        message: `Too many requests. Try again in ${retryAfter} seconds.`,
        retryAfterSeconds: retryAfter,
      },
    });
    expect((await answer(challenge, freshCode(secret))).statusCode).toBe(429);
    // Logged once per refusal, by the limit's name and a hash of its key: never the account.
    const refusals = logLines
      .map((line) => JSON.parse(line) as { msg: string; limit?: string; key?: string })
      .filter((entry) => entry.msg === 'rate limit reached');
    expect(refusals.map((entry) => entry.limit)).toContain('twoStepPerUser');
    for (const entry of refusals) expect(entry.key).toMatch(/^[A-Za-z0-9_-]{12}$/);
    expect(logLines.join('')).not.toContain(email);
    expect(logLines.join('')).not.toContain(challenge);

    const jar: Jar = {};
    await pageLogin(email, jar);
    const page = await postCode(jar, freshCode(secret));
    expect(page.statusCode).toBe(429);
    expect(Number(page.headers['retry-after'])).toBeGreaterThan(0);
    expect(page.body).toContain('Please wait a moment');
    expect((await me(rt, jar)).statusCode).toBe(401);
  });

  it('takes a recovery code once, and says how many are left', async () => {
    const { email, userId, recoveryCodes } = await twoStepAccount('recovery');
    const [first = '', second = ''] = recoveryCodes;

    const jar: Jar = {};
    await pageLogin(email, jar);
    const form = await getPage(rt, '/login/two-step?recovery=1', jar);
    expect(form.body).toContain('<label for="field-code">Recovery code</label>');
    expect(form.body).not.toContain('inputmode="numeric"');
    const res = await postCode(jar, first.toUpperCase());
    expect(res.statusCode).toBe(303);
    expect((await me(rt, jar)).statusCode).toBe(200);
    const account = await getPage(rt, '/account', jar);
    expect(account.body).toContain(
      'You are logged in with a recovery code. 9 recovery codes are left, and each works once.',
    );
    expect(account.body).toContain('9 recovery codes left.');

    const again = await answer(await challengeFor(email), first);
    expect(again.statusCode).toBe(401);
    expect(again.json()).toMatchObject({
      error: {
        code: 'code_used',
        message: 'That recovery code was already used. Each one works once.',
      },
    });
    const apiRes = await answer(await challengeFor(email), second);
    expect(apiRes.statusCode).toBe(200);
    expect(apiRes.json()).toEqual({ email, emailVerified: true });
    const used = await rt.db.kysely
      .selectFrom('two_step_recovery_codes')
      .select('used_at')
      .where('user_id', '=', userId)
      .where('used_at', 'is not', null)
      .execute();
    expect(used).toHaveLength(2);
  });
});

describe('turning it off and making new recovery codes', () => {
  it('needs the password and a code; the owner is emailed; logging in then takes the password only', async () => {
    const { email, userId, jar, secret } = await twoStepAccount('disable');
    const manage = await getPage(rt, '/account/two-step', jar);
    expectPrivatePage(manage);
    expect(manage.body).toContain('value="disable"');
    expect(manage.body).toContain('value="regenerate"');

    const badPassword = await postTwoStep(jar, {
      intent: 'disable',
      password: 'wrong wrong wrong',
      code: freshCode(secret),
    });
    expect(badPassword.statusCode).toBe(400);
    expect(badPassword.body).toContain('id="field-off-password-error"');
    const noCode = await postTwoStep(jar, { intent: 'disable', password: PASSWORD, code: '' });
    expect(noCode.statusCode).toBe(400);
    expect(noCode.body).toContain('id="field-off-code-error"');
    const badCode = await postTwoStep(jar, {
      intent: 'disable',
      password: PASSWORD,
      code: wrongCode(secret),
    });
    expect(badCode.statusCode).toBe(400);
    expect(badCode.body).toContain('id="field-off-code-error"');
    expect((await rowsOf(userId)).totp).toBe(1);

    const since = await lastMailId(rt, email);
    const off = await postTwoStep(jar, {
      intent: 'disable',
      password: PASSWORD,
      code: freshCode(secret),
    });
    expect(off.statusCode).toBe(303);
    expect(off.headers.location).toBe('/account');
    expect((await me(rt, jar)).statusCode).toBe(200);
    expect(await rowsOf(userId)).toEqual({
      totp: 0,
      enrolments: 0,
      recoveryCodes: 0,
      challenges: 0,
    });
    const notice = await mailAfter(rt, email, since);
    expect(templateOf(notice)).toBe('two-step-changed');
    expect(notice.subject).toMatch(/Two-step sign-in was turned off/);
    const login = await apiLogin(email);
    expect(login.json()).toEqual({ email, emailVerified: true });
  });

  it('through the API, with a recovery code; new codes replace the old ones', async () => {
    const { jar, secret, recoveryCodes } = await twoStepAccount('apidisable');
    const wrong = await api(rt, 'POST', '/api/two-step/recovery-codes', jar, {
      password: PASSWORD,
      code: wrongCode(secret),
    });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json()).toMatchObject({ error: { code: 'code_invalid', field: 'code' } });
    const fresh = await api(rt, 'POST', '/api/two-step/recovery-codes', jar, {
      password: PASSWORD,
      code: freshCode(secret),
    });
    expect(fresh.statusCode).toBe(200);
    const codes = (fresh.json() as { recoveryCodes: string[] }).recoveryCodes;
    expect(codes).toHaveLength(10);
    expect(codes.some((c) => recoveryCodes.includes(c))).toBe(false);

    const oldCode = await api(rt, 'POST', '/api/two-step/disable', jar, {
      password: PASSWORD,
      code: recoveryCodes[0],
    });
    expect(oldCode.statusCode).toBe(400);
    const badPassword = await api(rt, 'POST', '/api/two-step/disable', jar, {
      password: 'wrong wrong wrong',
      code: codes[0],
    });
    expect(badPassword.json()).toMatchObject({
      error: { code: 'current_password_invalid', field: 'password' },
    });
    const off = await api(rt, 'POST', '/api/two-step/disable', jar, {
      password: PASSWORD,
      code: codes[0],
    });
    expect(off.statusCode).toBe(200);
    expect(off.json()).toEqual({ status: 'disabled' });
    expect((await api(rt, 'GET', '/api/two-step', jar)).json()).toEqual({
      enabled: false,
      recoveryCodesLeft: 0,
    });
  });

  it('new codes on the page are shown once and the old ones stop working', async () => {
    const { email, jar, secret, recoveryCodes } = await twoStepAccount('regenerate');
    const res = await postTwoStep(jar, {
      intent: 'regenerate',
      password: PASSWORD,
      code: freshCode(secret),
    });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('Save your new recovery codes');
    const codes = [...res.body.matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map((m) => m[1]);
    expect(codes).toHaveLength(10);
    expect((await answer(await challengeFor(email), recoveryCodes[0] ?? '')).statusCode).toBe(401);
    expect((await answer(await challengeFor(email), codes[0] ?? '')).statusCode).toBe(200);
  });
});

describe('password reset with two-step sign-in on (ASVS 6.4.3)', () => {
  async function resetToken(email: string): Promise<string> {
    const since = await lastMailId(rt, email);
    await api(rt, 'POST', '/api/password/forgot', {}, { email });
    return tokenOf((await mailAfter(rt, email, since)).verification.url);
  }

  async function linkUnspent(token: string, userId: string): Promise<boolean> {
    const rows = await rt.db.kysely
      .selectFrom('verifications')
      .select('used_at')
      .where('user_id', '=', userId)
      .where('purpose', '=', 'reset')
      .execute();
    return rows.length === 1 && rows[0]?.used_at === null && token.length === 43;
  }

  it('the form asks for the code; a missing or wrong one is refused and leaves the link working', async () => {
    const { email, userId, secret } = await twoStepAccount('resetpage');
    const token = await resetToken(email);
    const form = await getPage(rt, `/reset/${token}`);
    expect(form.statusCode).toBe(200);
    expect(form.body).toContain('<label for="field-code">Code from your authenticator app</label>');

    const missing = await submitForm(rt, `/reset/${token}`, `/reset/${token}`, {
      password: NEW_PASSWORD,
    });
    expect(missing.statusCode).toBe(400);
    expect(missing.body).toContain('id="field-code-error"');
    expectPrivatePage(missing);
    const wrong = await submitForm(rt, `/reset/${token}`, `/reset/${token}`, {
      password: NEW_PASSWORD,
      code: wrongCode(secret),
    });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.body).toContain('That code is not right.');
    expect(await linkUnspent(token, userId)).toBe(true);

    const done = await submitForm(rt, `/reset/${token}`, `/reset/${token}`, {
      password: NEW_PASSWORD,
      code: freshCode(secret),
    });
    expect(done.statusCode).toBe(200);
    expect(done.body).toContain('Your password has been changed');
    // A reset does not turn two-step sign-in off.
    expect((await rowsOf(userId)).totp).toBe(1);
    const login = await apiLogin(email, NEW_PASSWORD);
    expect(login.json()).toMatchObject({ status: 'two_step_required' });
  });

  it('POST /api/password/reset: 400 code_required / code_invalid without spending the link; a recovery code works', async () => {
    const { email, userId, secret, recoveryCodes } = await twoStepAccount('resetapi');
    const token = await resetToken(email);
    const reset = (code?: string) =>
      api(rt, 'POST', '/api/password/reset', {}, { token, password: NEW_PASSWORD, code });

    const missing = await reset();
    expect(missing.statusCode).toBe(400);
    expect(missing.json()).toMatchObject({ error: { code: 'code_required', field: 'code' } });
    const wrong = await reset(wrongCode(secret));
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json()).toMatchObject({ error: { code: 'code_invalid', field: 'code' } });
    expect(await linkUnspent(token, userId)).toBe(true);

    const ok = await reset(recoveryCodes[3]);
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ status: 'password_reset' });
    expect((await rowsOf(userId)).totp).toBe(1);
    const login = await answer(
      (await apiLogin(email, NEW_PASSWORD)).json().challenge,
      freshCode(secret),
    );
    expect(login.statusCode).toBe(200);
    const jar = { mp_session: login.cookies.find((c) => c.name === 'mp_session')?.value ?? '' };
    const status = await api(rt, 'GET', '/api/two-step', jar);
    expect(status.json()).toEqual({ enabled: true, recoveryCodesLeft: 9 });
  });

  it('limits wrong codes per account there too (429, Retry-After), still without spending the link', async () => {
    const { email, userId, secret } = await twoStepAccount('resetlimit');
    const token = await resetToken(email);
    const reset = (code: string) =>
      api(rt, 'POST', '/api/password/reset', {}, { token, password: NEW_PASSWORD, code });
    for (let i = 0; i < 5; i += 1) expect((await reset(wrongCode(secret))).statusCode).toBe(400);
    const limited = await reset(freshCode(secret));
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(await linkUnspent(token, userId)).toBe(true);
  });
});

describe('deleting the account', () => {
  it('removes its two-step rows, through the app and by the foreign keys of the database', async () => {
    const on = await twoStepAccount('delete');
    await challengeFor(on.email);
    expect(await rowsOf(on.userId)).toEqual({
      totp: 1,
      enrolments: 0,
      recoveryCodes: 10,
      challenges: 1,
    });
    const deleted = await api(rt, 'POST', '/api/account/delete', on.jar, { password: PASSWORD });
    expect(deleted.statusCode).toBe(200);
    expect(await rowsOf(on.userId)).toEqual({
      totp: 0,
      enrolments: 0,
      recoveryCodes: 0,
      challenges: 0,
    });

    // Setting up (not confirmed) on the account page, then deleted there.
    const email = address('deletesetup');
    await signUp(rt, email);
    const jar = await logIn(rt, email);
    const userId = (await userRow(rt, email))?.id ?? '';
    await postTwoStep(jar, { intent: 'start' });
    expect((await rowsOf(userId)).enrolments).toBe(1);
    const page = await getPage(rt, '/account', jar);
    await postForm(
      rt,
      '/account',
      { _csrf: csrfOf(page.body), intent: 'delete_account', password: PASSWORD },
      jar,
    );
    expect(await userRow(rt, email)).toBeUndefined();
    expect((await rowsOf(userId)).enrolments).toBe(0);

    // Should a row ever be deleted some other way, the database removes the rest (ON DELETE CASCADE).
    const direct = await twoStepAccount('cascade');
    await challengeFor(direct.email);
    await rt.db.kysely.deleteFrom('users').where('id', '=', direct.userId).execute();
    expect(await rowsOf(direct.userId)).toEqual({
      totp: 0,
      enrolments: 0,
      recoveryCodes: 0,
      challenges: 0,
    });
  });
});

describe('forms of two-step sign-in', () => {
  it('need the CSRF token', async () => {
    const { email, jar } = await twoStepAccount('csrf');
    const loginJar: Jar = {};
    await pageLogin(email, loginJar);
    for (const [url, cookies] of [
      ['/login/two-step', loginJar],
      ['/account/two-step', jar],
    ] as const) {
      const res = await rt.app.inject({
        method: 'POST',
        url,
        headers: {
          cookie: cookieHeader(cookies),
          'content-type': 'application/x-www-form-urlencoded',
        },
        payload: 'intent=disable&password=x&code=123456',
      });
      expect(res.statusCode, url).toBe(403);
    }
  });

  it('send a visitor without a session or challenge to log in', async () => {
    for (const url of ['/login/two-step', '/account/two-step']) {
      const res = await getPage(rt, url, {});
      expect(res.statusCode, url).toBe(303);
      expect(res.headers.location).toBe('/login');
    }
  });
});

// REQUIRE_TWO_STEP=true (ASVS 6.3.3 for every account): a password login of an account without
// two-step sign-in makes a session that can only set it up; turning it off is refused.
describe('REQUIRE_TWO_STEP=true', () => {
  let strict: TestRuntime;
  beforeAll(async () => {
    strict = await createTestRuntime({ env: { REQUIRE_TWO_STEP: 'true' } });
  });
  afterAll(async () => {
    await strict.close();
  });
  beforeEach(() => {
    strict.limits.reset();
  });

  function strictCode(secret: string): string {
    strict.clock.advance(STEP_MS);
    return TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: strict.clock.now() });
  }

  async function totpRows(userId: string): Promise<number> {
    const rows = await strict.db.kysely
      .selectFrom('two_step_totp')
      .select('user_id')
      .where('user_id', '=', userId)
      .execute();
    return rows.length;
  }

  /** Sets two-step sign-in up through the API (allowed to a restricted session); its secret. */
  async function enable(jar: Jar): Promise<string> {
    const setup = await api(strict, 'POST', '/api/two-step/setup', jar);
    expect(setup.statusCode).toBe(200);
    const { secret } = setup.json() as { secret: string };
    const enabled = await api(strict, 'POST', '/api/two-step/enable', jar, {
      password: PASSWORD,
      code: strictCode(secret),
    });
    expect(enabled.statusCode).toBe(200);
    return secret;
  }

  it('pages: the password logs in, but every page other than /account/two-step redirects there until it is on', async () => {
    const email = address('required-pages');
    await signUp(strict, email);
    const jar: Jar = {};
    const login = await submitForm(strict, '/login', '/login', { email, password: PASSWORD }, jar);
    expect(login.statusCode).toBe(303);
    expect(login.headers.location).toBe('/account/two-step');
    expect(jar.mp_session).toBeTruthy();

    const setupPage = await getPage(strict, '/account/two-step', jar);
    expect(setupPage.statusCode).toBe(200);
    expect(setupPage.body).toContain('This site requires two-step sign-in');
    expect(setupPage.body).toContain('Set up two-step sign-in');
    expect(setupPage.body).not.toContain('Not now');

    const account = await getPage(strict, '/account', jar);
    expect(account.statusCode).toBe(303);
    expect(account.headers.location).toBe('/account/two-step');
    const flashed = await getPage(strict, '/account/two-step', jar);
    expect(flashed.body).toContain('This site requires two-step sign-in. Set it up to continue');

    // A form of the account page is refused the same way, and does nothing.
    const before = (await userRow(strict, email))?.password_hash;
    const change = await postForm(
      strict,
      '/account',
      {
        _csrf: csrfOf(flashed.body),
        intent: 'change_password',
        currentPassword: PASSWORD,
        newPassword: NEW_PASSWORD,
      },
      jar,
    );
    expect(change.statusCode).toBe(303);
    expect(change.headers.location).toBe('/account/two-step');
    expect((await userRow(strict, email))?.password_hash).toBe(before);

    // Setting it up through the page works, and lifts the restriction.
    const start = await postForm(
      strict,
      '/account/two-step',
      { _csrf: csrfOf(flashed.body), intent: 'start' },
      jar,
    );
    expect(start.statusCode).toBe(303);
    const setup = await getPage(strict, '/account/two-step', jar);
    const grouped = /id="two-step-secret">([A-Z2-7 ]+)</.exec(setup.body)?.[1] ?? '';
    const secret = grouped.replaceAll(' ', '');
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    const confirm = await postForm(
      strict,
      '/account/two-step',
      {
        _csrf: csrfOf(setup.body),
        intent: 'confirm',
        password: PASSWORD,
        code: strictCode(secret),
      },
      jar,
    );
    expect(confirm.statusCode).toBe(200);
    expect(confirm.body).toContain('Save these codes now');
    expect(await totpRows((await userRow(strict, email))?.id ?? '')).toBe(1);
    const after = await getPage(strict, '/account', jar);
    expect(after.statusCode).toBe(200);
    expect(after.body).toMatch(/<span class="badge ok">On<\/span>/);

    // Logging out works from a restricted session too.
    const other = address('required-logout');
    await signUp(strict, other);
    const otherJar = await logIn(strict, other);
    const page = await getPage(strict, '/account/two-step', otherJar);
    const out = await postForm(strict, '/logout', { _csrf: csrfOf(page.body) }, otherJar);
    expect(out.statusCode).toBe(303);
    expect(out.headers.location).toBe('/');
    expect((await me(strict, otherJar)).statusCode).toBe(401);
  });

  it('API: 403 two_step_setup_required, except GET /api/me, the two-step routes and logout', async () => {
    const email = address('required-api');
    await signUp(strict, email);
    const jar = await logIn(strict, email);
    const userId = (await userRow(strict, email))?.id ?? '';

    const who = await me(strict, jar);
    expect(who.statusCode).toBe(200);
    expect(who.json()).toEqual({ email, emailVerified: true });
    const status = await api(strict, 'GET', '/api/two-step', jar);
    expect(status.statusCode).toBe(200);
    expect(status.json()).toEqual({ enabled: false, recoveryCodesLeft: 0 });

    const refused = [
      await api(strict, 'GET', '/api/sessions', jar),
      await api(strict, 'POST', '/api/password/change', jar, {
        currentPassword: PASSWORD,
        newPassword: NEW_PASSWORD,
      }),
      await api(strict, 'POST', '/api/email/change', jar, {
        newEmail: address('required-new'),
        password: PASSWORD,
      }),
      await api(strict, 'POST', '/api/logout/everywhere', jar, { password: PASSWORD }),
      await api(strict, 'POST', '/api/account/delete', jar, { password: PASSWORD }),
    ];
    for (const res of refused) {
      expect(res.statusCode).toBe(403);
      const body = res.json() as { error: { code: string; message: string } };
      expect(body.error.code).toBe('two_step_setup_required');
      expect(body.error.message).toMatch(/requires two-step sign-in.*set it up/i);
    }
    // Nothing of it happened: the account, its password and its session are all still there.
    expect(await userRow(strict, email)).toBeDefined();
    expect(await sessionCount(strict, userId)).toBe(1);
    expect((await logIn(strict, email)).mp_session).toBeTruthy();

    await enable(jar);
    const sessions = await api(strict, 'GET', '/api/sessions', jar);
    expect(sessions.statusCode).toBe(200);
    expect((await me(strict, jar)).json()).toEqual({ email, emailVerified: true });

    // Logging out needs nothing set up.
    const other = address('required-api-logout');
    await signUp(strict, other);
    const otherJar = await logIn(strict, other);
    const out = await api(strict, 'POST', '/api/logout', otherJar);
    expect(out.statusCode).toBe(200);
    expect((await me(strict, otherJar)).statusCode).toBe(401);
  });

  it('refuses turning it off (API 400, page 400), yet the operator can; then it must be set up again', async () => {
    const email = address('required-off');
    await signUp(strict, email);
    const jar = await logIn(strict, email);
    const userId = (await userRow(strict, email))?.id ?? '';
    const secret = await enable(jar);

    const off = await api(strict, 'POST', '/api/two-step/disable', jar, {
      password: PASSWORD,
      code: strictCode(secret),
    });
    expect(off.statusCode).toBe(400);
    expect(off.json()).toMatchObject({ error: { code: 'two_step_required_by_site' } });
    expect(await totpRows(userId)).toBe(1);

    const manage = await getPage(strict, '/account/two-step', jar);
    expect(manage.statusCode).toBe(200);
    expect(manage.body).toContain('Two-step sign-in is on');
    expect(manage.body).not.toContain('value="disable"');
    expect(manage.body).toContain('cannot be turned off');
    const offPage = await postForm(
      strict,
      '/account/two-step',
      {
        _csrf: csrfOf(manage.body),
        intent: 'disable',
        password: PASSWORD,
        code: strictCode(secret),
      },
      jar,
    );
    expect(offPage.statusCode).toBe(400);
    expect(offPage.body).toContain(
      'This site requires two-step sign-in, so it cannot be turned off.',
    );
    expect(await totpRows(userId)).toBe(1);

    // The operator's way (what `mailproof two-step off EMAIL` runs) still works.
    expect(
      await turnTwoStepOffByOperator(strict.db.kysely, strict.config, email, {
        random: cryptoRandom,
        now: strict.clock.now(),
      }),
    ).toBe(true);
    expect(await totpRows(userId)).toBe(0);
    // The password alone logs in again, into a session that must set it up.
    const again: Jar = {};
    const login = await submitForm(
      strict,
      '/login',
      '/login',
      { email, password: PASSWORD },
      again,
    );
    expect(login.statusCode).toBe(303);
    expect(login.headers.location).toBe('/account/two-step');
    const sessions = await api(strict, 'GET', '/api/sessions', again);
    expect(sessions.statusCode).toBe(403);
    expect(sessions.json()).toMatchObject({ error: { code: 'two_step_setup_required' } });
  });

  it.runIf(testDb === 'sqlite')(
    'the command `mailproof two-step off` still works with it on',
    async () => {
      const email = address('required-cli');
      await signUp(strict, email);
      const jar = await logIn(strict, email);
      const userId = (await userRow(strict, email))?.id ?? '';
      await enable(jar);
      const run = spawnSync(
        process.execPath,
        [path.resolve('bin/mailproof.js'), 'two-step', 'off', email],
        {
          env: {
            PATH: process.env.PATH ?? '',
            DATA_DIR: strict.dataDir,
            DATABASE_URL: strict.config.databaseUrl,
            REQUIRE_TWO_STEP: 'true',
            LOG_LEVEL: 'silent',
          },
          encoding: 'utf8',
          timeout: 30_000,
        },
      );
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect(await totpRows(userId)).toBe(0);
      expect((await api(strict, 'GET', '/api/sessions', jar)).statusCode).toBe(403);
    },
  );
});

// The command reads the database the app uses; on SQLite that is a file a child can open.
describe.runIf(testDb === 'sqlite')('mailproof two-step off', () => {
  function cli(args: string[]) {
    return spawnSync(process.execPath, [path.resolve('bin/mailproof.js'), 'two-step', ...args], {
      env: {
        PATH: process.env.PATH ?? '',
        DATA_DIR: rt.dataDir,
        DATABASE_URL: rt.config.databaseUrl,
        LOG_LEVEL: 'silent',
      },
      encoding: 'utf8',
      timeout: 30_000,
    });
  }

  it('turns it off for one account, tells the owner, and never prints an address', async () => {
    const { email, userId } = await twoStepAccount('operator');
    const since = await lastMailId(rt, email);
    const run = cli(['off', email.toUpperCase()]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout.trim()).toBe(
      'Two-step sign-in is off for that account; its owner is told by email.',
    );
    expect((await rowsOf(userId)).totp).toBe(0);
    const notice = await mailAfter(rt, email, since, 10_000);
    expect(templateOf(notice)).toBe('two-step-changed');
    expect(notice.text).toContain('the site operator turned off two-step sign-in');

    const again = cli(['off', email]);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('no account with that address has two-step sign-in on');
    const bad = cli(['off']);
    expect(bad.status).toBe(2);
    expect(run.stdout + run.stderr + again.stdout + again.stderr).not.toContain('@');
  });

  it('takes an address that starts with "-", and still refuses an option-like word', async () => {
    const { email, userId } = await twoStepAccount('-dash');
    expect(email.startsWith('-')).toBe(true);
    const run = cli(['off', email]);
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    expect((await rowsOf(userId)).totp).toBe(0);
    const option = cli(['off', '--help']);
    expect(option.status).toBe(2);
    expect(option.stderr).toContain('two-step off needs one address');
  });
});
