// §8 Bad input, thrown at every form and API route by fast-check: random and hostile values
// (unicode, CR/LF, NUL, huge strings, wrong types, missing and extra fields, markup). Never a
// 5xx, never a stack trace, never the raw markup in a page, never a line break in a mail header.
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { simpleParser } from 'mailparser';
import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cookieHeader, csrfOf, getPage, type Jar } from '../support/forms.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

// PROPERTY_RUNS=500 for a deeper search than the suite's default.
const RUNS = Number(process.env.PROPERTY_RUNS ?? 50);
const PASSWORD = 'lantern orchard pebble';
const SCRIPT = '<script>alert("pwned")</script>';
const IMG = '<img src=x onerror="alert(1)">';
const HEADER_INJECTION = '\r\nX-Injected: yes\r\nBcc: victim@example.net';

let rt: TestRuntime;
let session: Jar;
/** An account with two-step sign-in on, whose logins stop at the code. */
const twoStepOwner = `property-two-step-${process.pid}@example.com`;

beforeAll(async () => {
  rt = await createTestRuntime({ env: { RATE_LIMITS: 'off' } });
  const email = `property-owner-${process.pid}@example.com`;
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
  session = { mp_session: login.cookies.find((c) => c.name === 'mp_session')?.value ?? '' };

  await rt.app.inject({
    method: 'POST',
    url: '/api/signup',
    payload: { email: twoStepOwner, password: PASSWORD },
  });
  const owner = await rt.app.inject({
    method: 'POST',
    url: '/api/login',
    payload: { email: twoStepOwner, password: PASSWORD },
  });
  const ownerJar = {
    mp_session: owner.cookies.find((c) => c.name === 'mp_session')?.value ?? '',
  };
  const setup = await postJson('/api/two-step/setup', {}, ownerJar);
  const { secret } = setup.json() as { secret: string };
  const code = TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: rt.clock.now() });
  const enabled = await postJson('/api/two-step/enable', { password: PASSWORD, code }, ownerJar);
  expect(enabled.statusCode).toBe(200);
});
afterAll(async () => {
  await rt.close();
});

// --- Values ----------------------------------------------------------------------------------

const nasty = fc.constantFrom(
  SCRIPT,
  IMG,
  HEADER_INJECTION,
  '\u0000',
  '\r\n',
  '\n.\n',
  '"><svg onload=alert(1)>',
  "'; DROP TABLE users; --",
  '../../../../etc/passwd',
  '%0d%0aSet-Cookie:%20x=y',
  '\u202e\u2066bidi\u2069',
  '\ud800',
  '😀👩‍👩‍👧',
  'Ａｄｍｉｎ',
  ' ',
  '',
);

/** Strings of every kind, often with something hostile spliced in. */
const text = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 60 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
  { weight: 3, arbitrary: nasty },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.string({ maxLength: 20 }), nasty, fc.string({ maxLength: 20 }))
      .map((parts) => parts.join('')),
  },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 70_000 }).map((n) => 'x'.repeat(n)) },
);

/** Addresses that pass validation (so the flows run and send mail) with hostile parts. */
const email = fc.oneof(
  fc.emailAddress(),
  fc.constantFrom(
    `prop+${Date.now()}@example.com`,
    "o'brien@example.com",
    '"quoted name"@example.com',
    'UPPER.case@Example.COM',
  ),
  fc.tuple(fc.emailAddress(), nasty).map(([a, n]) => `${a}${n}`),
  fc.tuple(nasty, fc.emailAddress()).map(([n, a]) => `${n}${a}`),
);

const token = fc.oneof(
  fc.string({ unit: 'binary-ascii', minLength: 43, maxLength: 43 }),
  fc.base64String({ minLength: 40, maxLength: 48 }),
  text,
);

const scalar = fc.oneof(
  { weight: 5, arbitrary: text },
  { weight: 2, arbitrary: email },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
);

const value = fc.oneof(
  { weight: 6, arbitrary: scalar },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), scalar, { maxKeys: 3 }) },
);

/** A JSON body: the route's own fields (each maybe missing or of any type) plus extra keys. */
function jsonBody(fields: Record<string, fc.Arbitrary<unknown>>) {
  const own = fc.record(
    Object.fromEntries(
      Object.entries(fields).map(([name, arb]) => [
        name,
        fc.oneof({ weight: 3, arbitrary: arb }, value),
      ]),
    ),
    { requiredKeys: [] },
  );
  const extra = fc.dictionary(
    fc.constantFrom('__proto__', 'constructor', 'extra', 'isAdmin', 'email'),
    value,
    { maxKeys: 2 },
  );
  return fc.oneof(
    { weight: 8, arbitrary: fc.tuple(own, extra).map(([o, e]) => ({ ...e, ...o })) },
    { weight: 1, arbitrary: fc.oneof(fc.array(value), scalar) },
  );
}

/** A form: the page's own fields (each maybe missing or hostile), maybe repeated, plus extras. */
function formBody(fields: Record<string, fc.Arbitrary<string>>) {
  const own = fc.record(
    Object.fromEntries(
      Object.entries(fields).map(([name, arb]) => [
        name,
        fc.oneof(
          { weight: 4, arbitrary: arb },
          { weight: 2, arbitrary: text },
          { weight: 1, arbitrary: fc.array(text, { minLength: 2, maxLength: 3 }) },
        ),
      ]),
    ),
    { requiredKeys: [] },
  );
  return fc.tuple(own, fc.dictionary(fc.string({ maxLength: 8 }), text, { maxKeys: 2 }));
}

// --- Checks ----------------------------------------------------------------------------------

function expectSafe(res: LightMyRequestResponse, where: string) {
  expect(res.statusCode, `${where}: ${res.body.slice(0, 300)}`).toBeLessThan(500);
  expect(res.body, where).not.toMatch(/\n\s+at |node_modules|\.tsx?:\d+|Error: /);
  expect(res.body, where).not.toContain('<script>alert(');
  expect(res.body, where).not.toContain('<img src=x onerror');
  expect(res.body, where).not.toContain('<svg onload');
  if (res.statusCode >= 400 && String(res.headers['content-type']).startsWith('application/json')) {
    const body = res.json() as { error?: { code?: unknown; message?: unknown } };
    expect(typeof body.error?.code, where).toBe('string');
    expect(typeof body.error?.message, where).toBe('string');
  }
}

function postJson(url: string, body: unknown, jar: Jar = {}) {
  return rt.app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/json', cookie: cookieHeader(jar) },
    payload: JSON.stringify(body) ?? 'null',
  });
}

function postUrlencoded(
  url: string,
  csrf: { token: string; jar: Jar },
  [own, extra]: [Partial<Record<string, string | string[]>>, Record<string, string>],
  withCsrf: boolean,
) {
  const params = new URLSearchParams();
  if (withCsrf) params.append('_csrf', csrf.token);
  for (const [name, v] of Object.entries({ ...extra, ...own })) {
    for (const item of Array.isArray(v) ? v : [v])
      if (item !== undefined) params.append(name, item);
  }
  return rt.app.inject({
    method: 'POST',
    url,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      cookie: cookieHeader(csrf.jar),
    },
    payload: params.toString(),
  });
}

/** A lone surrogate cannot be percent-encoded as UTF-8: send invalid UTF-8 bytes instead. */
function pathSegment(value: string): string {
  try {
    return encodeURIComponent(value);
  } catch {
    return '%ED%A0%80%FF';
  }
}

async function csrfFor(jar: Jar = {}): Promise<{ token: string; jar: Jar }> {
  const page = await getPage(rt, '/login', jar);
  return { token: csrfOf(page.body), jar };
}

// --- The API ---------------------------------------------------------------------------------

const apiRoutes: Array<{
  url: string;
  fields: Record<string, fc.Arbitrary<unknown>>;
  auth?: true;
}> = [
  { url: '/api/signup', fields: { email, password: text } },
  { url: '/api/verify', fields: { token, email, code: text } },
  { url: '/api/verify/resend', fields: { email } },
  { url: '/api/login', fields: { email, password: text } },
  { url: '/api/logout', fields: {} },
  { url: '/api/password/forgot', fields: { email } },
  { url: '/api/password/reset', fields: { token, password: text, code: text } },
  { url: '/api/login/two-step', fields: { challenge: token, code: text } },
  { url: '/api/contact', fields: { name: text, email, message: text, website: text } },
  { url: '/api/contact/confirm', fields: { token, email, code: text } },
  { url: '/api/email/confirm', fields: { token, code: text } },
  { url: '/api/password/change', fields: { currentPassword: text, newPassword: text }, auth: true },
  { url: '/api/email/change', fields: { newEmail: email, password: text }, auth: true },
  { url: '/api/email/confirm', fields: { code: text }, auth: true },
  { url: '/api/sessions/end', fields: { password: text, ids: fc.array(text) }, auth: true },
  { url: '/api/logout/everywhere', fields: { password: text }, auth: true },
  { url: '/api/account/delete', fields: { password: text }, auth: true },
  { url: '/api/two-step/setup', fields: {}, auth: true },
  { url: '/api/two-step/enable', fields: { password: text, code: text }, auth: true },
  { url: '/api/two-step/disable', fields: { password: text, code: text }, auth: true },
  { url: '/api/two-step/recovery-codes', fields: { password: text, code: text }, auth: true },
];

describe('every JSON route takes hostile bodies with a clear 4xx (or its normal answer)', () => {
  for (const route of apiRoutes) {
    it(`POST ${route.url}${route.auth ? ' (logged in)' : ''}`, async () => {
      await fc.assert(
        fc.asyncProperty(jsonBody(route.fields), async (body) => {
          const res = await postJson(route.url, body, route.auth ? session : {});
          expectSafe(res, `${route.url} ${JSON.stringify(body).slice(0, 200)}`);
        }),
        { numRuns: RUNS },
      );
    });
  }

  it('GET routes with hostile query strings', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/api/me', '/api/sessions', '/api/two-step'),
        fc.dictionary(fc.string({ maxLength: 6 }), text, { maxKeys: 3 }),
        async (url, query) => {
          const res = await rt.app.inject({
            method: 'GET',
            url,
            query: query as Record<string, string>,
            headers: { cookie: cookieHeader(session) },
          });
          expectSafe(res, url);
        },
      ),
      { numRuns: RUNS },
    );
  });
});

// --- The pages -------------------------------------------------------------------------------

const pageForms: Array<{ url: string; fields: Record<string, fc.Arbitrary<string>>; auth?: true }> =
  [
    { url: '/signup', fields: { email, password: text } },
    { url: '/login', fields: { email, password: text } },
    { url: '/verify', fields: { email, code: text } },
    { url: '/verify/resend', fields: { email, token } },
    { url: '/forgot', fields: { email } },
    { url: '/contact', fields: { name: text, email, message: text, website: text } },
    { url: '/contact/confirm', fields: { email, code: text } },
    { url: '/contact/resend', fields: { token } },
    {
      url: '/account',
      auth: true,
      fields: {
        intent: fc.constantFrom(
          'change_password',
          'change_email',
          'confirm_email_code',
          'cancel_email_change',
          'end_sessions',
          'delete_account',
        ),
        currentPassword: text,
        newPassword: text,
        newEmail: email,
        password: text,
        code: text,
        session: text,
      },
    },
    {
      url: '/account/two-step',
      auth: true,
      fields: {
        intent: fc.constantFrom('start', 'confirm', 'disable', 'regenerate'),
        password: text,
        code: text,
      },
    },
    // Without a challenge cookie: the login timed out, whatever is typed.
    { url: '/login/two-step', fields: { code: text } },
  ];

describe('every form takes hostile fields without a 5xx, a trace or unescaped markup', () => {
  for (const form of pageForms) {
    it(`POST ${form.url}${form.auth ? ' (logged in)' : ''}`, async () => {
      const csrf = await csrfFor(form.auth ? { ...session } : {});
      // Mostly with the CSRF token, so the handlers themselves get the input.
      const withCsrf = fc.integer({ min: 0, max: 3 }).map((n) => n > 0);
      await fc.assert(
        fc.asyncProperty(formBody(form.fields), withCsrf, async (body, csrfSent) => {
          const res = await postUrlencoded(form.url, csrf, body, csrfSent);
          expectSafe(res, `${form.url} ${JSON.stringify(body).slice(0, 200)}`);
        }),
        { numRuns: RUNS },
      );
      // The session survived whatever was thrown at the account page.
      if (form.auth) {
        const me = await rt.app.inject({
          url: '/api/me',
          headers: { cookie: cookieHeader(session) },
        });
        expect(me.statusCode).toBe(200);
      }
    });
  }

  it('POST /login/two-step and /api/login/two-step with a live challenge and hostile codes', async () => {
    const csrf = await csrfFor();
    await fc.assert(
      fc.asyncProperty(formBody({ code: text }), fc.boolean(), async (body, page) => {
        // A fresh challenge each run: five wrong codes would end one.
        const login = await postJson('/api/login', { email: twoStepOwner, password: PASSWORD });
        const { challenge } = login.json() as { challenge: string };
        expect(challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
        const res = page
          ? await postUrlencoded(
              '/login/two-step',
              { ...csrf, jar: { ...csrf.jar, mp_two_step: challenge } },
              body,
              true,
            )
          : await postJson('/api/login/two-step', { challenge, code: body[0].code });
        expectSafe(res, `${page ? 'page' : 'API'} ${JSON.stringify(body).slice(0, 200)}`);
        expect(res.statusCode, JSON.stringify(body).slice(0, 200)).not.toBe(200);
      }),
      { numRuns: RUNS },
    );
  });

  const tokenPages = ['/verify/', '/reset/', '/contact/confirm/', '/account/email/confirm/'];
  it('pages with a token in the path, opened (GET) and posted', async () => {
    const csrf = await csrfFor();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...tokenPages),
        token,
        fc.boolean(),
        async (base, t, post) => {
          const url = `${base}${pathSegment(t)}`;
          const res = post
            ? await postUrlencoded(url, csrf, [{ password: t }, {}], true)
            : await rt.app.inject({ method: 'GET', url });
          expectSafe(res, `${post ? 'POST' : 'GET'} ${url.slice(0, 200)}`);
        },
      ),
      { numRuns: RUNS * 2 },
    );
  });

  it('pages with hostile query strings (prefilled fields are escaped)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          '/verify',
          '/verify/resend',
          '/contact/confirm',
          '/forgot',
          '/login',
          '/login/two-step',
        ),
        fc.oneof(email, text),
        async (url, value) => {
          const res = await rt.app.inject({ method: 'GET', url, query: { email: value } });
          expectSafe(res, `${url}?email=${value.slice(0, 100)}`);
        },
      ),
      { numRuns: RUNS },
    );
  });
});

// --- The mail they caused --------------------------------------------------------------------

describe('mail caused by hostile input', () => {
  it('carries no injected header and no line break in any header value', async () => {
    // Let the worker send what the properties above queued.
    for (let i = 0; i < 400; i += 1) {
      const pending = await rt.db.kysely
        .selectFrom('outbox')
        .select('id')
        .where('status', '=', 'pending')
        .execute();
      if (pending.length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const messages = rt.inbox?.list({ limit: 500 }) ?? [];
    expect(messages.length).toBeGreaterThan(0);
    for (const summary of messages) {
      const raw = rt.inbox?.raw(summary.id);
      if (!raw) continue;
      const parsed = await simpleParser(raw);
      const headerBlock = raw.toString('latin1').split(/\r?\n\r?\n/)[0] ?? '';
      expect(headerBlock).not.toMatch(/^x-injected:/im);
      expect(headerBlock).not.toMatch(/^bcc:/im);
      for (const [name, v] of parsed.headers) {
        const rendered = typeof v === 'string' ? v : JSON.stringify(v);
        expect(rendered, `${name} of message ${summary.id}`).not.toMatch(/[\r\n]/);
      }
      expect(parsed.subject ?? '').not.toMatch(/[\r\n]/);
    }
  });
});
