// §2 Sign-up through the JSON API and the page: validation, normalisation, no enumeration,
// concurrency, and the outbox row written in the same transaction as the account.
import { availableParallelism } from 'node:os';
import type { LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hashPool, verifyPassword } from '../../src/accounts/password.ts';
import { createOutboxWorker } from '../../src/mail/worker.ts';
import { hashToken } from '../../src/tokens/tokens.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

const PASSWORD = 'lantern orchard pebble';
const OTHER_PASSWORD = 'meadow quartz violin';
let seq = 0;

function address(label: string): string {
  seq += 1;
  return `${label}-${seq}-${Math.random().toString(36).slice(2, 8)}@example.com`;
}

function apiSignup(rt: TestRuntime, email: string, password = PASSWORD, remoteAddress?: string) {
  return rt.app.inject({
    method: 'POST',
    url: '/api/signup',
    payload: { email, password },
    ...(remoteAddress ? { remoteAddress } : {}),
  });
}

function cookieJar(res: LightMyRequestResponse, jar: Record<string, string> = {}) {
  for (const cookie of res.cookies) jar[cookie.name] = cookie.value;
  return jar;
}

function cookieHeader(jar: Record<string, string>): string {
  return Object.entries(jar)
    .map(([name, value]) => `${name}=${value}`)
    .join('; ');
}

function csrfOf(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!match?.[1]) throw new Error('no _csrf field in the page');
  return match[1];
}

async function pageSignup(rt: TestRuntime, email: string, password: string) {
  const form = await rt.app.inject({ method: 'GET', url: '/signup' });
  expect(form.statusCode).toBe(200);
  const jar = cookieJar(form);
  return rt.app.inject({
    method: 'POST',
    url: '/signup',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      cookie: cookieHeader(jar),
    },
    payload: new URLSearchParams({ _csrf: csrfOf(form.body), email, password }).toString(),
  });
}

function usersWith(rt: TestRuntime, normalised: string) {
  return rt.db.kysely
    .selectFrom('users')
    .selectAll()
    .where('email_normalized', '=', normalised)
    .execute();
}

function outboxTo(rt: TestRuntime, to: string) {
  return rt.db.kysely
    .selectFrom('outbox')
    .selectAll()
    .where('to_address', '=', to)
    .orderBy('created_at')
    .execute();
}

function lastMessageId(rt: TestRuntime, to: string): number {
  return rt.inbox?.latestFor(to)?.id ?? 0;
}

function tokenOf(url: string | null): string {
  const token = new URL(url ?? 'http://x/').pathname.split('/').pop();
  if (!token) throw new Error(`no token in ${url}`);
  return token;
}

async function verifyByMail(rt: TestRuntime, email: string) {
  const mail = await rt.mailTo(email);
  const res = await rt.app.inject({
    method: 'POST',
    url: '/api/verify',
    payload: { token: tokenOf(mail.verification.url) },
  });
  expect(res.json()).toEqual({ status: 'verified' });
}

/** Strips what legitimately differs between two renderings of the same page. */
function pageShape(html: string, email: string): string {
  return html
    .replace(/name="_csrf" value="[^"]+"/g, 'name="_csrf" value=""')
    .replaceAll(email, 'EMAIL')
    .replaceAll(encodeURIComponent(email), 'EMAIL');
}

describe('sign-up', () => {
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

  describe('through the API', () => {
    it('creates an unverified account and mails a link and a code', async () => {
      const email = address('api');
      const res = await apiSignup(rt, email);
      expect(res.statusCode).toBe(202);
      expect(res.json()).toEqual({ status: 'pending' });
      expect(res.headers['content-type']).toMatch(/^application\/json/);

      const [user, ...more] = await usersWith(rt, email);
      expect(more).toHaveLength(0);
      expect(user?.email).toBe(email);
      expect(user?.email_verified_at).toBeNull();
      expect(user?.password_hash).toMatch(/^\$argon2id\$/);
      expect(user?.password_hash).not.toContain(PASSWORD);
      expect(await verifyPassword(user?.password_hash ?? '', PASSWORD)).toBe(true);

      const mail = await rt.mailTo(email);
      expect(mail.subject).toBe('Confirm your email address for Mailproof');
      expect(mail.verification.url).toMatch(/^http:\/\/mailproof\.test\/verify\/[A-Za-z0-9_-]+$/);
      expect(mail.verification.code).toMatch(/^\d{8}$/);
      expect(mail.provenance).toMatchObject({ template: 'verify-email', flow: 'signup' });
    });

    it('answers 400 email_invalid for a malformed address, creating nothing', async () => {
      const before = await rt.db.kysely
        .selectFrom('outbox')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      for (const email of ['not-an-email', 'a@', '@example.com', 'two@@example.com', '']) {
        const res = await apiSignup(rt, email);
        expect(res.statusCode, email).toBe(400);
        expect(res.json()).toMatchObject({
          error: { code: 'email_invalid', field: 'email', message: expect.any(String) },
        });
      }
      const after = await rt.db.kysely
        .selectFrom('outbox')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      expect(Number(after.n)).toBe(Number(before.n));
      expect(await usersWith(rt, 'not-an-email')).toHaveLength(0);
    });

    it('answers 400 password_too_short below 15 characters', async () => {
      const email = address('short');
      const res = await apiSignup(rt, email, 'fourteen chars');
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual({
        error: {
          code: 'password_too_short',
          field: 'password',
          message: expect.stringContaining('15'),
        },
      });
      expect(await usersWith(rt, email)).toHaveLength(0);
      expect(await outboxTo(rt, email)).toHaveLength(0);
      expect((await apiSignup(rt, email, 'fifteen chars!!')).statusCode).toBe(202);
    });

    it('answers 400 password_common for a common password', async () => {
      const email = address('common');
      const res = await apiSignup(rt, email, 'passwordpassword');
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({
        error: { code: 'password_common', field: 'password' },
      });
      expect(await usersWith(rt, email)).toHaveLength(0);
    });

    it('accepts a 64-character password', async () => {
      const email = address('long');
      expect((await apiSignup(rt, email, 'plum kite rover '.repeat(4))).statusCode).toBe(202);
      expect(await usersWith(rt, email)).toHaveLength(1);
    });
  });

  describe('through the page', () => {
    it('creates the account and shows "Check your inbox"', async () => {
      const email = address('page');
      const res = await pageSignup(rt, email, PASSWORD);
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.body).toContain('Check your inbox');
      expect(res.body).toContain(email);
      expect(await usersWith(rt, email)).toHaveLength(1);
      const mail = await rt.mailTo(email);
      expect(mail.verification.code).toMatch(/^\d{8}$/);
    });

    it('shows a too-short password error next to the field', async () => {
      const email = address('pageshort');
      const res = await pageSignup(rt, email, 'short');
      expect(res.statusCode).toBe(400);
      expect(res.body).toMatch(
        /<p class="error" id="field-password-error">Use at least 15 characters[^<]*<\/p><input id="field-password"/,
      );
      expect(res.body).toMatch(
        /<input id="field-password"[^>]*aria-invalid="true"[^>]*aria-describedby="[^"]*field-password-error/,
      );
      expect(res.body).not.toMatch(/<input id="field-email"[^>]*aria-invalid/);
      // The summary links to the field, the address is kept, the password is not echoed.
      expect(res.body).toContain('href="#field-password"');
      expect(res.body).toMatch(new RegExp(`<input id="field-email"[^>]*value="${email}"`));
      expect(res.body).not.toContain('value="short"');
      expect(await usersWith(rt, email)).toHaveLength(0);
    });

    it('shows an invalid address error next to the email field', async () => {
      const res = await pageSignup(rt, 'nobody-at-example', PASSWORD);
      expect(res.statusCode).toBe(400);
      expect(res.body).toMatch(
        /<p class="error" id="field-email-error">Enter a valid email address[^<]*<\/p><input id="field-email"[^>]*aria-invalid="true"/,
      );
      expect(res.body).not.toMatch(/<input id="field-password"[^>]*aria-invalid/);
    });

    it('marks both fields at once when both are wrong', async () => {
      const res = await pageSignup(rt, '', '');
      expect(res.statusCode).toBe(400);
      expect(res.body).toMatch(
        /<p class="error" id="field-email-error">Enter a valid email address[^<]*<\/p><input id="field-email"[^>]*aria-invalid="true"/,
      );
      expect(res.body).toMatch(
        /<p class="error" id="field-password-error">Use at least 15 characters[^<]*<\/p><input id="field-password"[^>]*aria-invalid="true"/,
      );
      // The summary links to both, the email first.
      expect(res.body.indexOf('href="#field-email"')).toBeGreaterThan(-1);
      expect(res.body.indexOf('href="#field-password"')).toBeGreaterThan(
        res.body.indexOf('href="#field-email"'),
      );
    });

    it('shows a common password error next to the password field', async () => {
      const res = await pageSignup(rt, address('pagecommon'), 'passwordpassword');
      expect(res.statusCode).toBe(400);
      expect(res.body).toMatch(
        /<p class="error" id="field-password-error">This password is too common[^<]*<\/p><input id="field-password"[^>]*aria-invalid="true"/,
      );
    });

    it('answers the same page for a new and an already verified address', async () => {
      const existing = address('pageexisting');
      expect((await apiSignup(rt, existing)).statusCode).toBe(202);
      await verifyByMail(rt, existing);
      const fresh = address('pagefresh');

      const forExisting = await pageSignup(rt, existing, OTHER_PASSWORD);
      const forFresh = await pageSignup(rt, fresh, OTHER_PASSWORD);
      expect(forExisting.statusCode).toBe(200);
      expect(forFresh.statusCode).toBe(200);
      expect(pageShape(forExisting.body, existing)).toBe(pageShape(forFresh.body, fresh));
    });
  });

  describe('email normalisation', () => {
    it('stores the address as typed (trimmed) and is unique on its lower-case form', async () => {
      const local = `Bob-${Math.random().toString(36).slice(2, 8)}`;
      const typed = `  ${local}@Example.COM `;
      const res = await apiSignup(rt, typed);
      expect(res.statusCode).toBe(202);
      const normalised = `${local.toLowerCase()}@example.com`;
      const [user] = await usersWith(rt, normalised);
      expect(user?.email).toBe(`${local}@Example.COM`);
      expect(user?.email_normalized).toBe(normalised);

      const again = await apiSignup(rt, normalised.toUpperCase());
      expect(again.statusCode).toBe(202);
      const rows = await rt.db.kysely
        .selectFrom('users')
        .select('email')
        .where(sql`lower(email)`, '=', normalised)
        .execute();
      expect(rows).toEqual([{ email: `${local}@Example.COM` }]);
      // Mail goes to the address as it was first typed.
      const outbox = await outboxTo(rt, `${local}@Example.COM`);
      expect(outbox).toHaveLength(2);
    });
  });

  describe('an address that already has an account', () => {
    it('verified: same 202, no second account, the owner is told someone tried', async () => {
      const email = address('verified');
      expect((await apiSignup(rt, email)).statusCode).toBe(202);
      await verifyByMail(rt, email);
      const [before] = await usersWith(rt, email);
      const since = lastMessageId(rt, email);

      const res = await apiSignup(rt, email, OTHER_PASSWORD);
      expect(res.statusCode).toBe(202);
      expect(res.json()).toEqual({ status: 'pending' });
      expect(res.body).toBe((await apiSignup(rt, address('unknown'))).body);

      const users = await usersWith(rt, email);
      expect(users).toHaveLength(1);
      expect(users[0]).toEqual(before);
      expect(await verifyPassword(users[0]?.password_hash ?? '', PASSWORD)).toBe(true);
      expect(await verifyPassword(users[0]?.password_hash ?? '', OTHER_PASSWORD)).toBe(false);

      const note = await rt.mailTo(email, { since });
      expect(note.subject).toMatch(/^Someone tried to sign up at Mailproof with your address/);
      expect(note.provenance).toMatchObject({ template: 'signup-existing', flow: 'signup' });
      expect(note.text).toContain('no new account was made');
      expect(note.links).toContain('http://mailproof.test/login');
      expect(note.links.some((link) => link.includes('/verify/'))).toBe(false);
    });

    it('unverified: sends a new verification and the old link stops working', async () => {
      const email = address('unverified');
      expect((await apiSignup(rt, email)).statusCode).toBe(202);
      const first = await rt.mailTo(email);

      const res = await apiSignup(rt, email, OTHER_PASSWORD);
      expect(res.statusCode).toBe(202);
      expect(res.json()).toEqual({ status: 'pending' });
      const second = await rt.mailTo(email, { since: first.id });
      expect(second.subject).toBe('Confirm your email address for Mailproof');
      expect(tokenOf(second.verification.url)).not.toBe(tokenOf(first.verification.url));
      expect(await usersWith(rt, email)).toHaveLength(1);

      const old = await rt.app.inject({
        method: 'POST',
        url: '/api/verify',
        payload: { token: tokenOf(first.verification.url) },
      });
      expect(old.statusCode).toBe(400);
      expect(old.json()).toMatchObject({ error: { code: 'token_invalid' } });
      if (first.verification.code !== second.verification.code) {
        const oldCode = await rt.app.inject({
          method: 'POST',
          url: '/api/verify',
          payload: { email, code: first.verification.code },
        });
        expect(oldCode.json()).toMatchObject({ error: { code: 'code_invalid' } });
      }
      const [stillUnverified] = await usersWith(rt, email);
      expect(stillUnverified?.email_verified_at).toBeNull();

      const fresh = await rt.app.inject({
        method: 'POST',
        url: '/api/verify',
        payload: { token: tokenOf(second.verification.url) },
      });
      expect(fresh.json()).toEqual({ status: 'verified' });
      // Until the address was proven, the latest sign-up set the password.
      const login = await rt.app.inject({
        method: 'POST',
        url: '/api/login',
        payload: { email, password: OTHER_PASSWORD },
      });
      expect(login.statusCode).toBe(200);
    });
  });

  describe('the outbox', () => {
    it('holds the message, written with the account, until the worker sends it', async () => {
      const quiet = await createTestRuntime({ worker: false });
      try {
        const email = address('outbox');
        expect((await apiSignup(quiet, email)).statusCode).toBe(202);
        const [user] = await usersWith(quiet, email);
        const [row, ...more] = await outboxTo(quiet, email);
        expect(user).toBeDefined();
        expect(more).toHaveLength(0);
        expect(row).toMatchObject({
          status: 'pending',
          template: 'verify-email',
          flow: 'signup',
          sent_at: null,
        });
        expect(Number(row?.created_at)).toBe(Number(user?.created_at));
        const payload = JSON.parse(row?.payload ?? '{}') as { url: string; code: string };
        expect(payload.url).toMatch(/^http:\/\/mailproof\.test\/verify\//);
        expect(payload.code).toMatch(/^\d{8}$/);
        // Nothing is sent inside the request.
        expect(quiet.inbox?.latestFor(email)).toBeNull();

        const worker = createOutboxWorker({
          db: quiet.db,
          transport: quiet.transport,
          clock: quiet.clock,
          random: quiet.ctx.random,
          log: quiet.ctx.log,
          branding: quiet.ctx.branding,
          from: quiet.config.mail.defaultSender,
          maxAttempts: quiet.config.mail.maxAttempts,
        });
        expect(await worker.drainOnce()).toBe(1);
        const [sent] = await outboxTo(quiet, email);
        expect(sent?.status).toBe('sent');
        expect(sent?.payload).toBeNull();
        expect(Number(sent?.sent_at)).toBe(quiet.clock.now());
        const mail = await quiet.mailTo(email, { waitMs: 0 });
        expect(mail.verification.url).toBe(payload.url);
        expect(mail.verification.code).toBe(payload.code);
        expect(mail.headers.find((h) => h.name === 'message-id')?.value).toBe(row?.message_id);
      } finally {
        await quiet.close();
      }
    });

    it('rolls the account back when its outbox row cannot be written', async () => {
      const broken = await createTestRuntime({ worker: false });
      try {
        await sql`ALTER TABLE outbox RENAME TO outbox_unavailable`.execute(broken.db.kysely);
        const email = address('rollback');
        const res = await apiSignup(broken, email);
        expect(res.statusCode).toBe(500);
        expect(res.json()).toEqual({
          error: { code: 'internal_error', message: expect.any(String) },
        });
        expect(res.body).not.toMatch(/outbox|at \S+:\d+/);
        await sql`ALTER TABLE outbox_unavailable RENAME TO outbox`.execute(broken.db.kysely);
        expect(await usersWith(broken, email)).toHaveLength(0);
        const verifications = await broken.db.kysely
          .selectFrom('verifications')
          .selectAll()
          .where('target', '=', email)
          .execute();
        expect(verifications).toHaveLength(0);
        // Once the table is back, the same sign-up goes through.
        expect((await apiSignup(broken, email)).statusCode).toBe(202);
        expect(await usersWith(broken, email)).toHaveLength(1);
        expect(await outboxTo(broken, email)).toHaveLength(1);
      } finally {
        await broken.close();
      }
    });

    it('never has an account without its message, and marks sent rows with no payload', async () => {
      const emails = [address('pair'), address('pair'), address('pair')];
      await Promise.all(emails.map((email) => apiSignup(rt, email)));
      for (const email of emails) {
        expect(await usersWith(rt, email)).toHaveLength(1);
        expect(await outboxTo(rt, email)).toHaveLength(1);
        await rt.mailTo(email);
      }
      const deadline = Date.now() + 5000;
      let rows = await rt.db.kysely
        .selectFrom('outbox')
        .selectAll()
        .where('to_address', 'in', emails)
        .execute();
      while (rows.some((r) => r.status !== 'sent') && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        rows = await rt.db.kysely
          .selectFrom('outbox')
          .selectAll()
          .where('to_address', 'in', emails)
          .execute();
      }
      expect(rows).toHaveLength(3);
      for (const row of rows) {
        expect(row.status).toBe('sent');
        expect(row.payload).toBeNull();
      }
      const orphans = await rt.db.kysely
        .selectFrom('users')
        .select('email')
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('outbox')
                .select('outbox.id')
                .whereRef('outbox.to_address', '=', 'users.email'),
            ),
          ),
        )
        .execute();
      expect(orphans).toEqual([]);
    });
  });
});

describe('concurrent sign-ups of one address', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime({ env: { RATE_LIMITS: 'off' } });
  });
  afterAll(async () => {
    await rt.close();
  });

  it('create exactly one account and every answer is 202', async () => {
    const email = address('race');
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        apiSignup(rt, i % 2 === 0 ? email : email.toUpperCase(), `${PASSWORD} ${i}`),
      ),
    );
    for (const answer of answers) {
      expect(answer.statusCode).toBe(202);
      expect(answer.json()).toEqual({ status: 'pending' });
    }
    const users = await usersWith(rt, email);
    expect(users).toHaveLength(1);
    const verifications = await rt.db.kysely
      .selectFrom('verifications')
      .selectAll()
      .where('target', '=', email)
      .execute();
    expect(verifications).toHaveLength(1);
    expect(verifications[0]?.user_id).toBe(users[0]?.id);
    const outbox = await outboxTo(rt, users[0]?.email ?? '');
    expect(outbox).toHaveLength(20);

    // Twenty messages, and exactly one of their links is live: the last one issued.
    const deadline = Date.now() + 10_000;
    while ((rt.inbox?.list({ to: email }).length ?? 0) < 20 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const messages = (rt.inbox?.list({ to: email, limit: 100 }) ?? []).map((m) =>
      rt.inbox?.get(m.id),
    );
    expect(messages).toHaveLength(20);
    const tokens = messages.map((m) => tokenOf(m?.verification.url ?? null));
    const live = tokens.filter((t) => hashToken('signup', t) === verifications[0]?.token_hash);
    expect(live).toHaveLength(1);
    const stale = tokens.find((t) => t !== live[0]);
    const refused = await rt.app.inject({
      method: 'POST',
      url: '/api/verify',
      payload: { token: stale },
    });
    expect(refused.statusCode).toBe(400);
    const verify = await rt.app.inject({
      method: 'POST',
      url: '/api/verify',
      payload: { token: live[0] },
    });
    expect(verify.statusCode).toBe(200);
    expect(verify.json()).toEqual({ status: 'verified' });
  });

  it('of a verified address answer 202 and add no account', async () => {
    const email = address('race-verified');
    expect((await apiSignup(rt, email)).statusCode).toBe(202);
    await verifyByMail(rt, email);
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => apiSignup(rt, email, OTHER_PASSWORD)),
    );
    expect(answers.map((a) => a.statusCode)).toEqual(Array(20).fill(202));
    expect(await usersWith(rt, email)).toHaveLength(1);
  });
});

describe('PASSWORD_HASH_THREADS', () => {
  it('sets how many threads hash the passwords of sign-ups', async () => {
    const rt = await createTestRuntime({
      env: { RATE_LIMITS: 'off', PASSWORD_HASH_THREADS: '1' },
    });
    try {
      expect(hashPool.size).toBe(1);
      const answers = await Promise.all(
        Array.from({ length: 4 }, (_, i) => apiSignup(rt, address('threads'), `${PASSWORD} ${i}`)),
      );
      expect(answers.map((answer) => answer.statusCode)).toEqual([202, 202, 202, 202]);
      expect(hashPool.stats()).toEqual({ threads: 1, inThreads: 0, queued: 0 });
    } finally {
      await rt.close();
      hashPool.resize(availableParallelism());
    }
  });
});
