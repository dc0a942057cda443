// Helpers for the account-lifecycle tests: accounts, sessions, forms and mail.
import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import type { MessageDetail } from '../../src/inbox/store.ts';
import { cookieHeader, csrfOf, getPage, type Jar, postForm, tokenOf } from '../support/forms.ts';
import type { TestRuntime } from '../support/runtime.ts';

export const PASSWORD = 'lantern orchard pebble';
export const NEW_PASSWORD = 'saffron kettle harbour';

export function setCookies(res: LightMyRequestResponse): string[] {
  const header = res.headers['set-cookie'];
  if (header === undefined) return [];
  return Array.isArray(header) ? header : [header];
}

export function sessionCookieOf(res: LightMyRequestResponse): string | undefined {
  return res.cookies.find((c) => c.name === 'mp_session' && c.value !== '')?.value;
}

export async function signUp(
  rt: TestRuntime,
  email: string,
  options: { verify?: boolean; password?: string } = {},
): Promise<MessageDetail> {
  const since = await lastMailId(rt, email);
  const res = await rt.app.inject({
    method: 'POST',
    url: '/api/signup',
    payload: { email, password: options.password ?? PASSWORD },
  });
  expect(res.statusCode).toBe(202);
  const mail = await rt.mailTo(email, { since });
  if (options.verify === false) return mail;
  const verified = await rt.app.inject({
    method: 'POST',
    url: '/api/verify',
    payload: { token: tokenOf(mail.verification.url) },
  });
  expect(verified.json()).toEqual({ status: 'verified' });
  return mail;
}

/** Logs in through the API; the jar then holds the session cookie. */
export async function logIn(
  rt: TestRuntime,
  email: string,
  password = PASSWORD,
  jar: Jar = {},
): Promise<Jar> {
  const res = await rt.app.inject({
    method: 'POST',
    url: '/api/login',
    payload: { email, password },
  });
  expect(res.statusCode).toBe(200);
  const cookie = sessionCookieOf(res);
  if (!cookie) throw new Error('no session cookie');
  jar.mp_session = cookie;
  return jar;
}

/** A JSON call; like any client with a cookie jar, the jar takes the cookies the answer sets. */
export async function api(
  rt: TestRuntime,
  method: 'GET' | 'POST',
  url: string,
  jar: Jar = {},
  payload?: unknown,
) {
  const res = await rt.app.inject({
    method,
    url,
    headers: { cookie: cookieHeader(jar) },
    ...(payload === undefined ? {} : { payload: payload as object }),
  });
  keepCookies(res, jar);
  return res;
}

function keepCookies(res: LightMyRequestResponse, jar: Jar) {
  for (const cookie of res.cookies) {
    if (cookie.value === '') delete jar[cookie.name];
    else jar[cookie.name] = cookie.value;
  }
}

export async function me(rt: TestRuntime, jar: Jar) {
  return api(rt, 'GET', '/api/me', jar);
}

/** Posts one of the account page's forms (with its CSRF token), as the browser would. */
export async function postAccount(
  rt: TestRuntime,
  jar: Jar,
  fields: Record<string, string | string[]>,
) {
  const page = await getPage(rt, '/account', jar);
  expect(page.statusCode).toBe(200);
  const params = new URLSearchParams({ _csrf: csrfOf(page.body) });
  for (const [name, value] of Object.entries(fields)) {
    for (const v of Array.isArray(value) ? value : [value]) params.append(name, v);
  }
  const res = await rt.app.inject({
    method: 'POST',
    url: '/account',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      cookie: cookieHeader(jar),
    },
    payload: params.toString(),
  });
  keepCookies(res, jar);
  return res;
}

/** GETs a page for its CSRF token, then posts the form to `url`. */
export async function submitForm(
  rt: TestRuntime,
  formUrl: string,
  url: string,
  fields: Record<string, string>,
  jar: Jar = {},
) {
  const form = await getPage(rt, formUrl, jar);
  return postForm(rt, url, { _csrf: csrfOf(form.body), ...fields }, jar);
}

export async function userRow(rt: TestRuntime, email: string) {
  return rt.db.kysely
    .selectFrom('users')
    .selectAll()
    .where('email_normalized', '=', email.trim().toLowerCase())
    .executeTakeFirst();
}

export async function sessionCount(rt: TestRuntime, userId: string): Promise<number> {
  const rows = await rt.db.kysely
    .selectFrom('sessions')
    .select('id_hash')
    .where('user_id', '=', userId)
    .execute();
  return rows.length;
}

/** The newest message to `email` newer than message id `since`. */
export function mailAfter(rt: TestRuntime, email: string, since: number, waitMs = 5000) {
  return rt.mailTo(email, { since, waitMs });
}

/** The id of the newest message to `email` once everything queued so far is sent (0: none). */
export async function lastMailId(rt: TestRuntime, email: string): Promise<number> {
  await outboxDrained(rt);
  const latest = await rt.inbox?.waitForLatest(email, 0);
  return latest?.id ?? 0;
}

/** Everything due so far has been sent (so "no mail" can be asserted). */
export async function outboxDrained(rt: TestRuntime): Promise<void> {
  for (let i = 0; i < 200; i += 1) {
    const pending = await rt.db.kysely
      .selectFrom('outbox')
      .select('id')
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', rt.clock.now())
      .execute();
    if (pending.length === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('the outbox did not drain');
}

export function templateOf(mail: MessageDetail): string | undefined {
  return mail.provenance?.template;
}

export function expectNoStackTrace(body: string) {
  expect(body).not.toMatch(/\n\s+at |node_modules|\.tsx?:\d+/);
}
